"""Hard URLs: each goes through the HTML and the text rewriter with a real signed token and
must come back out of the token exactly as its author meant it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mailcore.links import LinkSpan, rewrite_html, rewrite_text, scan_html
from mailcore.tokens import TokenSigner

SIGNER = TokenSigner([(9, b"corpus-key-0123456789abcdef")])
TRACK = "http://track.example:8000/f/"
SKIP = object()


@dataclass(frozen=True)
class Case:
    url: str  # what the author means: the href after decoding character references once
    href: str | None = None  # as written in the attribute; default: & escaped as &amp;
    text: object = None  # as written in a text part (SKIP: cannot be written bare); default: url
    after: str = " now"  # what follows the URL in the text part
    quote: str = '"'

    @property
    def written_href(self) -> str:
        return self.href if self.href is not None else self.url.replace("&", "&amp;")


LONG_TAIL = "&k=" + "v" * 3950
CORPUS = [
    Case("http://example.com/?a=1&b=2"),
    Case("http://example.com/?a=1&b=2", href="http://example.com/?a=1&b=2"),  # literal & in href
    Case("https://example.com/?a=1&b=2", href="https://example.com/?a=1&#38;b=2"),
    Case("https://example.com/?a=1&b=2", href="https://example.com/?a=1&#x26;b=2"),
    Case("https://example.com/path%2Fwith%2Fslashes"),
    Case("https://example.com/a%20b?q=hello%20world"),
    Case("https://example.com/search?q=a+b+c&x=a%2Bb"),
    Case("https://example.com/?redirect=https%3A%2F%2Fother.com%2Fx%3Fy%3D1"),
    Case("https://example.com/?next=https://other.com/x?y=1&z=2"),
    Case("https://example.com/?sig=abc==&x=y=z&empty="),
    Case("https://example.com/page#a/b?c"),
    Case("https://example.com/#/route?x=1&y=2"),
    Case("https://example.com/a?b=c#frag?x=1&y=2/z"),
    Case("https://example.com:443/?q=1#"),
    Case("https://bücher.example/straße/é?ü=1&ä=ö#ß"),
    Case("https://例え.テスト/パス?q=値"),
    Case("https://xn--bcher-kva.example/"),
    Case("https://example.com/?emoji=😀&flag=🇫🇷"),
    Case("https://example.com/?q=%E2%9C%93&r=%e2%9c%93"),
    Case("https://example.com/?a[]=1&a[]=2&b[c][d]=3"),
    Case("http://[2001:db8::1]/path"),
    Case("http://[2001:db8::1]:8443/p?q=1"),
    Case("http://[::ffff:192.0.2.1]/"),
    Case("https://example.com:8443/x"),
    Case("http://127.0.0.1:8000/a/b/c"),
    Case("https://user:p%40ss@example.com/x"),
    Case("https://example.com/long?s=1" + LONG_TAIL),  # about 4000 bytes
    Case("https://example.com/" + "é" * 1990),  # about 4000 bytes of UTF-8
    Case("https://example.com/it's-a-path?name=O'Brien"),
    Case('https://example.com/?json={"a":1}', href='https://example.com/?json={"a":1}', quote="'", text=SKIP),
    Case('https://example.com/?q=He said "hi"', href="https://example.com/?q=He said &quot;hi&quot;", text=SKIP),
    Case("https://example.com/a b", text=SKIP),
    Case("https://example.com/?x=<y>", href="https://example.com/?x=&lt;y&gt;", text=SKIP),
    Case("HTTP://EXAMPLE.COM/UPPER?Q=1"),
    Case("Https://Example.com/Mixed/Case"),
    Case("https://example.com/?user={{user}}&offer={{ offer }}"),
    Case("https://example.com/{{{path}}}?x={{ x or 'a b' }}"),
    Case("http://{{{host}}}/landing"),
    Case("https://example.com/?utm_source=newsletter&utm_medium=email&utm_campaign=spring_sale&utm_content=hero"),
    Case("https://example.com/100%25-natural?d=50%25&e=%2525"),
    Case("https://example.com/path;jsessionid=ABC123?x=1;y=2"),
    Case("https://example.com/a,b,c?list=1,2,3"),
    Case("https://example.com/~user/home~"),
    Case("https://example.com/%7Euser/%41%2f"),
    Case("https://example.com/dir/", after=". Next"),
    Case("https://example.com/dir", after="... and"),
    Case("https://example.com/q?a=1", after="!?"),
    Case("https://example.com/end-dot.", text='https://example.com/end-dot.[[data-msys-linkname="n"]]'),
    Case("https://en.wikipedia.org/wiki/Python_(programming_language)", after=")."),
    Case("https://en.wikipedia.org/wiki/Foo_(bar)_(baz)", after=","),
    Case("https://example.com/md", after="]"),
    Case("https://sub.sub2.example.co.uk/a-b_c.d~e!f$g'h(i)j*k+l,m;n=o"),
    Case("https://example.com/?q=&amp;literally", href="https://example.com/?q=&amp;amp;literally"),
    Case("https://example.com/?a=1&copy=2&reg=3", href="https://example.com/?a=1&copy=2&reg=3"),
    Case("https://example.com/?currency=USD&para=1", href="https://example.com/?currency=USD&para=1"),
    Case("https://example.com/?a=1&amp=2", href="https://example.com/?a=1&amp=2"),
    Case("https://example.com/?a=1&not=2&lang=en", href="https://example.com/?a=1&not=2&lang=en"),
    Case("https://example.com/?a=1&&b=2&"),
    Case("https://example.com?no-slash=1"),
    Case("https://example.com/?next=/a/b/&x=%2e%2e"),
    Case("https://example.com/ends-with-paren)", text=SKIP),
    Case("https://example.com/tab\there", href="https://example.com/tab&#9;here", text=SKIP),
    Case("https://example.com/unquoted?a=1&b=2", href="https://example.com/unquoted?a=1&amp;b=2", quote=""),
    Case("https://example.com/x?y=1", quote="'"),
]


def _round_trip(rewrite, source: str) -> tuple[str, list[tuple[str, str]]]:
    tokens = SIGNER.for_message(
        message_id="00112233445566778899",
        transmission_id="30000000000000001",
        rcpt_to="rcpt@example.com",
        issued_at=1_800_000_000,
        rcpt_meta={"k": "v"},
    )
    made: list[tuple[str, str]] = []

    def wrap(url: str, span: LinkSpan) -> str:
        tracked = TRACK + tokens.click(url, span.name, unsubscribe=span.unsubscribe)
        made.append((url, tracked))
        return tracked

    return rewrite(source, wrap), made


def _decoded_target(tracked: str) -> str:
    decoded = SIGNER.decode(tracked.removeprefix(TRACK), now=1_800_000_000, max_age=31_536_000)
    assert decoded.kind == "click" and decoded.message_id == "00112233445566778899"
    return decoded.target_url


def test_corpus_is_big_enough():
    assert len(CORPUS) >= 50
    assert any(3900 <= len(case.url.encode()) <= 4096 for case in CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.url[:60])
def test_html_link_round_trips_through_a_real_token(case):
    q = case.quote
    before = f'<html><body><p>Caf\u00e9 &amp; more</p>\n<a title="t" href={q}{case.written_href}{q}'
    html = before + ' data-msys-linkname="corpus">go</a>\n</body></html>'
    out, made = _round_trip(rewrite_html, html)
    assert len(made) == 1
    (url, tracked) = made[0]
    assert url == case.url
    assert out == f"{before.replace(case.written_href, tracked)}>go</a>\n</body></html>"
    assert _decoded_target(tracked) == case.url
    if len(tracked) <= 4096:  # a tracked 4000-byte URL is itself too long to be a link
        assert [out[link.start : link.end] for link in scan_html(out).links] == [tracked]


@pytest.mark.parametrize("case", [case for case in CORPUS if case.text is not SKIP], ids=lambda case: case.url[:60])
def test_text_link_round_trips_through_a_real_token(case):
    written = case.text if case.text is not None else case.url
    text = f"Hello!\r\nVisit {written}{case.after}\nBye http://"
    out, made = _round_trip(rewrite_text, text)
    assert len(made) == 1
    (url, tracked) = made[0]
    assert url == case.url
    assert out == f"Hello!\r\nVisit {tracked}{case.after}\nBye http://"
    assert _decoded_target(tracked) == case.url


def test_corpus_urls_in_one_document_each_get_their_own_token():
    html = "".join(f"<a href={case.quote}{case.written_href}{case.quote}>{i}</a>\n" for i, case in enumerate(CORPUS))
    out, made = _round_trip(rewrite_html, html)
    assert [url for url, _ in made] == [case.url for case in CORPUS]
    assert [_decoded_target(tracked) for _, tracked in made] == [case.url for case in CORPUS]
    assert len(scan_html(out).links) == sum(len(tracked) <= 4096 for _, tracked in made)
