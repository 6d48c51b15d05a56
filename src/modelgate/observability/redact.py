"""Secrets out of stored bodies: what the request log keeps must not hand out anyone's key.

Clients paste keys into prompts and tool results, and tools echo them back; a body kept for
debugging must not become a store of credentials. :func:`redact` replaces, in text:

- provider keys: Anthropic ``sk-ant-…``, OpenAI ``sk-…`` / ``sk-proj-…``, Google ``AIza…``;
- modelgate virtual keys ``sk-mg-…`` (a ``sk-`` key like the others);
- ``Bearer <token>`` anywhere;
- the value of JSON fields whose name says credential: ``api_key``, ``apiKey``,
  ``x-api-key``, ``x-goog-api-key``, ``authorization``, ``access_token``, ``refresh_token``,
  ``client_secret``, ``password``, ``secret``.

It is a safety net, not a guarantee (a secret with no recognisable shape passes through);
and it runs only for the keys and endpoints that opted in to bodies, at settlement.
"""

from __future__ import annotations

import re
from typing import Final

REDACTED: Final = "[REDACTED]"

_TOKENS: Final = re.compile(
    r"""
      \bsk-[A-Za-z0-9][A-Za-z0-9_\-]{15,}      # sk-ant-…, sk-proj-…, sk-…, sk-mg-…
    | \bAIza[0-9A-Za-z_\-]{30,}                # Google API keys
    | (?<=[Bb]earer\ )[A-Za-z0-9._~+/\-]{8,}=*  # Bearer tokens (the word kept)
    """,
    re.VERBOSE,
)
_FIELDS: Final = re.compile(
    r"""("(?:api[_-]?key|x-api-key|x-goog-api-key|authorization|proxy-authorization|access[_-]?token
          |refresh[_-]?token|client[_-]?secret|password|secret)"\s*:\s*)"(?:[^"\\]|\\.)*"
    """,
    re.VERBOSE | re.IGNORECASE,
)


def redact(text: str) -> str:
    """``text`` with every secret it shows replaced by ``[REDACTED]``."""
    text = _FIELDS.sub(rf'\1"{REDACTED}"', text)
    return _TOKENS.sub(REDACTED, text)
