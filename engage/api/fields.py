"""Parsing of request-body fields shared by every resource: one message per kind of mistake."""

from __future__ import annotations

from datetime import datetime

from engage import errors


def byte_length(value: str) -> int:
    return len(value.encode("utf-8"))


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with offset, whole seconds (SparkPost's ``2014-05-22T15:12:59+00:00``)."""
    return value.replace(microsecond=0).isoformat() if value is not None else None


def text_field(body: dict, key: str, *, max_bytes: int) -> str | None:
    """A string field of at most ``max_bytes`` UTF-8 bytes; None when not given."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.InvalidData(f"{key} must be a string")
    if byte_length(value) > max_bytes:
        raise errors.InvalidData(f"{key} must be at most {max_bytes} bytes")
    return value


def bool_field(body: dict, key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise errors.InvalidData(f"{key} must be a boolean")
    return value


def bool_options(raw: dict, keys: tuple[str, ...]) -> dict[str, bool]:
    """The boolean ``options`` among ``keys`` that were given (null = not given)."""
    options: dict[str, bool] = {}
    for key in keys:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise errors.InvalidData(f"options.{key} must be a boolean")
        options[key] = value
    return options
