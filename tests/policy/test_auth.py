from __future__ import annotations

import pytest

from modelgate.errors import AuthenticationFailed
from modelgate.policy.auth import MasterKeyAuthenticator, bearer


async def test_master_key_accepted_from_any_candidate() -> None:
    auth = MasterKeyAuthenticator("secret-key")
    assert (await auth.authenticate(["wrong", "secret-key"])).kind == "master"


@pytest.mark.parametrize("credentials", [[], ["nope"], ["secret-key "]])
async def test_bad_or_missing_key(credentials: list[str]) -> None:
    with pytest.raises(AuthenticationFailed):
        await MasterKeyAuthenticator("secret-key").authenticate(credentials)


def test_bearer() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer abc ") == "abc"
    assert bearer("Basic abc") is None
    assert bearer(None) is None
