"""Errors raised by the substitution language.

They mirror SparkPost's generation errors: a compile error names the part and the
1-based line in that part ("Error while compiling part html: line 4: syntax error near
'age'"), a render error names the part. Both are plain exceptions so that the pure core
stays free of the HTTP error vocabulary; the service layer maps them to ``EngageError``.
"""

from __future__ import annotations


class TemplateError(Exception):
    """Base class of every error of the substitution language."""

    part: str
    description: str

    def __str__(self) -> str:
        return self.description


class TemplateSyntaxError(TemplateError):
    """A part does not compile.

    ``detail`` is the short reason ("syntax error near 'age'"); ``description`` is the
    SparkPost-style sentence that also names the part and the line.
    """

    def __init__(self, part: str, line: int, detail: str) -> None:
        self.part = part
        self.line = line
        self.detail = detail
        self.description = f"Error while compiling part {part}: line {line}: {detail}"
        super().__init__(self.description)


class TemplateRenderError(TemplateError):
    """A compiled part fails for one recipient's data (bad arithmetic, limits, ...)."""

    def __init__(self, part: str, detail: str) -> None:
        self.part = part
        self.detail = detail
        self.description = f"Error while rendering part {part}: {detail}"
        super().__init__(self.description)


class MessageTooLarge(TemplateRenderError):
    """The parts rendered so far (headers included) pass the message's byte budget.

    ``limit`` is that budget in bytes; ``part`` is the part whose rendering passed it.
    Rendering stops there, so the output is never built in full first.
    """

    def __init__(self, part: str, limit: int) -> None:
        self.limit = limit
        super().__init__(part, f"the rendered message exceeds its size limit of {limit} bytes (all parts and headers)")


class RenderFailure(Exception):
    """Raised by runtime helpers that do not know the part; re-raised with the part."""

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class OutputLimitReached(RenderFailure):
    """The output budget of one part render is spent (raised while rendering, not after)."""
