"""Every SMTP reply is printable ASCII (RFC 5321 §4.2) and carries an enhanced code (RFC 2034)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from mailcore.smtp_reply import SmtpReply
from smtp_injection import server
from smtp_injection.services import SmtpRefusal
from tests.smtp_injection.helpers import inject, login, message
from transmissions.models import Transmission

ROOT = Path(__file__).resolve().parents[2]
# The modules whose strings may become reply text: the listener and the pure SMTP code.
REPLY_MODULES = sorted(
    [*ROOT.glob("smtp_injection/*.py"), *ROOT.glob("mailcore/smtp_*.py"), ROOT / "mailcore/msys_api.py"]
)
_REPLY = re.compile(r"([2-5][0-9][0-9]) ([2-5]\.[0-9]{1,3}\.[0-9]{1,3}) (.*)", re.DOTALL)


def _text(node: ast.expr) -> str | None:
    """A string constant's text, or an f-string's with ``{}`` for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in node.values)
    return None


def _reply_texts(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of every reply template in ``path``: a string that starts like a reply
    (``"550 ..."``) and every string given to a call that builds one or an error (``SmtpReply``,
    ``SmtpRefusal``, ``_refuse``, ``...Error``) or returned (``message.data_problem``), whose
    text replies are made of."""
    texts: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if re.search(r"Reply|Refus|refuse|Error$", name):
                for arg in [*node.args, *(keyword.value for keyword in node.keywords)]:
                    text = _text(arg)
                    if text is not None:
                        texts.append((node.lineno, text))
        elif isinstance(node, ast.Return) and node.value is not None:
            text = _text(node.value)
            if text is not None:
                texts.append((node.lineno, text))
        elif isinstance(node, ast.Constant | ast.JoinedStr):
            text = _text(node)
            if text is not None and re.match(r"[2-5][0-9][0-9][ -]", text):
                texts.append((node.lineno, text))
    return texts


@pytest.mark.parametrize("path", REPLY_MODULES, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_every_reply_template_is_ascii(path):
    assert [(line, text) for line, text in _reply_texts(path) if not text.isascii()] == []


def test_the_reply_template_walk_finds_the_templates():
    texts = [text for path in REPLY_MODULES for _line, text in _reply_texts(path)]
    assert "the message contains a NUL byte" in texts
    assert any("Bcc header" in text for text in texts)
    assert len(texts) > 40


def test_the_listener_s_reply_constants_are_checked_replies():
    replies = [value for name, value in vars(server).items() if name.isupper() and isinstance(value, str)]
    replies += list(server._OWN_REPLIES.values())
    assert len(replies) > 15
    for reply in replies:
        match = _REPLY.fullmatch(reply)
        assert match, reply
        SmtpReply(int(match[1]), match[2], match[3])  # raises when not printable ASCII


def test_a_refusal_s_text_is_made_ascii():
    assert SmtpRefusal("554 5.6.0 see RFC 5322 §3.6.3").reply == "554 5.6.0 see RFC 5322 ?3.6.3"


def test_the_bcc_refusal_is_ascii(smtp, smtp_key):
    client = smtp.client()
    login(client, smtp_key)
    code, text = inject(client, ["jo@example.com"], message().replace("Subject:", "Bcc: x@example.com\r\nSubject:"))
    assert code == 554
    assert text.isascii() and b"RFC 5322 section 3.6.3" in text
    assert not Transmission.objects.exists()
