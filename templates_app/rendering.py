"""The one seam between templates and the substitution language (``mailcore.language``).

The language is a pure core that raises its own exceptions; this module maps them to the
API's error vocabulary: a compile error is 422 / 3000 with ``part`` and ``line``, a render
error is 422 / 3001 with ``part``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from engage import errors
from mailcore.language import build_context, compile_content, reserved_key_problem
from mailcore.language.errors import MessageTooLarge, TemplateRenderError, TemplateSyntaxError


def content_compile(content: dict[str, Any]) -> Any:
    """Compile stored content once; raises ``errors.TemplateSyntaxError`` (3000) with part and line.

    Returns the compiled content (``mailcore.language.compile_content``).
    """
    try:
        return compile_content(content)
    except TemplateSyntaxError as exc:
        raise errors.TemplateSyntaxError(exc.description, extra={"part": exc.part, "line": exc.line}) from None


def content_render_preview(content: dict[str, Any], *, substitution_data: dict[str, Any]) -> dict[str, Any]:
    """Render content the way a message to an anonymous recipient would be, for preview.

    The result is ``{from, subject, reply_to, text, html, headers}`` with the parts the
    content has. A reserved key in ``substitution_data`` (SPEC B §4.2) is 422 / 1300 naming
    it; render failures are 422 / 3001 naming the part. The whole rendered message is
    capped at ``ENGAGE_MAX_MESSAGE_BYTES`` (headers included): past it, 422 / 3001 saying
    the limit (``limit`` in bytes), the render stopped where it passed.
    """
    if (problem := reserved_key_problem(substitution_data)) is not None:
        raise errors.InvalidData(problem)

    compiled = content_compile(content)
    context = build_context(
        tx_metadata={},
        tx_substitution_data=substitution_data,
        rcpt_metadata={},
        rcpt_substitution_data={},
        address_email="",
        address_name="",
        return_path="",
    )
    limit = settings.ENGAGE_MAX_MESSAGE_BYTES
    try:
        return compiled.render(context, max_bytes=limit)
    except MessageTooLarge as exc:
        raise errors.TemplateRenderError(
            f"{exc.description} (ENGAGE_MAX_MESSAGE_BYTES)", extra={"part": exc.part, "limit": limit}
        ) from None
    except TemplateRenderError as exc:
        raise errors.TemplateRenderError(exc.description, extra={"part": exc.part}) from None
