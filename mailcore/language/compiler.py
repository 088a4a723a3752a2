"""Compile a template part once into a Python function; render it once per recipient.

Compilation: ``lexer`` finds tags and applies the whitespace rules, an optional link scan
cuts the text at link and pixel offsets, a block parser builds a node tree, and ``_Gen``
turns the tree into the source of one Python function that appends precomputed literal
chunks and escaped values to a list. Names from the template only ever appear in the
generated code as ``repr()`` string constants, so no template can inject code.

Why generated code: the per-message budget (render + tracking of a 10 KB HTML part) is a
few tens of microseconds, which rules out walking a tree or running regexes per render.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from . import runtime as rt
from .errors import MessageTooLarge, OutputLimitReached, RenderFailure, TemplateRenderError, TemplateSyntaxError
from .expr import Ast, ExprError, Parser, tokenize
from .lexer import LexError, Marker, Tag, Text, apply_whitespace, cut, lex, mark_url_context

if TYPE_CHECKING:
    from mailcore.links import LinkSpan, Scan

MODES = ("html", "text", "header")
BRACE_MACROS = {
    "opening_double_curly": "{{",
    "closing_double_curly": "}}",
    "opening_triple_curly": "{{{",
    "closing_triple_curly": "}}}",
    "opening_single_curly": "{",
    "closing_single_curly": "}",
}
DYNAMIC_ROOTS = {"dynamic_html": "html", "dynamic_plain": "text", "dynamic_amp_html": "html"}
#: Key under which ``build_context`` stores the transmission-level dynamic_* objects. It is
#: not an identifier, so templates cannot read or shadow it.
DYNAMIC_SOURCE_KEY = "\x00tx_dynamic"
MAX_BLOCK_DEPTH = 40
MAX_LOOP_DEPTH = 15  # CPython allows 20 statically nested loops
MAX_DYNAMIC_CACHE = 256


@dataclass(frozen=True, slots=True)
class RenderLimits:
    """Per-render resource limits; exceeding one is a TemplateRenderError.

    ``max_output_size`` counts characters of one rendered part, ``max_loop_iterations``
    counts every ``each`` iteration (dynamic chunks included): of one part rendered alone,
    or of a whole message with :meth:`for_message` (every part, header and address of it
    together), and ``max_dynamic_depth`` bounds dynamic content rendered from dynamic content.
    """

    max_output_size: int = 20_000_000
    max_loop_iterations: int = 100_000
    max_dynamic_depth: int = 2
    #: Iterations left to the message these limits render (a one-element list every part
    #: rendered with them draws from), or None: each part gets ``max_loop_iterations``.
    message_loops: list[int] | None = field(default=None, compare=False)

    def for_message(self) -> RenderLimits:
        """These limits with one loop budget for every part rendered with them: what
        ``CompiledContent.render`` and ``mailcore.rfc822``'s message render use, so a message
        of many parts or headers, each a loop, runs at most ``max_loop_iterations`` in all
        (per part, 20,000 headers of 100,000 iterations each took minutes a message)."""
        return replace(self, message_loops=[self.max_loop_iterations])


DEFAULT_RENDER_LIMITS = RenderLimits()


class Tracker(Protocol):
    """Per-recipient tracking hooks supplied by the caller (see mailcore/links.py).

    Optionally a tracker also has ``compile_dynamic(source, mode) -> CompiledPart``, used
    to compile dynamic-content chunks with a link scan so their links get tracked; without
    it chunks are compiled without a scan. Compiled chunks are cached in the part.
    """

    def link(self, url: str, span: LinkSpan) -> str | None:
        """Return the URL text to put in place of ``url`` (entities already decoded), or
        None to leave the link exactly as written (e.g. click tracking is off)."""

    def pixel(self, kind: str) -> str:
        """Return the HTML of the ``open`` / ``initial_open`` pixel ("" for none)."""


# --- nodes ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Expr:
    ast: Ast
    esc: str  # "html" | "url" | "raw"
    pos: int


@dataclass(slots=True)
class _Dyn:
    root: str
    arg: Ast
    pos: int


@dataclass(slots=True)
class _If:
    branches: list[tuple[Ast, list[_Node]]]  # [(cond_ast, body)]
    orelse: list[_Node] | None
    pos: int


@dataclass(slots=True)
class _Each:
    ast: Ast
    name: str | None
    body: list[_Node]
    pos: int


@dataclass(slots=True)
class _Link:
    span: LinkSpan
    body: list[_Node]
    pos: int


@dataclass(slots=True)
class _Pixel:
    kind: str


#: A node of the tree: literal text or one of the node classes above.
_Node = str | _Expr | _Dyn | _If | _Each | _Link | _Pixel


class _Frame:
    __slots__ = ("kind", "node", "body", "pos", "has_else")

    def __init__(self, kind: str, node: _If | _Each | _Link | None, body: list[_Node], pos: int) -> None:
        self.kind = kind
        self.node = node
        self.body = body
        self.pos = pos
        self.has_else = False


def _line(source: str, pos: int) -> int:
    return source.count("\n", 0, max(0, min(pos, len(source)))) + 1


def _ast_depth(ast: Any) -> int:
    """Depth of an expression AST, computed without recursion."""
    best = 0
    stack = [(ast, 1)]
    while stack:
        node, d = stack.pop()
        if not isinstance(node, tuple) or not node or not isinstance(node[0], str):
            continue
        best = max(best, d)
        for child in node[1:]:
            if isinstance(child, tuple):
                if child and isinstance(child[0], tuple):
                    for c in child:
                        stack.append((c, d + 1))
                else:
                    stack.append((child, d + 1))
    return best


class _Builder:
    """Builds the node tree from lexed items; raises ExprError/LexError with offsets."""

    def __init__(self, source: str, mode: str) -> None:
        self.source = source
        self.mode = mode
        self.root: list[_Node] = []
        #: The open blocks, innermost last: the root, then ``if`` / ``each`` / link frames.
        self.stack = [_Frame("root", None, self.root, 0)]
        self.loops = 0  # open ``each`` blocks (MAX_LOOP_DEPTH)

    def parse_tag_expr(self, tag: Tag, skip_keyword: bool) -> tuple[Parser, int]:
        toks = tokenize(self.source[tag.cstart : tag.cend], tag.cstart)
        p = Parser(toks)
        if skip_keyword:
            p.i = 1
        return p, tag.cstart

    def expr(self, p: Parser) -> Ast:
        ast = p.parse_expr()
        if _ast_depth(ast) > 40:
            raise ExprError("expression nested too deeply", p.tok.pos)
        return ast

    def build(self, items: Sequence[Text | Tag | Marker]) -> list[_Node]:
        """The node tree of one part's lexed items: text, expressions, blocks and the link
        and pixel markers of the link scan. Raises ExprError (with the source offset) for a
        misplaced or unclosed block, or one nested past MAX_BLOCK_DEPTH / MAX_LOOP_DEPTH."""
        for it in items:
            if isinstance(it, Text):
                self.stack[-1].body.append(self.source[it.start : it.end])
            elif isinstance(it, Marker):
                self.marker(it)
            elif it.keyword is None:
                top = self.stack[-1]
                top.body.append(
                    self.expression(it, in_link=top.kind == "link" or any(f.kind == "link" for f in self.stack))
                )
            elif it.keyword in ("if", "each"):
                self.block_open(it, it.keyword)
            elif it.keyword == "elseif":
                self.block_elseif(it)
            elif it.keyword == "else":
                self.block_else(it)
            else:
                self.block_end(it)
        top = self.stack[-1]
        if top.kind != "root":
            what = "link" if top.kind == "link" else top.kind
            raise ExprError(
                f"'end' expected (to close '{what}' at line {_line(self.source, top.pos)}) near end of part", top.pos
            )
        return self.root

    def marker(self, it: Marker) -> None:
        """A pixel, or the start / end of a scanned link: a link is a frame of its own, and
        a block opened inside it must be closed inside it."""
        top = self.stack[-1]
        if it.kind == "pixel":
            top.body.append(_Pixel(cast(str, it.pixel)))  # a pixel marker has its kind
        elif it.kind == "link_start":
            link = _Link(cast("LinkSpan", it.span), [], it.pos)  # a link marker has its span
            top.body.append(link)
            self.stack.append(_Frame("link", link, link.body, it.pos))
        elif top.kind != "link":
            raise ExprError(
                f"'{top.kind}' opened inside a link must be closed inside it "
                f"(missing 'end' for '{top.kind}' at line {_line(self.source, top.pos)})",
                it.pos,
            )
        else:
            self.stack.pop()

    def condition(self, tag: Tag, trailing_kw: str) -> Ast:
        """The expression of an ``if`` / ``elseif`` / ``each`` tag, an optional ``then`` /
        ``do`` after it, and nothing else."""
        p, _ = self.parse_tag_expr(tag, True)
        if p.tok.kind == "eof":
            raise p.error()
        ast = self.expr(p)
        if p.at_kw(trailing_kw):
            p.i += 1
        p.expect_end()
        return ast

    def block_open(self, tag: Tag, kw: str) -> None:
        """``if`` or ``each``: a node in the current body and a frame for its own body."""
        if len(self.stack) > MAX_BLOCK_DEPTH:
            raise ExprError("blocks nested too deeply", tag.start)
        top = self.stack[-1]
        if kw == "if":
            ast = self.condition(tag, "then")
            cond = _If([(ast, [])], None, tag.start)
            top.body.append(cond)
            self.stack.append(_Frame("if", cond, cond.branches[0][1], tag.start))
            return
        ast = self.condition(tag, "do")
        self.loops += 1
        if self.loops > MAX_LOOP_DEPTH:
            raise ExprError("loops nested too deeply", tag.start)
        name = ast[1] if ast[0] == "name" else ast[2] if ast[0] == "attr" else None
        loop = _Each(ast, name, [], tag.start)
        top.body.append(loop)
        self.stack.append(_Frame("each", loop, loop.body, tag.start))

    def block_elseif(self, tag: Tag) -> None:
        top = self.stack[-1]
        if top.kind != "if" or top.has_else:
            raise self.misplaced(tag, "elseif", top)
        ast = self.condition(tag, "then")
        branch: list[_Node] = []
        cast(_If, top.node).branches.append((ast, branch))  # an "if" frame holds an _If
        top.body = branch

    def block_else(self, tag: Tag) -> None:
        top = self.stack[-1]
        if top.kind != "if" or top.has_else:
            raise self.misplaced(tag, "else", top)
        p, _ = self.parse_tag_expr(tag, True)
        p.expect_end()
        top.has_else = True
        orelse: list[_Node] = []
        cast(_If, top.node).orelse = orelse
        top.body = orelse

    def block_end(self, tag: Tag) -> None:
        top = self.stack[-1]
        if top.kind not in ("if", "each"):
            raise self.misplaced(tag, "end", top)
        p, _ = self.parse_tag_expr(tag, True)
        p.expect_end()
        if top.kind == "each":
            self.loops -= 1
        self.stack.pop()

    def misplaced(self, tag: Tag, kw: str, top: _Frame) -> ExprError:
        if top.kind == "link":
            return ExprError(f"'{kw}' inside a link does not match a block opened in the same link", tag.start)
        if kw == "end":
            return ExprError("'end' without a matching 'if' or 'each'", tag.start)
        if top.kind == "if" and top.has_else:
            return ExprError(f"syntax error near '{kw}' ('{kw}' after 'else')", tag.start)
        return ExprError(f"'{kw}' without a matching 'if'", tag.start)

    def expression(self, tag: Tag, in_link: bool) -> _Expr | _Dyn:
        p, _ = self.parse_tag_expr(tag, False)
        if p.tok.kind == "eof":
            raise ExprError("empty tag", tag.start)
        ast = self.expr(p)
        p.expect_end()
        if ast[0] == "call" and ast[1] == "render_dynamic_content":
            args = ast[2]
            if len(args) != 1:
                raise ExprError("render_dynamic_content expects one argument", ast[3])
            arg = args[0]
            root = arg
            while root[0] in ("attr", "index"):
                root = root[1]
            if root[0] != "name" or root[1] not in DYNAMIC_ROOTS or arg is root:
                raise ExprError("render_dynamic_content expects dynamic_html.<name> or dynamic_plain.<name>", ast[3])
            self.check_calls(arg)
            return _Dyn(root[1], arg, tag.start)
        self.check_calls(ast)
        if tag.triple or self.mode == "header":
            esc = "raw"
        elif in_link or tag.url:
            esc = "url"
        elif self.mode == "html":
            esc = "html"
        else:
            esc = "raw"
        return _Expr(ast, esc, tag.start)

    def check_calls(self, ast: Ast) -> None:
        stack = [ast]
        while stack:
            node = stack.pop()
            if not isinstance(node, tuple) or not node or not isinstance(node[0], str):
                continue
            if node[0] == "call":
                name, args, pos = node[1], node[2], node[3]
                if name in BRACE_MACROS:
                    if args:
                        raise ExprError(f"{name}() takes no arguments", pos)
                elif name == "empty":
                    if len(args) != 1:
                        raise ExprError("empty() expects one argument", pos)
                elif name == "render_dynamic_content":
                    raise ExprError("render_dynamic_content() must be the whole expression", pos)
                else:
                    raise ExprError(f"unknown function '{name}'", pos)
                stack.extend(args)
                continue
            for child in node[1:]:
                if isinstance(child, tuple):
                    stack.append(child)


# --- code generation -----------------------------------------------------------------

_HELPERS: dict[str, Any] = {
    "_ts": rt.tostr,
    "_he": rt.html_escape,
    "_uq": rt.url_quote,
    "_ue": rt.unescape_url,
    "_attr": rt.attr,
    "_index": rt.index,
    "_len": rt.length,
    "_empty": rt.empty,
    "_neg": rt.neg,
    "_eq": rt.eq,
    "_each": rt.each_items,
    "_enumerate": enumerate,
    "_len_": len,
    "_sum": sum,
    "_map": map,
}
_BIN = {
    "lt": "_lt",
    "gt": "_gt",
    "le": "_le",
    "ge": "_ge",
    "add": "_add",
    "sub": "_sub",
    "mul": "_mul",
    "div": "_div",
    "mod": "_mod",
    "concat": "_concat",
}
for _op, _fn in _BIN.items():
    _HELPERS[_fn] = getattr(rt, _op)
_BOOL_NODES = frozenset(["not"])


def _loops_exceeded() -> None:
    raise RenderFailure("too many loop iterations (limit reached; every part and header of a message count together)")


def _account(b: list[str], mk: int, sz: int, mx: int) -> tuple[int, int]:
    n = len(b)
    if n > mk:
        sz += sum(map(len, b[mk:]))
        if sz > mx:
            raise OutputLimitReached(f"rendered output exceeds {mx} characters")
    return n, sz


def _dyn_root(d: dict[str, Any], root: str) -> Any:
    src = d.get(DYNAMIC_SOURCE_KEY)
    if src is not None:
        return src.get(root)
    return d.get(root)


def _with_loop(d: dict[str, Any], lv: Any, li: int, lvs: dict[str, Any]) -> dict[str, Any]:
    out = dict(d)
    out["loop_var"] = lv
    out["loop_index"] = li
    out["loop_vars"] = lvs
    return out


#: ``Tracker.link`` of the render's tracker, or None without one.
_LinkHook = Callable[[str, "LinkSpan"], str | None] | None


def _link_html(L: _LinkHook, u: str, span: LinkSpan) -> str:
    if L is None:
        return u
    out = L(rt.unescape_url(u), span)
    return u if out is None else out


def _link_text(L: _LinkHook, u: str, span: LinkSpan) -> str:
    if L is None:
        return u
    out = L(u, span)
    return u if out is None else out


def _link_static(L: _LinkHook, url: str, raw: str, span: LinkSpan) -> str:
    if L is None:
        return raw
    out = L(url, span)
    return raw if out is None else out


_HELPERS.update(
    {"_loops_exceeded": _loops_exceeded, "_account": _account, "_droot": _dyn_root, "_with_loop": _with_loop}
)


def _lit(v: Any) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return f"float({str(v)!r})"
    return repr(v)


class _Gen:
    """Turns a node tree into the source of ``_render(d, _tr, _st, _dp) -> list[str]``."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.lines: list[str] = []
        self.consts: dict[str, object] = {}
        self.tmp = 0
        self.loops: list[tuple[str | None, str, str]] = []  # (array name, var, index)
        self.uses_dyn = False

    def new(self, prefix: str) -> str:
        self.tmp += 1
        return f"{prefix}{self.tmp}"

    def const(self, value: object) -> str:
        name = self.new("_K")
        self.consts[name] = value
        return name

    # expressions
    def ex(self, ast: Ast, dyn: bool = False) -> str:
        k = ast[0]
        if k == "lit":
            return _lit(ast[1])
        if k == "name":
            n = ast[1]
            if dyn and n in DYNAMIC_ROOTS:
                return f"_droot(d, {n!r})"
            if self.loops:
                if n == "loop_var":
                    return self.loops[-1][1]
                if n == "loop_index":
                    return self.loops[-1][2]
                if n == "loop_vars":
                    return self.loop_vars_dict()
            return f"d.get({n!r})"
        if k == "attr":
            obj, key = ast[1], ast[2]
            if obj == ("name", "loop_vars") and self.loops:
                for name, var, _ in reversed(self.loops):
                    if name == key:
                        return var
            return f"_attr({self.ex(obj, dyn)}, {key!r})"
        if k == "index":
            return f"_index({self.ex(ast[1], dyn)}, {self.ex(ast[2])})"
        if k == "call":
            name = ast[1]
            if name in BRACE_MACROS:
                return repr(BRACE_MACROS[name])
            return f"_empty({self.ex(ast[2][0])})"
        if k == "or" or k == "and":
            t = self.new("_t")
            a, b = self.ex(ast[1]), self.ex(ast[2])
            if k == "or":
                return f"({t} if ({t} := {a}) is not None and {t} is not False else {b})"
            return f"({t} if ({t} := {a}) is None or {t} is False else {b})"
        if k == "not":
            inner = ast[1]
            if self.is_bool(inner):
                return f"(not {self.ex(inner)})"
            t = self.new("_t")
            return f"(({t} := {self.ex(inner)}) is None or {t} is False)"
        if k == "len":
            return f"_len({self.ex(ast[1])})"
        if k == "neg":
            return f"_neg({self.ex(ast[1])})"
        if k == "bin":
            op, a, b = ast[1], ast[2], ast[3]
            if op in ("eq", "ne"):
                sa, sb = self.ex(a), self.ex(b)
                if (a[0] == "lit" and isinstance(a[1], str)) or (b[0] == "lit" and isinstance(b[1], str)):
                    return f"({sa} {'==' if op == 'eq' else '!='} {sb})"
                return f"_eq({sa}, {sb})" if op == "eq" else f"(not _eq({sa}, {sb}))"
            return f"{_BIN[op]}({self.ex(a)}, {self.ex(b)})"
        raise AssertionError(k)

    def is_bool(self, ast: Ast) -> bool:
        if ast[0] == "not":
            return True
        if ast[0] == "bin" and ast[1] in ("eq", "ne", "lt", "gt", "le", "ge"):
            return True
        if ast[0] == "call" and ast[1] == "empty":
            return True
        return ast[0] == "lit" and isinstance(ast[1], bool)

    def loop_vars_dict(self) -> str:
        items = {}
        for name, var, _ in self.loops:
            if name is not None:
                items[name] = var
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in items.items()) + "}"

    def cond(self, ast: Ast) -> str:
        if self.is_bool(ast):
            return self.ex(ast)
        t = self.new("_t")
        return f"({t} := {self.ex(ast)}) is not None and {t} is not False"

    def value(self, node: _Expr) -> str:
        ast = node.ast
        if node.esc == "html":
            if ast[0] == "call" and ast[1] in BRACE_MACROS:
                return repr(rt.html_escape(BRACE_MACROS[ast[1]]))
            return f"_he({self.ex(ast)})"
        if node.esc == "url":
            return f"_uq({self.ex(ast)})"
        if ast[0] == "lit" and isinstance(ast[1], str):
            return repr(ast[1])
        if ast[0] == "call" and ast[1] in BRACE_MACROS:
            return repr(BRACE_MACROS[ast[1]])
        return f"_ts({self.ex(ast)})"

    # statements
    def simple(self, node: _Node) -> str | None:
        """Python expression for a node that needs no statement, else None."""
        if isinstance(node, str):
            return repr(node)
        if isinstance(node, _Expr):
            return self.value(node)
        if isinstance(node, _Pixel):
            return f"(_P({node.kind!r}) if _P is not None else '')"
        if isinstance(node, _Link) and all(isinstance(c, (str, _Expr)) for c in node.body):
            span = self.const(node.span)
            if all(isinstance(c, str) for c in node.body):
                raw = "".join(cast("list[str]", node.body))  # all text, checked above
                dec = rt.unescape_url(raw) if self.mode == "html" else raw
                return f"_lk_static(_L, {dec!r}, {raw!r}, {span})"
            parts = cast("list[str]", [self.simple(c) for c in node.body])  # str and _Expr only
            expr = " + ".join(parts) if parts else "''"
            helper = "_lk_html" if self.mode == "html" else "_lk_text"
            return f"{helper}(_L, {expr}, {span})"
        return None

    def emit(self, line: str, ind: int) -> None:
        self.lines.append("    " * ind + line)

    def block(self, nodes: list[_Node], ind: int) -> None:
        run: list[str] = []

        def flush() -> None:
            if not run:
                return
            if len(run) == 1:
                self.emit(f"_a({run[0]})", ind)
            else:
                self.emit("_e((" + ", ".join(run) + ",))", ind)
            run.clear()

        merged: list[_Node] = []
        for node in nodes:
            if isinstance(node, str) and merged and isinstance(merged[-1], str):
                merged[-1] += node
            elif not (isinstance(node, str) and not node):
                merged.append(node)
        for node in merged:
            s = self.simple(node)
            if s is not None:
                run.append(s)
                continue
            flush()
            self.statement(node, ind)
        flush()
        if not merged:
            self.emit("pass", ind)

    def statement(self, node: _Node, ind: int) -> None:
        if isinstance(node, _If):
            for i, (cond, body) in enumerate(node.branches):
                self.emit(("if " if i == 0 else "elif ") + self.cond(cond) + ":", ind)
                self.block(body, ind + 1)
            if node.orelse is not None:
                self.emit("else:", ind)
                self.block(node.orelse, ind + 1)
        elif isinstance(node, _Each):
            var, idx = self.new("_lv"), self.new("_li")
            seq = self.ex(node.ast)
            self.emit(f"for {idx}, {var} in _enumerate(_each({seq})):", ind)
            self.emit("_st[0] -= 1", ind + 1)
            self.emit("if _st[0] < 0: _loops_exceeded()", ind + 1)
            self.emit("_mk, _sz = _account(_b, _mk, _sz, _st[1])", ind + 1)
            self.loops.append((node.name, var, idx))
            self.block(node.body, ind + 1)
            self.loops.pop()
        elif isinstance(node, _Link):
            m, u = self.new("_m"), self.new("_u")
            span = self.const(node.span)
            self.emit(f"{m} = _len_(_b)", ind)
            self.block(node.body, ind)
            self.emit(f"{u} = ''.join(_b[{m}:])", ind)
            self.emit(f"del _b[{m}:]", ind)
            self.emit(f"if _mk > {m}: _mk = {m}", ind)
            helper = "_lk_html" if self.mode == "html" else "_lk_text"
            self.emit(f"_a({helper}(_L, {u}, {span}))", ind)
        elif isinstance(node, _Dyn):
            self.uses_dyn = True
            chunk = self.ex(node.arg, dyn=True)
            data = "d"
            if self.loops:
                data = f"_with_loop(d, {self.loops[-1][1]}, {self.loops[-1][2]}, {self.loop_vars_dict()})"
            self.emit(f"_a(_DYN({data}, _tr, _st, _dp, {node.root!r}, {chunk}))", ind)
        else:
            raise AssertionError(node)

    def source(self, nodes: list[_Node]) -> str:
        self.lines = []
        self.block(nodes, 1)
        body = self.lines
        head = [
            "def _render(d, _tr, _st, _dp):",
            "    _b = []",
            "    _a = _b.append",
            "    _e = _b.extend",
            "    _mk = 0",
            "    _sz = 0",
            "    if _tr is not None:",
            "        _L = _tr.link",
            "        _P = _tr.pixel if _dp == 0 else None",
            "    else:",
            "        _L = _P = None",
        ]
        return "\n".join(head + body + ["    return _b", ""])


def _dynamic_node_in(nodes: list[_Node]) -> bool:
    stack = list(nodes)
    while stack:
        n = stack.pop()
        if isinstance(n, _Dyn):
            return True
        if isinstance(n, _If):
            for _, body in n.branches:
                stack.extend(body)
            if n.orelse:
                stack.extend(n.orelse)
        elif isinstance(n, (_Each, _Link)):
            stack.extend(n.body)
    return False


#: The generated ``_render(d, _tr, _st, _dp)``: the recipient's data, the tracker, the
#: render state ``[loop iterations left, output limit, dynamic depth limit]`` and the
#: dynamic-content depth; returns the output chunks.
_RenderFn = Callable[[dict[str, Any], Tracker | None, list[int], int], list[str]]


class CompiledPart:
    """One compiled part (html, text or a header); immutable apart from a chunk cache.

    ``render`` is safe to call concurrently for different recipients: per-render state
    lives in locals of the generated function and in a list created per call.
    """

    __slots__ = ("part", "mode", "source", "code", "_fn", "_dyn_cache")

    def __init__(self, part: str, mode: str, source: str, code: str, consts: dict[str, object]) -> None:
        self.part = part
        self.mode = mode
        self.source = source
        self.code = code
        self._dyn_cache: dict[tuple[str, str, bool], CompiledPart] = {}
        ns: dict[str, Any] = dict(_HELPERS)
        ns.update(consts)
        ns["_lk_html"] = _link_html
        ns["_lk_text"] = _link_text
        ns["_lk_static"] = _link_static
        ns["_DYN"] = self._dynamic
        ns["__builtins__"] = {"float": float}
        exec(compile(code, f"<template {part}>", "exec"), ns)  # noqa: S102 - generated code
        self._fn: _RenderFn = ns["_render"]

    def render(
        self,
        data: dict[str, Any],
        tracker: Tracker | None = None,
        *,
        limits: RenderLimits = DEFAULT_RENDER_LIMITS,
        budget: int | None = None,
    ) -> str:
        """Render for one recipient's data; raises TemplateRenderError.

        ``budget`` (bytes left in the whole message, see ``CompiledContent.render``) lowers
        the output limit of this render; passing it raises ``MessageTooLarge`` as soon as the
        characters rendered exceed it (a character is at least one byte).
        """
        mx = limits.max_output_size
        if budget is not None and budget < mx:
            mx = max(budget, 0)
        shared = limits.message_loops
        st = [limits.max_loop_iterations if shared is None else shared[0], mx, limits.max_dynamic_depth]
        try:
            out = "".join(self._fn(data, tracker, st, 0))
        except OutputLimitReached as e:
            if mx < limits.max_output_size:
                raise MessageTooLarge(self.part, mx) from None
            raise TemplateRenderError(self.part, e.detail) from None
        except RenderFailure as e:
            raise TemplateRenderError(self.part, e.detail) from None
        except (TypeError, ValueError, OverflowError, RecursionError, AttributeError) as e:
            raise TemplateRenderError(self.part, f"unexpected value ({e})") from None
        finally:
            if shared is not None:
                shared[0] = st[0]
        if len(out) > mx:
            if mx < limits.max_output_size:
                raise MessageTooLarge(self.part, mx)
            raise TemplateRenderError(self.part, f"rendered output exceeds {limits.max_output_size} characters")
        return out

    def _dynamic(self, d: dict[str, Any], tr: Tracker | None, st: list[int], dp: int, root: str, chunk: Any) -> str:
        if chunk is None or chunk.__class__ is not str:
            return ""
        if dp + 1 > st[2]:
            raise RenderFailure("dynamic content nested too deeply")
        mode = DYNAMIC_ROOTS[root]
        compile_dynamic = getattr(tr, "compile_dynamic", None) if tr is not None else None
        key = (mode, chunk, compile_dynamic is not None)
        cp = self._dyn_cache.get(key)
        if cp is None:
            try:
                if compile_dynamic is not None:
                    cp = compile_dynamic(chunk, mode)
                else:
                    cp = compile_part(chunk, part=self.part, mode=mode)
            except TemplateSyntaxError as e:
                raise RenderFailure(f"in dynamic content {root}: line {e.line}: {e.detail}") from None
            if len(self._dyn_cache) < MAX_DYNAMIC_CACHE:
                self._dyn_cache[key] = cp
        out = "".join(cp._fn(d, tr, st, dp + 1))
        if len(out) > st[1]:
            raise OutputLimitReached(f"rendered output exceeds {st[1]} characters")
        return out


def compile_part(source: str, *, part: str, mode: str, scan: Scan | None = None) -> CompiledPart:
    """Compile one part of a template.

    ``mode`` is "html" (``{{ }}`` HTML-escaped), "text" or "header" (raw). With a link
    ``scan`` (mailcore/links.py ``Scan``), stripped ranges vanish, each link becomes a
    node rendered in URL context and handed to ``Tracker.link``, and pixel slots call
    ``Tracker.pixel``. Raises TemplateSyntaxError naming ``part`` and the 1-based line.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    if not isinstance(source, str):
        raise TemplateSyntaxError(part, 1, "template part must be a string")
    try:
        lexed = lex(source)
        apply_whitespace(source, lexed)
        if mode != "header":
            mark_url_context(source, lexed)
        items: Sequence[Text | Tag | Marker] = lexed if scan is None else cut(source, lexed, scan)
        nodes = _Builder(source, mode).build(items)
    except (LexError, ExprError) as e:
        raise TemplateSyntaxError(part, _line(source, e.pos), e.detail) from None
    gen = _Gen(mode)
    code = gen.source(nodes)
    return CompiledPart(part, mode, source, code, gen.consts)
