"""The SparkPost substitution language: compile once per template, render per recipient.

Public API: ``compile_part`` / ``CompiledPart.render``, ``compile_content`` /
``CompiledContent.render``, ``build_context``, ``validate_data_keys``, ``Limits``,
``TemplateSyntaxError`` and ``TemplateRenderError``. See ``compiler`` for the decisions.
"""

from __future__ import annotations

from .compiler import DEFAULT_LIMITS, CompiledPart, Limits, Tracker, compile_part
from .content import CompiledContent, compile_content
from .context import RESERVED_KEYS, build_context, validate_data_keys
from .errors import TemplateError, TemplateRenderError, TemplateSyntaxError

__all__ = [
    "DEFAULT_LIMITS",
    "RESERVED_KEYS",
    "CompiledContent",
    "CompiledPart",
    "Limits",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "Tracker",
    "build_context",
    "compile_content",
    "compile_part",
    "validate_data_keys",
]
