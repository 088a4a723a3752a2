"""The JSON parser every API view uses: bounded in size, strict about UTF-8 and about values
nothing downstream can hold.

Refused with 400 / 1300, naming where the value is (issue 10 §2):

- ``NaN``, ``Infinity``, ``-Infinity`` and numbers too large for a double (``1e999``):
  RFC 8259 §6 has no such numbers, and PostgreSQL's jsonb refuses them;
- ``\\u0000`` anywhere (a key or a string): PostgreSQL text and jsonb cannot store NUL;
- a lone surrogate (``"\\ud83d"``, what an encoder writes when it cuts a string in the middle
  of an emoji): not a Unicode scalar value, so not encodable as UTF-8 (RFC 8259 §8.2).

Both string checks only run when the raw text holds such an escape, so an ordinary body pays
one regular-expression scan.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework.parsers import BaseParser

from engage import errors

# A raw body can only produce NUL or a surrogate through a \u escape: UTF-8 decoding refuses
# encoded surrogates, and JSON refuses raw control characters inside strings.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str) -> Any:
    raise errors.InvalidJson(f"{name} is not a JSON number (RFC 8259 §6); send a finite number or a string")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise errors.InvalidJson(f"The number {text[:40]} is too large (at most about 1.8e308)")
    return value


def bad_string(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (a NUL, a lone surrogate), or None."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which cannot be stored"
    if _SURROGATE.search(value):
        return "contains a lone UTF-16 surrogate (a string cut in the middle of a character), which is not Unicode text"
    return None


def find_bad_string(value: Any, where: str) -> str | None:
    """``"<path>: <problem>"`` for the first string (key or value) in ``value`` (decoded JSON)
    that cannot be stored, ``where`` the path of ``value`` (``""``: the body); else None."""
    if isinstance(value, str):
        problem = bad_string(value)
        return f"{where or 'body'}: {problem}" if problem else None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            problem = bad_string(key)
            if problem:
                return f"{where or 'body'}: a key {problem}"
            found = find_bad_string(item, path)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_bad_string(item, f"{where}[{index}]")
            if found:
                return found
    return None


def loads(text: str) -> Any:
    """``json.loads`` with the refusals above; raises ``errors.InvalidJson``."""
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:
        raise errors.InvalidJson(f"Problems parsing request as json: {exc}") from None
    except RecursionError:
        raise errors.InvalidJson("Problems parsing request as json: nested too deeply") from None
    if _SUSPECT_ESCAPE.search(text):
        # find_bad_string walks the key path unescaped; a key holding a lone surrogate is
        # reported by the key check before it is ever printed.
        problem = find_bad_string(data, "")
        if problem:
            raise errors.InvalidJson(problem.encode("utf-8", "backslashreplace").decode("utf-8"))
    return data


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self, stream: IO[Any] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.ENGAGE_MAX_REQUEST_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise errors.RequestTooLarge(f"The request body is larger than {limit} bytes")
        if not raw.strip():
            return {}
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise errors.NotUtf8("The request body is not valid UTF-8") from None
        return loads(text)
