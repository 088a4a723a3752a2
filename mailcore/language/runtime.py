"""Helpers called by compiled templates at render time.

Generated code calls these for everything that is not a plain dict lookup, so they are
written for speed (class checks instead of isinstance chains, no regex) and follow Lua
semantics: 1-based arrays, only ``false``/``nil`` are false, numeric strings coerce in
arithmetic, comparing different types is an error.

Values are JSON data (``Any``). Where a class check has settled a value's type, an annotated
local tells mypy so (it does not narrow on ``__class__``) at no cost, unlike ``cast()``.
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from html import unescape as _html_unescape
from html.entities import html5 as _html5
from typing import Any
from urllib.parse import quote as _quote

from .errors import RenderFailure

_NUMBER_CLASSES = (int, float)


def tostr(v: Any) -> str:
    """Render a value as text: nil → "", booleans as true/false, numbers like Lua/JSON."""
    cls = v.__class__
    if cls is str:
        s: str = v
        return s
    if v is None:
        return ""
    if cls is bool:
        return "true" if v else "false"
    if cls is int:
        return str(v)
    if cls is float:
        return _float_str(v)
    if cls is dict or cls is list:
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    if isinstance(v, str):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _float_str(float(v))
    return str(v)


def _float_str(v: float) -> str:
    if v != v:
        return "nan"
    if v in (math.inf, -math.inf):
        return "inf" if v > 0 else "-inf"
    if v.is_integer() and abs(v) < 1e16:
        return str(int(v))
    return f"{v:.14g}"


def html_escape(v: Any) -> str:
    """HTML-escape a value the way SparkPost does (``/`` becomes ``&#x2F;``)."""
    s = v if v.__class__ is str else tostr(v)
    if "&" in s:
        s = s.replace("&", "&amp;")
    if "<" in s:
        s = s.replace("<", "&lt;")
    if ">" in s:
        s = s.replace(">", "&gt;")
    if '"' in s:
        s = s.replace('"', "&quot;")
    if "'" in s:
        s = s.replace("'", "&#x27;")
    if "/" in s:
        s = s.replace("/", "&#x2F;")
    return s


@lru_cache(maxsize=4096)
def _quote_cached(s: str) -> str:
    return _quote(s, safe="-_.~")


def url_quote(v: Any) -> str:
    """Percent-encode a value substituted inside a URL (RFC 3986 unreserved kept).

    A recipient's value usually appears in several links, so short strings go through a
    small bounded cache (pure function of the string: no cross-recipient leakage risk).
    """
    s = v if v.__class__ is str else tostr(v)
    if s.isalnum() and s.isascii():
        return s
    if len(s) <= 256:
        return _quote_cached(s)
    return _quote(s, safe="-_.~")


_CHARREF_RE = re.compile(r"&(?:#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")


def _charref(m: re.Match[str]) -> str:
    ref = m.group()
    if ref[1] == "#":
        return _html_unescape(ref)
    # Named references follow the HTML5 attribute rules, as a browser reads an href: the
    # whole name must be an entity, and one without ";" is kept before "=" so that
    # "&copy=2" stays a query parameter.
    value = _html5.get(ref[1:])
    if value is None or (not ref.endswith(";") and m.string.startswith("=", m.end())):
        return ref
    return value


def unescape_url(u: str) -> str:
    """Decode the character references of a rendered href exactly once.

    ``html.unescape`` semantics, except that (as in browsers, HTML5 attribute rules) a
    named reference without ``;`` followed by ``=`` or a letter/digit stays literal, so
    ``?a=1&copy=2`` keeps its ``copy`` parameter.
    """
    if "&" not in u:
        return u
    return _CHARREF_RE.sub(_charref, u)


def attr(obj: Any, key: str) -> Any:
    """``obj.key``: a field of an object, nil for anything else."""
    if obj.__class__ is dict:
        return obj.get(key)
    if isinstance(obj, dict):
        return obj.get(key)
    return None


def index(obj: Any, key: Any) -> Any:
    """``obj[key]``: 1-based for arrays, field lookup for objects, nil otherwise."""
    if obj.__class__ is list or isinstance(obj, (list, tuple)):
        if key.__class__ is float and key.is_integer():
            key = int(key)
        if key.__class__ is int and 1 <= key <= len(obj):
            return obj[key - 1]
        return None
    if isinstance(obj, dict):
        if key.__class__ is str:
            return obj.get(key)
        if key is None or key.__class__ is bool:
            return None
        if key.__class__ in _NUMBER_CLASSES:
            return obj.get(tostr(key))
        return None
    return None


def length(v: Any) -> int:
    """Lua's ``#``: length of an array or string; 0 for nil and objects."""
    if v.__class__ is list or v.__class__ is str:
        return len(v)
    if v is None or isinstance(v, dict):
        return 0
    if isinstance(v, (list, tuple, str)):
        return len(v)
    raise RenderFailure(f"attempt to get length of a {type_name(v)} value")


def empty(v: Any) -> bool:
    """``empty(x)``: true for nil, an empty array, an empty object or an empty string."""
    if v is None:
        return True
    if isinstance(v, (list, dict, str, tuple)):
        return len(v) == 0
    return False


def type_name(v: Any) -> str:
    """Lua-ish type name of a value, for error messages."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "table"


def _num(v: Any) -> int | float:
    cls = v.__class__
    if cls is int or cls is float:
        n: int | float = v
        return n
    if isinstance(v, str):
        s = v.strip()
        try:
            return int(s)
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            f = None
        if f is not None and math.isfinite(f):
            return f
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    raise RenderFailure(f"attempt to perform arithmetic on a {type_name(v)} value")


def add(a: Any, b: Any) -> int | float:
    """``a + b`` with Lua coercion of numeric strings."""
    if a.__class__ is int and b.__class__ is int:
        return a + b
    return _num(a) + _num(b)


def sub(a: Any, b: Any) -> int | float:
    """``a - b`` with Lua coercion of numeric strings."""
    if a.__class__ is int and b.__class__ is int:
        return a - b
    return _num(a) - _num(b)


def mul(a: Any, b: Any) -> int | float:
    """``a * b``; the result is bounded so that a template cannot build huge integers."""
    r = _num(a) * _num(b)
    if r.__class__ is int and not -(2**63) <= r < 2**63:
        return float(r)
    return r


def div(a: Any, b: Any) -> int | float:
    """``a / b``; division by zero is a render error (Lua would give inf)."""
    x = _num(a)
    y = _num(b)
    if y == 0:
        raise RenderFailure("attempt to divide by zero")
    r = x / y
    if r.is_integer() and abs(r) < 1e16:
        return int(r)
    return r


def mod(a: Any, b: Any) -> int | float:
    """``a % b`` (Lua floored modulo); modulo by zero is a render error."""
    x = _num(a)
    y = _num(b)
    if y == 0:
        raise RenderFailure("attempt to perform 'n%%0'")
    return x % y


def neg(a: Any) -> int | float:
    """Unary minus."""
    return -_num(a)


def concat(a: Any, b: Any) -> str:
    """Lua ``..``: strings and numbers concatenate, anything else is an error."""
    for v in (a, b):
        if v is None or isinstance(v, (bool, dict, list)):
            raise RenderFailure(f"attempt to concatenate a {type_name(v)} value")
    return tostr(a) + tostr(b)


def _is_num(v: Any) -> bool:
    c = v.__class__
    return c is int or c is float


def eq(a: object, b: object) -> bool:
    """Lua equality: values of different types are never equal (``1 ~= true``)."""
    if a.__class__ is b.__class__:
        return a == b
    if _is_num(a) and _is_num(b):
        return a == b
    if type_name(a) != type_name(b):
        return False
    return a == b


def _ordered(a: Any, b: Any, op: str) -> None:
    if (_is_num(a) and _is_num(b)) or (a.__class__ is str and b.__class__ is str):
        return
    ta, tb = type_name(a), type_name(b)
    if ta == tb and ta in ("number", "string"):
        return
    raise RenderFailure(f"attempt to compare {ta} with {tb} ({op})")


def lt(a: Any, b: Any) -> bool:
    """``a < b`` for two numbers or two strings; anything else is an error."""
    _ordered(a, b, "<")
    r: bool = a < b  # two numbers or two strings: a bool
    return r


def le(a: Any, b: Any) -> bool:
    """``a <= b`` for two numbers or two strings; anything else is an error."""
    _ordered(a, b, "<=")
    r: bool = a <= b  # two numbers or two strings: a bool
    return r


def gt(a: Any, b: Any) -> bool:
    """``a > b`` for two numbers or two strings; anything else is an error."""
    _ordered(a, b, ">")
    r: bool = a > b  # two numbers or two strings: a bool
    return r


def ge(a: Any, b: Any) -> bool:
    """``a >= b`` for two numbers or two strings; anything else is an error."""
    _ordered(a, b, ">=")
    r: bool = a >= b  # two numbers or two strings: a bool
    return r


def each_items(v: Any) -> list[Any] | tuple[()]:
    """What ``each`` iterates: an array's items, an object's values; nil gives nothing."""
    if v.__class__ is list:
        return v
    if v is None or v is False:
        return ()
    if isinstance(v, (list, tuple)):
        return list(v)
    if isinstance(v, dict):
        return list(v.values())
    raise RenderFailure(f"'each' expects an array, got a {type_name(v)} value")
