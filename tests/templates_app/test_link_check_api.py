"""``POST /api/v1/link-check`` (Engage's own): content or a stored template, the verdicts of
the tracking core (tests/core/test_link_check.py checks them against the rewriting), errors."""

from __future__ import annotations

import pytest

from templates_app.services import template_create
from tests.helpers import assert_documented, assert_error

pytestmark = pytest.mark.django_db

HTML = (
    '<a href="https://example.com/start?u={{user}}" data-msys-linkname="start">Start</a>\n'
    '<a href="mailto:help@example.com">Help</a>\n'
    '<a href="tel:+15550100">Call</a>\n'
    '<a href="#top">Top</a>\n'
    '<a href="https://example.com/private" data-msys-clicktrack="0">Private</a>\n'
    '<a href="{{{url}}}">Expression</a>\n'
    '<a href="https://example.com/' + "x" * 4100 + '">Long</a>\n'
    '<a href="ftp://example.com/file">File</a>\n'
)
CONTENT = {"from": "Shop <shop@example.com>", "subject": "Hi", "html": HTML, "text": "Go https://example.com/t"}
DATA = {"user": "ada lovelace", "url": "https://example.com/expr"}


def check(api, body):
    return api.post("/api/v1/link-check", body, format="json")


def test_it_checks_inline_content(api):
    response = check(api, {"content": CONTENT, "substitution_data": DATA})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert results["click_tracking"] is True
    links = results["links"]
    assert [(link["part"], link["position"], link["tracked"], link["reason"]) for link in links] == [
        ("html", 0, True, None),
        ("html", 1, False, "mailto"),
        ("html", 2, False, "tel"),
        ("html", 3, False, "anchor"),
        ("html", 4, False, "opt_out"),
        ("html", 5, False, "scheme_in_expression"),
        ("html", 6, False, "too_long"),
        ("html", 7, False, "not_http"),
        ("text", 0, True, None),
    ]
    first = links[0]
    assert first["url"] == "https://example.com/start?u=ada%20lovelace"
    assert first["link_name"] == "start" and first["line"] == 1 and first["origin"] == "template"
    assert links[5]["url"] == "https://example.com/expr"
    assert all(link["reason_text"] for link in links if link["reason"])
    assert_documented(api, response, "/api/v1/link-check", "POST")


def test_it_checks_a_stored_template_with_its_options(api):
    template_create(
        template_id="welcome",
        name="Welcome",
        content={**CONTENT, "from": {"email": "shop@example.com"}},
        options={"click_tracking": False},
    )
    off = check(api, {"template_id": "welcome", "substitution_data": DATA}).json()["results"]
    assert off["click_tracking"] is False
    assert off["links"][0]["reason"] == "click_tracking_off"
    on = check(api, {"template_id": "welcome", "draft": True, "options": {"click_tracking": True}})
    assert on.json()["results"]["links"][0]["tracked"] is True


def test_the_grant_is_templates_view(api_with):
    body = {"content": {"html": '<a href="https://example.com">x</a>'}}
    assert check(api_with("templates/view"), body).status_code == 200
    assert_error(check(api_with("transmissions/modify"), body), 403, "1100")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "1400"),
        ({"content": {"subject": "no body"}}, 422, "1400"),
        ({"content": {"html": "x"}, "template_id": "welcome"}, 422, "1301"),
        ({"template_id": "nope"}, 404, "1600"),
        ({"content": {"html": "{{if x}}"}}, 422, "3000"),
        ({"content": {"html": "{{ 1 / 0 }}"}}, 422, "3001"),
        ({"content": {"email_rfc822": "Subject: x\r\n\r\nbody"}}, 422, "1300"),
        ({"content": {"html": "x"}, "substitution_data": {"email": "x"}}, 422, "1300"),
        ({"content": {"html": 5}}, 422, "1300"),
        ({"content": {"html": "x"}, "options": {"click_tracking": "yes"}}, 422, "1300"),
        ({"content": {"html": "x"}, "substitution_data": []}, 422, "1300"),
    ],
)
def test_errors_are_sparkpost_envelopes(api, body, status, code):
    assert_error(check(api, body), status, code)


def test_a_syntax_error_names_the_part_and_line(api):
    error = assert_error(check(api, {"content": {"html": "<p>\n\n{{ if }}</p>"}}), 422, "3000")
    assert (error["part"], error["line"]) == ("html", 3)


def test_the_draft_of_a_template_without_one_is_refused(api):
    template_create(template_id="pub", name="Pub", published=True, content=CONTENT, options={})
    assert_error(check(api, {"template_id": "pub", "draft": True}), 422, "2004")


def test_the_apis_verdicts_are_what_generation_does_with_the_same_content(api):
    """The corpus through the real generator's pieces: compiled with the link scanners,
    rendered with ``transmissions.generation.MessageTracker`` and signed tokens; the targets the
    click tokens carry are exactly the API's tracked URLs, and every other link is left as is."""
    import re

    from mailcore.language import build_context, compile_content
    from mailcore.links import scan_html, scan_text, unescape_attribute
    from mailcore.options import effective_options
    from tracking.signing import tracking_signer
    from transmissions.generation import MessageTracker

    content = {"html": HTML + '<a href="https://example.com/x?a=1&amp;b={{user}}">Amp</a>\n', "text": CONTENT["text"]}
    links = check(api, {"content": content, "substitution_data": DATA}).json()["results"]["links"]
    signer = tracking_signer()
    tokens = signer.for_message(message_id="m1", transmission_id="1", rcpt_to="", issued_at=1_700_000_000)
    options = effective_options(transmission=None, template=None, defaults={})
    tracker = MessageTracker(base_url="https://track.test", tokens=tokens, options=options)
    context = build_context(
        tx_metadata={}, tx_substitution_data=DATA, rcpt_metadata={}, rcpt_substitution_data={},
        address_email="", address_name="", return_path="",
    )  # fmt: skip
    rendered = compile_content(content, scan_html=scan_html, scan_text=scan_text).render(context, tracker)
    sent = rendered["html"] + "\n" + rendered["text"]
    decoded = [
        signer.decode(token, now=1_700_000_000, max_age=10)
        for token in re.findall(r"https://track\.test/f/([A-Za-z0-9_-]+)", sent)
    ]
    # the URL and the engage_link_position each click reports are the API's for that link
    assert [(token.target_url, token.link_position) for token in decoded] == [
        (link["url"], link["link_position"]) for link in links if link["tracked"]
    ]
    untracked = [link["url"] for link in links if not link["tracked"]]
    assert len(untracked) == 7
    assert all(url in unescape_attribute(sent) for url in untracked)


def test_link_position_is_the_one_clicks_report_and_untracked_links_have_none(api):
    """The newcomer's case: the second pricing link comes after a mailto link. Its clicks say
    engage_link_position 2 (the report's Position 2): the mailto link is not counted."""
    html = (
        '<a href="https://example.com/start">Start</a>\n'
        '<a href="https://example.com/pricing">Pricing</a>\n'
        '<a href="mailto:sales@example.com">Sales</a>\n'
        '<a href="https://example.com/pricing">Pricing again</a>\n'
    )
    content = {"html": html, "text": "Pricing: https://example.com/pricing"}
    links = check(api, {"content": content}).json()["results"]["links"]
    assert [(link["part"], link["line"], link["link_position"]) for link in links] == [
        ("html", 1, 1),
        ("html", 2, 2),
        ("html", 3, None),
        ("html", 4, 3),
        ("text", 1, 1),  # each part counts from 1
    ]
    off = check(api, {"content": content, "options": {"click_tracking": False}}).json()["results"]["links"]
    assert [link["link_position"] for link in off] == [None] * 5


def test_inline_content_over_the_template_cap_is_refused_naming_the_limit(api, settings):
    settings.ENGAGE_MAX_TEMPLATE_CONTENT_BYTES = 4096
    html = '<a href="https://example.com/a">a</a>' * 200
    error = assert_error(check(api, {"content": {"html": html}}), 422, "1300")
    assert "ENGAGE_MAX_TEMPLATE_CONTENT_BYTES" in error["description"] and "4096 bytes" in error["description"]
    assert error["limit"] == 4096
    assert check(api, {"content": {"html": html[:2000]}}).status_code == 200


def test_only_the_first_links_are_listed_and_the_answer_says_how_many(api):
    from mailcore.link_check import MAX_LINKS_LISTED

    html = "".join(f'<a href="https://example.com/p{i}">{i}</a>\n' for i in range(MAX_LINKS_LISTED + 250))
    response = check(api, {"content": {"html": html, "text": "https://example.com/t"}})
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results["links"]) == MAX_LINKS_LISTED
    assert results["total_links"] == MAX_LINKS_LISTED + 251 and results["truncated"] is True
    assert results["links"][-1]["url"] == f"https://example.com/p{MAX_LINKS_LISTED - 1}"
    assert_documented(api, response, "/api/v1/link-check", "POST")
    small = check(api, {"content": {"html": html[:200]}}).json()["results"]
    assert small["truncated"] is False and small["total_links"] == len(small["links"])
