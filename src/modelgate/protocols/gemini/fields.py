"""Reading Gemini JSON the way Google's servers read it.

Google's JSON parser accepts every field under its lowerCamelCase name *and* its
proto (snake_case) name: the REST examples in Google's own documentation use
``inline_data``/``mime_type``/``system_instruction``, the SDKs send camelCase.
Both must work. Google also rejects unknown fields with a 400 that names them,
which the translated path mirrors, so that a field the gateway cannot carry is
never dropped without a word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from modelgate.errors import InvalidRequest

_UPPER = re.compile(r"(?<!^)([A-Z])")


def snake(name: str) -> str:
    """``inlineData`` → ``inline_data``."""
    return _UPPER.sub(r"_\1", name).lower()


def get(obj: dict[str, Any], name: str, default: Any = None) -> Any:
    """``obj[name]`` under its camelCase or snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name), default)


def has(obj: dict[str, Any], name: str) -> bool:
    return name in obj or snake(name) in obj


def check_known(obj: dict[str, Any], known: Iterable[str], where: str) -> None:
    """Refuse fields Google would refuse, with Google's wording (``where`` is its path, or '')."""
    allowed = set(known)
    for key in obj:
        if key in allowed:
            continue
        camel = _camel(key)
        if camel in allowed:
            continue
        at = f" at '{where}'" if where else ""
        raise InvalidRequest(f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.', param=key)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def as_dict(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"Invalid value at '{where}': expected an object, got {_kind(value)}", param=where)
    return value


def as_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest(f"Invalid value at '{where}': expected a list, got {_kind(value)}", param=where)
    return value


def as_str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest(f"Invalid value at '{where}' ({_kind(value)}), expected a string", param=where)
    return value


def as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidRequest(f"Invalid value at '{where}' ({_kind(value)}), expected an integer", param=where)
    try:
        number = int(value)
    except ValueError:
        raise InvalidRequest(f"Invalid value at '{where}' (TYPE_INT32), \"{value}\"", param=where) from None
    if isinstance(value, float) and number != value:
        raise InvalidRequest(f"Invalid value at '{where}' (TYPE_INT32), {value}", param=where)
    return number


def as_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest(f"Invalid value at '{where}' ({_kind(value)}), expected a number", param=where)
    return value


def standard_b64(value: str) -> str:
    """Base64 in the standard alphabet, padded. Google reads both alphabets (and google-genai
    sends bytes url-safe); Anthropic and OpenAI only take the standard one."""
    if "-" in value or "_" in value:
        value = value.replace("-", "+").replace("_", "/")
    missing = -len(value) % 4
    return value + "=" * missing if missing and not value.endswith("=") else value


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "bool", type(None): "null"}.get(type(value), "number")
