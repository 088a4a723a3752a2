"""Every header field Engage writes, and the envelope form of addresses: PURE (standard
library and ``idna`` only, no Django, no I/O).

:func:`header_line` is the one writer: the inline path (``transmissions.generation``), the
MIME builder (``mailcore.mime``) and the ``email_rfc822`` path
(``mailcore.rfc822``) write every header through it. What it guarantees, whatever the
value:

- No line break from data. CR LF, and any other control character (C0, DEL, C1, U+2028,
  U+2029) becomes one space; a lone surrogate becomes U+FFFD. A value can never end the
  header block or add a field (RFC 5322 §2.2, §3.5).
- No line over 998 octets (RFC 5322 §2.1.1), and lines are folded at 78 where the value
  allows it. A value that cannot be folded at whitespace (one token longer than a line) is
  written as RFC 2047 encoded words, which may be split anywhere between characters.
- Unstructured values (Subject, custom headers, List-Unsubscribe) go as they are when ASCII,
  else as RFC 2047 ``B`` encoded words of UTF-8 (RFC 2047 §5(1)). Leading and trailing
  spaces are dropped. ASCII that looks like an encoded word (``=?``) is encoded too, so a
  reader shows it as written.
- Address headers (:data:`ADDRESS_HEADERS`) are written per address (RFC 5322 §3.4): only
  the display name is encoded (RFC 2047 §5(3)), the addr-spec stays readable; a non-ASCII
  domain goes out as its IDNA A-label (RFC 5890); a non-ASCII local part goes out as UTF-8
  (RFC 6532), and the message then needs SMTPUTF8 (RFC 6531): see
  ``transmissions.delivery``. Display names have their whitespace runs collapsed to one
  space. An address header whose value holds no address is not written at all (a
  substituted ``Cc: {{cc}}`` that renders empty).

Errors: :class:`HeaderError` for a field name that is not printable ASCII without ``:``, an
address header value that is not a list of addresses (a domain literal such as
``a@[10.0.0.5]`` is not one), or a ``Bcc`` / ``Resent-Bcc`` field (:data:`BLIND_HEADERS`):
Engage never writes one that others see; the one exception is :func:`own_bcc_line`, a blind
copy's ``Bcc`` naming only its own recipient.
"""

from __future__ import annotations

import encodings
import encodings.aliases
import re
from base64 import b64encode
from binascii import Error as BinasciiError
from binascii import a2b_base64, a2b_qp
from collections.abc import Iterable, Sequence
from email.utils import getaddresses
from functools import lru_cache
from typing import cast

import idna

__all__ = [
    "ADDRESS_HEADERS",
    "BLIND_HEADERS",
    "MAX_LINE",
    "MAX_NAME",
    "Address",
    "HeaderError",
    "decode_words",
    "display_name",
    "envelope_address",
    "header_block",
    "header_line",
    "own_bcc_line",
    "needs_smtputf8",
    "parse_addresses",
    "sanitize",
]

MAX_LINE = 998  # octets, without the line end (RFC 5322 §2.1.1)
FOLD_AT = 78  # the SHOULD limit of RFC 5322 §2.1.1
MAX_NAME = 900  # a field name longer than this leaves no room for its value on the first line
_WORD_LIMIT = 200  # an atom or quoted display name longer than this is encoded (it can be split)
ADDRESS_HEADERS = frozenset({
    "from", "sender", "reply-to", "to", "cc", "bcc", "resent-from", "resent-sender", "resent-to",
    "resent-cc", "resent-bcc", "disposition-notification-to",
})  # fmt: skip

#: Never written: a Bcc header is shown to every recipient (RFC 5322 §3.6.3); a blind copy is
#: a recipient with ``header_to`` (SPEC B §1.4).
BLIND_HEADERS = frozenset({"bcc", "resent-bcc"})

#: ``(display name, addr-spec)``; the display name may be "".
Address = tuple[str, str]


class HeaderError(ValueError):
    """A header that cannot be written: a bad field name, or an address header value that is
    not a list of addresses. ``str(error)`` says which, for a ``generation_failure`` reason."""


_FIELD_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII except ':' (RFC 5322 §2.2)
_ASCII_CONTROLS = re.compile(r"\r\n|[\x00-\x1f\x7f]")
_CONTROLS = re.compile("\r\n|[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_SEGMENT = re.compile(r" *[^ ]+")
_WHITESPACE = re.compile(r"\s+")
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
_ATOMS = re.compile(rf"[{_ATEXT}]+(?: [{_ATEXT}]+)*")
# What a header may show of an addr-spec: a dot-atom (UTF-8 allowed, RFC 6532 §3.2) or a
# quoted string local part; a host name (a domain literal is refused, as at the API). The API checked it fully
# (email-validator); this keeps a rendered ``from`` or a substituted ``Cc`` honest.
_LOCAL = re.compile(
    rf"[\u0080-\U0010ffff{_ATEXT}]+(?:\.[\u0080-\U0010ffff{_ATEXT}]+)*"
    r'|"(?:[^"\\\x00-\x1f\x7f]|\\[^\x00-\x1f\x7f])*"'
)
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_ASCII_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")  # no domain literal ([10.0.0.5]): never sent to
_PLAIN_ADDRESS = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_names: dict[str, str] = {}  # field name → lower case, for names already checked


# --- values --------------------------------------------------------------------------------------


def sanitize(value: str) -> str:
    """``value`` with CR LF and every other control character (C0, DEL, C1, U+2028, U+2029)
    replaced by one space each, and lone surrogates by U+FFFD."""
    if value.isascii():
        return value if value.isprintable() else _ASCII_CONTROLS.sub(" ", value)
    return _SURROGATES.sub("\ufffd", _CONTROLS.sub(" ", value))


def _field_name(name: str) -> str:
    lname = _names.get(name)
    if lname is None:
        if not isinstance(name, str) or len(name) > MAX_NAME or not _FIELD_NAME.fullmatch(name):
            raise HeaderError(f"{name[:80]!r} is not a header field name (printable ASCII without ':')")
        if len(_names) > 4096:
            _names.clear()
        lname = _names[name] = name.lower()
    return lname


def _encoded_words(text: str, first: int, *, after_space: bool = False) -> list[str]:
    """``text`` as RFC 2047 ``B`` words of UTF-8, never splitting a character (RFC 2047 §5):
    the first at most ``first`` characters long (at least 20), the others at most 75.

    ``after_space``: a word ends right after a space when it holds one, so that a reader
    that shows adjacent words with a space between them (Python's phrase parser does, RFC
    2047 §6.2 says not to) splits no word of a display name."""
    data = text.encode("utf-8")
    words: list[str] = []
    budget = max(first, 20)
    pos = 0
    while pos < len(data):
        end = min(pos + (min(budget, 75) - 12) // 4 * 3, len(data))
        if after_space and end < len(data) and data[end] != 0x20:
            space = data.rfind(b" ", pos, end)
            if space > pos:
                end = space + 1
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1
        words.append(f"=?utf-8?b?{b64encode(data[pos:end]).decode('ascii')}?=")
        pos = end
        budget = FOLD_AT - 1
    return words


def _fold_tokens(prefix: str, tokens: Sequence[str], separators: Sequence[str] | None = None) -> str | None:
    """``prefix`` + tokens, each after its separator (``" "`` by default), a new line
    started before a separator when the line would pass 78; None when a line would pass
    998. Separators begin with a space, so every new line is a continuation line."""
    line = prefix + tokens[0]
    if len(line.encode("utf-8")) > MAX_LINE:
        return None
    lines: list[str] = []
    for index in range(1, len(tokens)):
        piece = (" " if separators is None else separators[index]) + tokens[index]
        if len(line) + len(piece) <= FOLD_AT:
            line += piece
            continue
        if len(piece.encode("utf-8")) > MAX_LINE:
            return None
        lines.append(line)
        line = piece
    lines.append(line)
    return "\n".join(lines) + "\n"


def _unstructured(name: str, value: str) -> str:
    value = sanitize(value).strip(" ")
    prefix = f"{name}: "
    if not value:
        return prefix + "\n"
    if value.isascii() and "=?" not in value:
        if len(prefix) + len(value) <= FOLD_AT:
            return f"{prefix}{value}\n"
        segments = _SEGMENT.findall(value)
        folded = _fold_tokens(prefix, segments, [""] * len(segments))
        if folded is not None:
            return folded
    return prefix + "\n ".join(_encoded_words(value, FOLD_AT - len(prefix))) + "\n"


# --- addresses -----------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _a_label(domain: str) -> str:
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise HeaderError(f"the domain {domain!r} is not a valid internationalized domain name") from None


def envelope_address(address: str) -> str:
    """``address`` as it goes in a header or in MAIL FROM / RCPT TO: the domain as its IDNA
    A-label (RFC 5890), the local part as given. Raises :class:`HeaderError` when it is not
    an addr-spec."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or not _LOCAL.fullmatch(local):
        raise HeaderError(f"{address[:254]!r} is not an email address")
    if not domain.isascii():
        domain = _a_label(domain)
    elif not _ASCII_DOMAIN.fullmatch(domain):
        raise HeaderError(f"{address[:254]!r} is not an email address")
    return f"{local}@{domain}"


def needs_smtputf8(address: str) -> bool:
    """True when the local part of ``address`` is not ASCII: only SMTPUTF8 carries it (RFC
    6531); a non-ASCII domain does not count, it goes as an A-label."""
    return not address.rpartition("@")[0].isascii()


def display_name(name: str) -> str:
    """A display name as written: control characters and whitespace runs become one space,
    ends trimmed (``"Ann\\nLee"`` → ``"Ann Lee"``)."""
    name = sanitize(name)
    if "  " in name or not name.isascii() or name[:1] == " " or name[-1:] == " ":
        name = " ".join(_WHITESPACE.split(name)).strip()
    return name


def _name_tokens(name: str) -> list[str]:
    """The display name as the words of a phrase (RFC 5322 §3.2.5): atoms as they are, a
    quoted string, or encoded words (RFC 2047 §5(3)) when not ASCII or too long."""
    if name.isascii() and "=?" not in name:
        if _ATOMS.fullmatch(name):
            words = name.split(" ")
            if max(map(len, words)) <= _WORD_LIMIT:
                return words
        elif len(name) <= _WORD_LIMIT:
            return ['"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"']
    return _encoded_words(name, 75, after_space=True)


def _address_list(name: str, addresses: Iterable[Address]) -> str:
    tokens: list[str] = []
    for display, address in addresses:
        if tokens:
            tokens[-1] += ","
        spec = envelope_address(address.strip())
        display = display_name(display) if display else ""
        if display:
            tokens += _name_tokens(display)
            tokens.append(f"<{spec}>")
        else:
            tokens.append(spec)
    if not tokens:
        return ""
    folded = _fold_tokens(f"{name}: ", tokens)
    if folded is None:  # unreachable: every token is at most ~260 octets
        raise HeaderError(f"the {name} header cannot be folded")
    return folded


def parse_addresses(value: str) -> list[Address]:
    """An address list as written in a header (``"Réply Désk <r@example.com>, b@x.test"``)
    → ``[("Réply Désk", "r@example.com"), ("", "b@x.test")]``; encoded words in names are
    decoded. Raises :class:`HeaderError` when a part of it is not an address."""
    value = sanitize(value)
    if not value.strip():
        return []
    result: list[Address] = []
    for name, address in getaddresses([value]):
        if not name and not address:
            continue
        # getaddresses is lenient: "a@b.com Bcc: c@d" gives "a@b.comBcc"; an address must
        # be found as written.
        if not address or "@" not in address or address not in value:
            raise HeaderError(f"{value[:254]!r} is not a list of email addresses")
        result.append((decode_words(name), address))
    if not result:
        raise HeaderError(f"{value[:254]!r} is not a list of email addresses")
    return result


# --- the writer ----------------------------------------------------------------------------------


def header_line(name: str, value: str | Sequence[Address]) -> bytes:
    """The header field ``name: value`` as bytes, folded, LF line ends (the relay seam writes
    CRLF); UTF-8 only in a non-ASCII local part.

    ``value`` is a string, or for an address header (:data:`ADDRESS_HEADERS`) also a list of
    :data:`Address` pairs; an address header's string is parsed as an address list. Returns
    ``b""`` for an address header with no address. Raises :class:`HeaderError` (see the
    module docstring). Sources: RFC 5322 §2.1.1, §2.2, §3.4; RFC 2047 §5; RFC 6532.
    """
    lname = _field_name(name)
    if lname in ADDRESS_HEADERS:
        if lname in BLIND_HEADERS:
            raise HeaderError(f"Engage never writes a {name} header: every recipient would see it (RFC 5322 §3.6.3)")
        if value.__class__ is list and len(value) == 1:
            display, address = value[0]
            if (not display or (_ATOMS.fullmatch(display) and "=?" not in display)) and _PLAIN_ADDRESS.fullmatch(
                address
            ):
                line = f"{name}: {display} <{address}>\n" if display else f"{name}: {address}\n"
                if len(line) <= FOLD_AT + 1:
                    return line.encode("ascii")
        return _address_list(name, parse_addresses(value) if isinstance(value, str) else value).encode("utf-8")
    text = cast(str, value)  # only an address header takes mailbox pairs
    if (
        text.isascii()
        and len(name) + len(text) <= FOLD_AT - 2
        and text.isprintable()
        and text[:1] != " "
        and text[-1:] != " "
        and "=?" not in text
    ):
        return f"{name}: {text}\n".encode("ascii")
    return _unstructured(name, text).encode("ascii")


def own_bcc_line(address: Address) -> bytes:
    """``Bcc: <address>`` for the copy sent to ``address`` alone (SparkPost's SMTP ``bcc``
    copies, SMTP-INJECTION.md §1.6): the only ``Bcc`` Engage writes, since nobody else sees
    it. Written as :func:`header_line` writes ``To`` (same encoding, folding and errors)."""
    return b"Bcc" + header_line("To", [address])[2:]


def header_block(headers: Iterable[tuple[str, str | Sequence[Address]]]) -> bytes:
    """Every ``(name, value)`` through :func:`header_line`, in order."""
    return b"".join(header_line(name, value) for name, value in headers)


# --- reading encoded words -----------------------------------------------------------------------

#: Codecs that are not a character set of text: transforms (``base64_codec``...), Python's own
#: escapes (``unicode_escape`` decodes to lone surrogates), ``punycode`` (quadratic: 16 words
#: held the listener's loop for seconds) and ``idna``, Windows-only and placeholder codecs.
_NOT_CHARSETS = frozenset({
    "aliases", "base64_codec", "bz2_codec", "charmap", "hex_codec", "idna", "mbcs", "oem", "palmos",
    "punycode", "quopri_codec", "raw_unicode_escape", "rot_13", "undefined", "unicode_escape", "uu_codec",
    "zlib_codec",
})  # fmt: skip


#: Text codecs of ``encodings`` that no alias names (``encodings.aliases`` lists the rest).
_UNALIASED_CHARSETS = frozenset({
    "cp1006", "cp720", "cp737", "cp856", "cp874", "cp875", "iso8859_1", "koi8_t", "koi8_u", "mac_arabic",
    "mac_croatian", "mac_farsi", "mac_romanian", "utf_8_sig",
})  # fmt: skip


def _charsets() -> dict[str, str]:
    """Every name this Python decodes text under (``encodings``' codec modules and their
    aliases, normalised as ``encodings.search_function`` does) → its module, minus
    :data:`_NOT_CHARSETS`."""
    modules = (set(encodings.aliases.aliases.values()) | _UNALIASED_CHARSETS) - _NOT_CHARSETS
    names = {name: name for name in modules}
    names |= {alias: module for alias, module in encodings.aliases.aliases.items() if module in modules}
    return names


#: :func:`_charsets`, made once. An encoded word's charset is looked up here, never handed to
#: ``codecs.lookup`` unknown: each unknown name was an import attempt whose failure Python
#: keeps forever (50,000 distinct names in one header froze the listener for seconds and kept
#: 5 MB: an attacker's finding).
_CHARSETS = _charsets()


def _charset(name: str) -> str | None:
    """The module of charset ``name`` (RFC 2047 §2, any case), or None when it is not one
    this Python decodes as text."""
    return _CHARSETS.get(encodings.normalize_encoding(name.lower()))


def _decode_word(match: re.Match[str]) -> str | None:
    charset = _charset(match.group(1).partition("*")[0])
    if charset is None:
        return None
    encoding, text = match.group(2).upper(), match.group(3)
    try:
        if encoding == "B":
            payload = a2b_base64(text + "=" * (-len(text) % 4))
        else:
            payload = a2b_qp(text.encode("ascii"), header=True)
        return payload.decode(charset)
    except (BinasciiError, ValueError, LookupError, UnicodeError):
        return None


def decode_words(value: str) -> str:
    """``value`` with its RFC 2047 encoded words decoded; the text around them is kept
    exactly (unlike ``str(make_header(...))``), whitespace between two adjacent encoded
    words is dropped (RFC 2047 §6.2), and a word that does not decode stays as written."""
    if "=?" not in value:
        return value
    out: list[str] = []
    pos = 0
    after_word = False
    for match in _ENCODED_WORD.finditer(value):
        decoded = _decode_word(match)
        between = value[pos : match.start()]
        if decoded is None:
            out.append(value[pos : match.end()])
            after_word = False
        else:
            if not (after_word and between.strip(" \t") == ""):
                out.append(between)
            out.append(decoded)
            after_word = True
        pos = match.end()
    out.append(value[pos:])
    return "".join(out)
