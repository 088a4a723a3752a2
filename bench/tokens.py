"""Micro benchmark of the tracking token codec and link rewriter.

    .venv/bin/python bench/tokens.py

Prints microseconds per operation (best of several runs). Target: a click token in at most
5 us, so that ~10 links per message stay well inside the ~100 us render+track budget.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailcore.links import rewrite_html, scan_html  # noqa: E402
from mailcore.tokens import TokenSigner  # noqa: E402

SIGNER = TokenSigner([(2, b"bench-new-key-0123456789abcdef"), (1, b"bench-old-key-0123456789abcdef")])
MESSAGE = dict(
    message_id="0000632c8b54d53f0a00",
    transmission_id="11898458545848322",
    rcpt_to="jo.smith@example.com",
    issued_at=1_790_000_000,
    campaign_id="spring-sale",
    template_id="newsletter",
    template_version=3,
    rcpt_meta={"customer_id": "123456", "plan": "gold", "region": "eu-west", "first_name": "Alexandra"},
    rcpt_tags=["promo", "eu"],
)
URL = "https://shop.example.com/products/shoes?utm_source=newsletter&utm_medium=email&utm_campaign=spring"
WRITTEN = URL.replace("spring", "{{campaign}}")  # the template's href of a personalised link
EMAIL = (
    "<!DOCTYPE html><html><head><style>p{margin:0}</style></head><body style='margin:0'>"
    + "".join(
        f'<table><tr><td><p class="c">Item {i}: great &amp; cheap</p>'
        f'<a href="{URL}&amp;i={i}" title="Item {i}" data-msys-linkname="item-{i}">Buy</a></td></tr></table>\n'
        for i in range(10)
    )
    + "</body></html>"
)


def _per_call(stmt, number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def main() -> None:
    tokens = SIGNER.for_message(**MESSAGE)
    click = tokens.click(URL, "Shop now")
    rows = [
        ("click token (MessageTokens.click)", _per_call(lambda: tokens.click(URL, "Shop now"), 100_000)),
        (
            "click token, personalised link as written",
            _per_call(lambda: tokens.click(URL, "Shop now", position=3, written=WRITTEN), 100_000),
        ),
        ("open token (MessageTokens.open)", _per_call(lambda: tokens.open("open"), 100_000)),
        ("per-message setup (for_message)", _per_call(lambda: SIGNER.for_message(**MESSAGE), 20_000)),
        ("decode + verify a click", _per_call(lambda: SIGNER.decode(click, now=1_790_000_000, max_age=1), 20_000)),
        (f"scan_html, {len(EMAIL)} chars, 10 links", _per_call(lambda: scan_html(EMAIL), 2_000)),
        (
            "rewrite_html with 10 real click tokens",
            _per_call(
                lambda: rewrite_html(EMAIL, lambda url, span: "http://t/f/" + tokens.click(url, span.name)), 2_000
            ),
        ),
    ]
    print(f"click token length: {len(click)} chars for a {len(URL)}-char URL with metadata")
    for label, micros in rows:
        print(f"{label:45s} {micros:8.2f} us")


if __name__ == "__main__":
    main()
