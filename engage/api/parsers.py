"""The JSON parser every API view uses: bounded in size, strict about UTF-8."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.parsers import BaseParser

from engage import errors


class BoundedJSONParser(BaseParser):
    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
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
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise errors.InvalidJson(f"Problems parsing request as json: {exc}") from None
