"""Tokenizer and parser for the expressions inside ``{{ }}`` tags.

The grammar is the Lua subset SparkPost documents, lowest precedence first::

    or  <  and  <  == ~= != < > <= >=  <  ..  <  + -  <  * / %  <  not # - (unary)
    postfix: a.b  a['b']  a[expr]  macro(args)

The parser returns a small tuple AST that ``codegen`` turns into Python source. Names are
never turned into Python identifiers; they travel as string constants, so template text
cannot inject code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or each "
    "repeat return then true until while goto".split()
)

MAX_EXPR_DEPTH = 40

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<str>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<op>\.\.|==|~=|!=|<=|>=|[-+*/%\#<>()\[\].,])
    """,
    re.VERBOSE | re.DOTALL,
)

#: An expression node: its kind first ('lit', 'name', 'bin', ... see ``Parser``), then its
#: operands: names, literal values, operator names, nested nodes, a tuple of call arguments.
Ast = tuple[str, *tuple[Any, ...]]

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}


@dataclass(frozen=True, slots=True)
class Tok:
    """One expression token: kind is 'name', 'kw', 'num', 'str', 'op' or 'eof'."""

    kind: str
    value: Any
    text: str
    pos: int  # offset in the template source


class ExprError(Exception):
    """A syntax error inside a tag, with the source offset it refers to."""

    def __init__(self, detail: str, pos: int) -> None:
        self.detail = detail
        self.pos = pos
        super().__init__(detail)


def _unquote(body: str, pos: int) -> str:
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n:
            e = body[i + 1]
            if e in _ESCAPES:
                out.append(_ESCAPES[e])
                i += 2
                continue
            raise ExprError(f"invalid escape sequence '\\{e}'", pos)
        out.append(c)
        i += 1
    return "".join(out)


def tokenize(text: str, base: int) -> list[Tok]:
    """Split a tag's content into tokens; ``base`` is its offset in the source."""
    toks: list[Tok] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            bad = text[pos]
            if bad in "'\"":
                raise ExprError("unfinished string", base + pos)
            raise ExprError(f"unexpected symbol near '{bad}'", base + pos)
        kind = m.lastgroup
        s = m.group()
        if kind == "num":
            value: Any = int(s, 16) if s[:2] in ("0x", "0X") else (int(s) if s.isdigit() else float(s))
            toks.append(Tok("num", value, s, base + pos))
        elif kind == "name":
            toks.append(Tok("kw" if s in KEYWORDS else "name", s, s, base + pos))
        elif kind == "str":
            toks.append(Tok("str", _unquote(s[1:-1], base + pos), s, base + pos))
        elif kind == "op":
            toks.append(Tok("op", s, s, base + pos))
        pos = m.end()
    toks.append(Tok("eof", None, "}}", base + n))
    return toks


_CMP = {"==": "eq", "~=": "ne", "!=": "ne", "<": "lt", ">": "gt", "<=": "le", ">=": "ge"}
_ADD = {"+": "add", "-": "sub"}
_MUL = {"*": "mul", "/": "div", "%": "mod"}


class Parser:
    """Recursive-descent parser over one tag's tokens.

    AST nodes: ('lit', v) ('name', n) ('attr', obj, key) ('index', obj, keyexpr)
    ('call', name, args) ('and', a, b) ('or', a, b) ('not', a) ('len', a) ('neg', a)
    ('bin', opname, a, b) where opname is one of eq ne lt gt le ge add sub mul div mod concat.
    """

    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0

    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def next(self) -> Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def error(self, tok: Tok | None = None) -> ExprError:
        t = tok or self.tok
        return ExprError(f"syntax error near '{t.text}'", t.pos)

    def at_op(self, *ops: str) -> bool:
        t = self.tok
        return t.kind == "op" and t.value in ops

    def at_kw(self, *kws: str) -> bool:
        t = self.tok
        return t.kind == "kw" and t.value in kws

    def expect_op(self, op: str) -> None:
        if not self.at_op(op):
            raise self.error()
        self.i += 1

    def expect_end(self) -> None:
        if self.tok.kind != "eof":
            raise self.error()

    def parse_expr(self) -> Ast:
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            raise ExprError("expression nested too deeply", self.tok.pos)
        try:
            return self._or()
        finally:
            self.depth -= 1

    def _or(self) -> Ast:
        left = self._and()
        while self.at_kw("or"):
            self.i += 1
            left = ("or", left, self._and())
        return left

    def _and(self) -> Ast:
        left = self._cmp()
        while self.at_kw("and"):
            self.i += 1
            left = ("and", left, self._cmp())
        return left

    def _cmp(self) -> Ast:
        left = self._concat()
        while self.tok.kind == "op" and self.tok.value in _CMP:
            op = _CMP[self.next().value]
            left = ("bin", op, left, self._concat())
        return left

    def _concat(self) -> Ast:
        left = self._add()
        if self.at_op(".."):
            self.i += 1
            self._nest()
            try:
                return ("bin", "concat", left, self._concat())
            finally:
                self.depth -= 1
        return left

    def _add(self) -> Ast:
        left = self._mul()
        while self.tok.kind == "op" and self.tok.value in _ADD:
            op = _ADD[self.next().value]
            left = ("bin", op, left, self._mul())
        return left

    def _mul(self) -> Ast:
        left = self._unary()
        while self.tok.kind == "op" and self.tok.value in _MUL:
            op = _MUL[self.next().value]
            left = ("bin", op, left, self._unary())
        return left

    def _nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_EXPR_DEPTH:
            raise ExprError("expression nested too deeply", self.tok.pos)

    def _unary(self) -> Ast:
        t = self.tok
        if t.kind == "kw" and t.value == "not":
            kind = "not"
        elif t.kind == "op" and t.value == "#":
            kind = "len"
        elif t.kind == "op" and t.value == "-":
            kind = "neg"
        else:
            return self._postfix()
        self.i += 1
        self._nest()
        try:
            operand = self._unary()
        finally:
            self.depth -= 1
        if (
            kind == "neg"
            and operand[0] == "lit"
            and isinstance(operand[1], (int, float))
            and not isinstance(operand[1], bool)
        ):
            return ("lit", -operand[1])
        return (kind, operand)

    def _postfix(self) -> Ast:
        node = self._primary()
        chain = 0
        while True:
            chain += 1
            if chain > MAX_EXPR_DEPTH:
                raise ExprError("expression nested too deeply", self.tok.pos)
            t = self.tok
            if t.kind == "op" and t.value == ".":
                self.i += 1
                k = self.next()
                if k.kind != "name" and k.kind != "kw":
                    raise self.error(k)
                node = ("attr", node, k.value)
            elif t.kind == "op" and t.value == "[":
                self.i += 1
                key = self.parse_expr()
                self.expect_op("]")
                node = ("attr", node, key[1]) if key[0] == "lit" and isinstance(key[1], str) else ("index", node, key)
            elif t.kind == "op" and t.value == "(":
                if node[0] != "name":
                    raise self.error(t)
                self.i += 1
                args: list[Ast] = []
                if not self.at_op(")"):
                    args.append(self.parse_expr())
                    while self.at_op(","):
                        self.i += 1
                        args.append(self.parse_expr())
                self.expect_op(")")
                node = ("call", node[1], tuple(args), t.pos)
            else:
                return node

    def _primary(self) -> Ast:
        t = self.next()
        if t.kind == "name":
            return ("name", t.value)
        if t.kind in ("num", "str"):
            return ("lit", t.value)
        if t.kind == "kw":
            if t.value == "true":
                return ("lit", True)
            if t.value == "false":
                return ("lit", False)
            if t.value == "nil":
                return ("lit", None)
        if t.kind == "op" and t.value == "(":
            inner = self.parse_expr()
            self.expect_op(")")
            return inner
        raise self.error(t)
