"""The SparkPost substitution language: compile once per template, render per recipient.

Public API: ``compile_part`` / ``CompiledPart.render``, ``compile_content`` /
``CompiledContent.render``, ``build_context``, ``reserved_key_problem``,
``validate_data_keys``, ``RenderLimits``, ``TemplateSyntaxError`` and ``TemplateRenderError``. Pure: no Django, no I/O, no clock.

Decisions where the SparkPost documentation is silent or ambiguous (SPEC B §4):

- ``loop_index`` is **0-based**, as in SparkPost's published examples.
- ``loop_var`` is the innermost loop's element; ``loop_vars.<name>`` is the current
  element of the enclosing loop over the array whose last path component is ``<name>``
  (resolved at compile time). Outside a loop these names read recipient data.
- ``each`` over an object iterates its values in document order; over nil/false or an
  empty array renders nothing; over a string, number or boolean is a render error.
- Lua semantics: only ``false`` and nil are false (0 and "" are true); ``and``/``or``
  return an operand; ``==`` never equates different types (``1 ~= true``, ``1 ~= "1"``);
  ``< <= > >=`` between anything but two numbers or two strings, arithmetic on
  non-numeric values and division by zero are render errors; numeric strings coerce in
  arithmetic. ``~=``, ``%`` and ``..`` are accepted as well.
- Values render as: nil → "", booleans → true/false, integral numbers without ".0",
  other floats with 14 significant digits, arrays/objects as compact JSON.
- ``#x`` is the length of an array or string, 0 for nil and objects.
- ``empty(x)`` is true for nil, ``[]``, ``{}`` and "".
- HTML escaping: ``& < > " ' /`` → ``&amp; &lt; &gt; &quot; &#x27; &#x2F;``.
  URL context (inside a scanned link, or after a literal http(s):// on the same line
  with no whitespace/quote/``<``/``>`` in between): ``{{ }}`` is percent-encoded
  (unreserved ``-_.~`` kept), ``{{{ }}}`` is raw. Headers are never escaped.
- Dynamic content comes from the transmission-level ``dynamic_html`` /
  ``dynamic_plain`` / ``dynamic_amp_html`` (see ``build_context``); a chunk can render
  another chunk, up to ``RenderLimits.max_dynamic_depth`` (2). Chunks render with the
  recipient's data plus the current ``loop_var``/``loop_index``/``loop_vars``, insert
  unescaped, get their links tracked (via ``Tracker.compile_dynamic``) but never pixels.
  A missing chunk renders ""; a chunk that does not compile is a render error.
- Syntax errors report the line of the offending tag (for an unclosed block, the line of
  the ``if``/``each`` that is not closed).
- Render limits (``RenderLimits``) count characters per rendered part and loop iterations per part
  render; ``CompiledContent.render(max_bytes=...)`` caps the whole message (every part
  and header), stopping the render that passes it (``MessageTooLarge``).
"""

from __future__ import annotations

from .compiler import DEFAULT_RENDER_LIMITS, CompiledPart, RenderLimits, Tracker, compile_part
from .content import CompiledContent, compile_content
from .context import RESERVED_KEYS, build_context, reserved_key_problem, validate_data_keys
from .errors import MessageTooLarge, TemplateError, TemplateRenderError, TemplateSyntaxError

__all__ = [
    "DEFAULT_RENDER_LIMITS",
    "RESERVED_KEYS",
    "CompiledContent",
    "CompiledPart",
    "RenderLimits",
    "MessageTooLarge",
    "TemplateError",
    "TemplateRenderError",
    "TemplateSyntaxError",
    "Tracker",
    "build_context",
    "compile_content",
    "compile_part",
    "reserved_key_problem",
    "validate_data_keys",
]
