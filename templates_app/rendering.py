"""The one seam between templates and the substitution language (``mailcore.language``).

The language is a pure core that raises its own exceptions; this module maps them to the
API's error vocabulary: a compile error is 422 / 3000 with ``part`` and ``line``, a render
error is 422 / 3001 with ``part``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from engage import errors
from engage.api.parsers import loads
from mailcore.language import build_context, compile_content, reserved_key_problem
from mailcore.language.errors import MessageTooLarge, TemplateRenderError, TemplateSyntaxError
from mailcore.link_check import MAX_LINKS_LISTED, PARTS, REASONS, links_check
from mailcore.options import effective_options


def sample_data(text: str) -> dict[str, Any]:
    """Sample substitution data a person typed (the editor's live preview, the preview page,
    the console's test send), parsed as the API parses a JSON body (``engage.api.parsers.loads``:
    no NaN/Infinity, NUL, lone surrogate or nesting too deep) and required to be an object.
    Empty text is ``{}``. Raises ``errors.InvalidJson`` (400 / 1300) saying what is wrong."""
    data = loads(text) if text.strip() else {}
    if not isinstance(data, dict):
        raise errors.InvalidJson("substitution data must be a JSON object")
    return data


def sample_recipient(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Sample data as the editor keeps it → ``(substitution_data, address)``.

    Its ``address`` key, ``{"email": str, "name": str}`` (as a recipient list entry gives it,
    ``recipient_lists.admin``'s ``sample/``), is the recipient's address, which generation
    puts in every recipient's context (``mailcore.language.build_context``): ``{{address.name}}``
    then renders as a message to that recipient says it. Without it the recipient is
    anonymous (``{"email": "", "name": ""}``). An ``address`` that is not an object of
    strings is 400 / 1300 (``errors.InvalidJson``) saying so; the rest is returned as is."""
    rest = dict(data)
    address = rest.pop("address", None)
    if address is None:
        return rest, {"email": "", "name": ""}
    if not isinstance(address, dict) or any(not isinstance(address.get(key, ""), str) for key in ("email", "name")):
        raise errors.InvalidJson('address must be an object {"email": "...", "name": "..."} of strings')
    return rest, {"email": address.get("email") or "", "name": address.get("name") or ""}


def content_compile(content: dict[str, Any]) -> Any:
    """Compile stored content once; raises ``errors.TemplateSyntaxError`` (3000) with part and line.

    Returns the compiled content (``mailcore.language.compile_content``).
    """
    try:
        return compile_content(content)
    except TemplateSyntaxError as exc:
        raise errors.TemplateSyntaxError(exc.description, extra={"part": exc.part, "line": exc.line}) from None


class _NamesRead(dict):
    """A render context that notes each top-level name the template reads and the context
    lacks (the compiled parts read a name as ``d.get(name)``, ``mailcore.language.compiler``),
    and each field of ``address`` read while empty (``"address.name"``: the sample names no
    recipient, so it renders empty; fields are read as ``obj.get(key)``,
    ``mailcore.language.runtime.attr``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.missing: dict[str, None] = {}
        if isinstance(data.get("address"), dict):
            self["address"] = _FieldsRead(data["address"], "address.", self.missing)

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self.missing[key] = None
        return super().get(key, default)


class _FieldsRead(dict):
    """An object of the context that notes, in ``missing``, each field read that is empty."""

    def __init__(self, data: dict[str, Any], prefix: str, missing: dict[str, None]) -> None:
        super().__init__(data)
        self.prefix, self.missing = prefix, missing

    def get(self, key: Any, default: Any = None) -> Any:
        value = super().get(key, default)
        if value in (None, ""):
            self.missing[f"{self.prefix}{key}"] = None
        return value


def content_render_preview(
    content: dict[str, Any],
    *,
    substitution_data: dict[str, Any],
    address: dict[str, str] | None = None,
    missing: list[str] | None = None,
) -> dict[str, Any]:
    """Render content the way a message to the recipient ``address`` (``{"email", "name"}``,
    :func:`sample_recipient`; None: an anonymous recipient) would be, for preview.

    ``missing``, when given, gets the names the content reads (``{{first_name}}``, ``{{if
    vip}}``) that ``substitution_data`` lacks, in the order first read: each rendered empty
    (or false), which a test send would send as is; and ``address.name`` / ``address.email``
    when read while empty. Names read only inside an ``each`` loop are not counted.

    The result is ``{from, subject, reply_to, text, html, headers}`` with the parts the
    content has. A reserved key in ``substitution_data`` (SPEC B §4.2) is 422 / 1300 naming
    it; render failures are 422 / 3001 naming the part. The whole rendered message is
    capped at ``ENGAGE_MAX_MESSAGE_BYTES`` (headers included): past it, 422 / 3001 saying
    the limit (``limit`` in bytes), the render stopped where it passed.
    """
    context = _NamesRead(_preview_context(substitution_data, address))
    compiled = content_compile(content)
    limit = settings.ENGAGE_MAX_MESSAGE_BYTES
    try:
        rendered = compiled.render(context, max_bytes=limit)
    except MessageTooLarge as exc:
        raise _too_large(exc, limit) from None
    except TemplateRenderError as exc:
        raise errors.TemplateRenderError(exc.description, extra={"part": exc.part}) from None
    if missing is not None:
        missing.extend(context.missing)
    return rendered


def _too_large(exc: MessageTooLarge, limit: int) -> errors.TemplateRenderError:
    return errors.TemplateRenderError(
        f"{exc.description} (ENGAGE_MAX_MESSAGE_BYTES)", extra={"part": exc.part, "limit": limit}
    )


def _preview_context(substitution_data: dict[str, Any], address: dict[str, str] | None = None) -> dict[str, Any]:
    """The data of the recipient ``address`` (None: anonymous) with ``substitution_data`` as
    the transmission's, built as generation builds it; a reserved key (SPEC B §4.2) is 422 /
    1300 naming it."""
    address = address or {}
    if (problem := reserved_key_problem(substitution_data)) is not None:
        raise errors.InvalidData(problem)
    return build_context(
        tx_metadata={},
        tx_substitution_data=substitution_data,
        rcpt_metadata={},
        rcpt_substitution_data={},
        address_email=address.get("email") or "",
        address_name=address.get("name") or "",
        return_path="",
    )


def content_link_check(
    content: dict[str, Any],
    *,
    substitution_data: dict[str, Any],
    address: dict[str, str] | None = None,
    options: dict[str, Any] | None = None,
    template_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The link check of ``content`` (Engage's own, ``mailcore.link_check.links_check``) for
    the recipient ``address`` (None: anonymous) with ``substitution_data``, as
    :func:`content_render_preview` renders it.

    ``options`` are the request's (``click_tracking``), ``template_options`` a stored
    template's; the effective ``click_tracking`` follows the transmissions' precedence
    (request, template, ``ENGAGE_CLICK_TRACKING``: ``mailcore.options.effective_options``).
    Returns ``{"click_tracking": bool, "links": [{part, position, line, link_position, url,
    tracked, reason, reason_text, link_name, origin}], "total_links": int, "truncated": bool}``:
    the first ``mailcore.link_check.MAX_LINKS_LISTED`` links, ``total_links`` how many the
    check found and ``truncated`` whether some were left off. ``email_rfc822`` content is 422 / 1300; syntax and
    render errors as for the preview (3000 with ``part`` and ``line``, 3001 with ``part``).
    """
    if "email_rfc822" in content:
        raise errors.InvalidData("content.email_rfc822: the link check reads html, text and amp_html parts only")
    if not any(isinstance(content.get(part), str) for part in PARTS):
        raise errors.RequiredFieldMissing("content.html, content.text or content.amp_html is required")
    parts = {part: content[part] for part in PARTS if isinstance(content.get(part), str)}
    context = _preview_context(substitution_data, address)
    content_compile(parts)
    click_tracking = effective_options(
        transmission=options,
        template=template_options,
        defaults={"open_tracking": settings.ENGAGE_OPEN_TRACKING, "click_tracking": settings.ENGAGE_CLICK_TRACKING},
    ).click_tracking
    limit = settings.ENGAGE_MAX_MESSAGE_BYTES
    try:
        checks = links_check(parts, context, click_tracking=click_tracking, max_bytes=limit)
    except TemplateSyntaxError as exc:  # a dynamic chunk is compiled while rendering
        raise errors.TemplateSyntaxError(exc.description, extra={"part": exc.part, "line": exc.line}) from None
    except MessageTooLarge as exc:
        raise _too_large(exc, limit) from None
    except TemplateRenderError as exc:
        raise errors.TemplateRenderError(exc.description, extra={"part": exc.part}) from None
    links = [
        {
            "part": check.part,
            "position": check.position,
            "line": check.line,
            "link_position": check.link_position,
            "url": check.url,
            "tracked": check.tracked,
            "reason": check.reason,
            "reason_text": REASONS[check.reason] if check.reason else None,
            "link_name": check.link_name,
            "origin": check.origin,
        }
        for check in checks[:MAX_LINKS_LISTED]
    ]
    return {
        "click_tracking": click_tracking,
        "links": links,
        "total_links": len(checks),
        "truncated": len(checks) > len(links),
    }
