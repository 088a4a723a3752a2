"""Benchmark: compile once, render + track one message per recipient.

Run: ``.venv/bin/python bench/render_track.py [--recipients N]``.

Builds a realistic message (~10 KB HTML with 10 links, 5 substitutions, an ``if`` and an
``each``, plus a text part), compiles it once with the link scanners, then renders it for
N recipients with a tracker that signs a real click token per link and inserts the open
pixels. It prints messages/s on one core, next to Jinja2 rendering the equivalent
template (autoescaped, no tracking) in the same run, and the ratios.
Targets: >= 10,000 messages/s per core including link tokens, >= 25 % of Jinja2's speed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jinja2  # noqa: E402

from mailcore.language import build_context, compile_content  # noqa: E402

try:
    from mailcore.links import pixel_html, scan_html, scan_text
    from mailcore.tokens import TokenSigner

    REAL_TRACKING = True
except ImportError:  # the tracking core is not there yet: fall back to a stand-in
    REAL_TRACKING = False

BASE = "http://localhost:8000"
FILLER = (
    '<tr><td style="padding:12px 24px;font-family:Helvetica,Arial,sans-serif;font-size:15px;'
    'line-height:22px;color:#333333;">Our spring collection is here. Lightweight fabrics, '
    "fresh colours and the same fit you love. Free returns for 60 days.</td></tr>\n"
)


def build_html() -> str:
    links = "".join(
        f'<tr><td><a href="https://shop.example.com/c/{i}?utm_source=mail&amp;utm_campaign=spring'
        f'&amp;user={{{{user_id}}}}" data-msys-linkname="cat{i}" style="color:#0066cc">Category {i}</a>'
        "</td></tr>\n"
        for i in range(1, 9)
    )
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{{subject_line}}</title></head>\n'
        '<body style="margin:0;padding:0">\n<table width="600" cellpadding="0" cellspacing="0">\n'
        "<tr><td><h1>Hello {{first_name or 'there'}},</h1></td></tr>\n"
        + FILLER * 35
        + "{{if vip}}\n<tr><td><b>As a VIP member ({{tier}}) you get early access.</b></td></tr>\n{{end}}\n"
        + "{{each items}}\n<tr><td>{{loop_var.name}}: {{loop_var.price}} EUR</td></tr>\n{{end}}\n"
        + links
        + '<tr><td><a href="https://shop.example.com/account?u={{user_id}}">Your account</a></td></tr>\n'
        + '<tr><td><a href="https://shop.example.com/unsub?u={{user_id}}&amp;e={{email}}" '
        'data-msys-unsubscribe="1">Unsubscribe</a></td></tr>\n'
        + "<tr><td>Sent to {{email}} by {{company}}.</td></tr>\n</table>\n</body></html>\n"
    )


def build_text() -> str:
    return (
        "Hello {{first_name or 'there'}},\n\nOur spring collection is here.\n"
        "{{if vip}}\nVIP ({{tier}}): early access.\n{{end}}\n"
        "{{each items}}\n- {{loop_var.name}}: {{loop_var.price}} EUR\n{{end}}\n"
        "Shop: https://shop.example.com/?u={{user_id}}\n"
        'Unsubscribe: https://shop.example.com/unsub?u={{user_id}}[[data-msys-unsubscribe="1"]]\n'
    )


def to_jinja(source: str) -> str:
    """The same template in Jinja2 syntax (the benchmark's equivalence is by construction)."""
    return (
        source.replace("{{first_name or 'there'}}", "{{ first_name or 'there' }}")
        .replace("{{if vip}}", "{% if vip %}")
        .replace("{{end}}", "{% endif %}", 1)
        .replace("{{each items}}", "{% for loop_var in items %}")
        .replace("{{end}}", "{% endfor %}", 1)
        .replace("{{user_id}}", "{{ user_id|urlencode }}")
        .replace('[[data-msys-unsubscribe="1"]]', "")
    )


class HmacTracker:
    """Stand-in tracker: an HMAC-SHA256 token over each URL (used without tracking/)."""

    def __init__(self, key: bytes, rcpt: str) -> None:
        self.key = key
        self.rcpt = rcpt.encode()

    def link(self, url: str, span: object) -> str:
        mac = hmac.digest(self.key, self.rcpt + b"\0" + url.encode(), hashlib.sha256)
        return BASE + "/f/" + base64.urlsafe_b64encode(mac[:16] + url.encode()).decode().rstrip("=")

    def pixel(self, kind: str) -> str:
        return f'<img src="{BASE}/q/{kind}" width="1" height="1" border="0" alt="">'


class TokenTracker:
    """Real tracker: click and open tokens from mailcore.tokens, one message each."""

    __slots__ = ("tokens",)

    def __init__(self, tokens: object) -> None:
        self.tokens = tokens

    def link(self, url: str, span: object) -> str:
        token = self.tokens.click(  # as transmissions.generation.MessageTracker does
            url, span.name, unsubscribe=span.unsubscribe, position=span.position, written=span.written
        )
        if span.sublink:
            return f"{BASE}/f/{span.sublink}/{token}"
        return f"{BASE}/f/{token}"

    def pixel(self, kind: str) -> str:
        return pixel_html(f"{BASE}/q/{self.tokens.open(kind)}")


def recipient(i: int) -> dict:
    return {
        "email": f"user{i}@example.com",
        "substitution_data": {
            "first_name": f"Name{i}",
            "user_id": f"u {i}/x",
            "vip": i % 2 == 0,
            "tier": "gold",
            "items": [{"name": "Shirt <slim>", "price": 29.9}, {"name": "Hat", "price": 15}],
        },
        "metadata": {"segment": "spring", "rank": i},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    args = parser.parse_args()
    n = args.recipients

    html, text = build_html(), build_text()
    content = {"subject": "Spring for {{first_name}}", "from": "shop@example.com", "html": html, "text": text}
    tx_data = {"company": "Shop & Co", "subject_line": "Spring"}
    recipients = [recipient(i) for i in range(n)]

    t0 = time.perf_counter()
    compiled = compile_content(
        content, scan_html=scan_html if REAL_TRACKING else None, scan_text=scan_text if REAL_TRACKING else None
    )
    compile_ms = (time.perf_counter() - t0) * 1000
    signer = TokenSigner([(1, b"0123456789abcdef0123456789abcdef")]) if REAL_TRACKING else None

    def context(r: dict) -> dict:
        """One recipient's substitution context, built as generation builds it."""
        return build_context(
            tx_metadata=None,
            tx_substitution_data=tx_data,
            rcpt_metadata=r["metadata"],
            rcpt_substitution_data=r["substitution_data"],
            address_email=r["email"],
            address_name=None,
            return_path="bounces@example.com",
        )

    def run_tracked() -> int:
        size = 0
        for i, r in enumerate(recipients):
            data = context(r)
            if signer is not None:
                tracker = TokenTracker(
                    signer.for_message(
                        message_id=f"{i:020d}",
                        transmission_id="84537359",
                        rcpt_to=r["email"],
                        issued_at=1_700_000_000,
                        campaign_id="spring",
                        rcpt_meta=r["metadata"],
                    )
                )
            else:
                tracker = HmacTracker(b"0123456789abcdef0123456789abcdef", r["email"])
            out = compiled.render(data, tracker)
            size += len(out["html"]) + len(out["text"])
        return size

    def run_untracked() -> int:
        size = 0
        for r in recipients:
            data = context(r)
            out = compiled.render(data)
            size += len(out["html"]) + len(out["text"])
        return size

    env = jinja2.Environment(autoescape=True)
    j_html, j_text = env.from_string(to_jinja(html)), jinja2.Environment().from_string(to_jinja(text))
    j_subject = jinja2.Environment().from_string("Spring for {{ first_name }}")

    def run_jinja() -> int:
        size = 0
        for r in recipients:
            data = {**tx_data, **r["metadata"], **r["substitution_data"], "email": r["email"]}
            h, t = j_html.render(data), j_text.render(data)
            j_subject.render(data)
            size += len(h) + len(t)
        return size

    def best_rate(fn) -> tuple[float, int]:
        best = None
        size = 0
        for _ in range(3):
            start = time.perf_counter()
            size = fn()
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        return n / best, size

    tracked, tracked_size = best_rate(run_tracked)
    untracked, _ = best_rate(run_untracked)
    jinja_rate, jinja_size = best_rate(run_jinja)

    print(f"message: html {len(html)} chars, text {len(text)} chars, 10 links, compiled in {compile_ms:.1f} ms")
    print(
        "tracking: "
        + (
            "real mailcore.links scan + mailcore.tokens click/open tokens"
            if REAL_TRACKING
            else "stand-in HMAC-SHA256 tracker (tracking/ not importable)"
        )
    )
    print(f"recipients: {n}, best of 3 runs, one core")
    print(
        f"engage render + tracking  : {tracked:10,.0f} messages/s ({1e6 / tracked:6.1f} us/message, "
        f"{tracked_size / n / 1024:.1f} KiB/message)"
    )
    print(f"engage render, no tracking: {untracked:10,.0f} messages/s ({1e6 / untracked:6.1f} us/message)")
    print(
        f"jinja2 render, no tracking: {jinja_rate:10,.0f} messages/s ({1e6 / jinja_rate:6.1f} us/message, "
        f"{jinja_size / n / 1024:.1f} KiB/message)"
    )
    print(f"ratio engage/jinja2 (both untracked): {untracked / jinja_rate:.2f}")
    print(f"ratio engage with tracking / jinja2 without: {tracked / jinja_rate:.2f}")
    ok = tracked >= 10_000 and tracked / jinja_rate >= 0.25
    print("targets (>= 10,000 msg/s with tracking, >= 25% of jinja2): " + ("met" if ok else "NOT met"))


if __name__ == "__main__":
    main()
