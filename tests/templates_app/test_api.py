"""``/api/v1/templates`` against the real database (SPEC B §2, A.1)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from templates_app.selectors import template_needed
from templates_app.services import template_delete
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

CONTENT = {"from": "Shop <shop@example.com>", "subject": "Hello {{name}}", "html": "<p>Hi {{name}}</p>", "text": "Hi"}


def create(api, **body):
    body.setdefault("content", CONTENT)
    return api.post("/api/v1/templates", body, format="json")


def get(api, template_id, query=""):
    response = api.get(f"/api/v1/templates/{template_id}{query}")
    assert response.status_code == 200, response.content
    return response.json()["results"]


def test_it_creates_a_draft_and_returns_the_id(api):
    response = create(api, id="summer", name="Summer sale")
    assert response.status_code == 200
    assert response.json() == {"results": {"id": "summer"}}
    detail = get(api, "summer")
    assert detail["published"] is False
    assert detail["has_draft"] is True and detail["has_published"] is False
    assert detail["name"] == "Summer sale"
    assert detail["content"]["from"] == {"email": "shop@example.com", "name": "Shop"}
    assert detail["options"] == {}
    assert detail["last_update_time"].endswith("+00:00")
    assert "last_use" not in detail


def test_it_works_with_a_trailing_slash_and_never_redirects(api):
    response = api.post("/api/v1/templates/", {"id": "slash", "content": CONTENT}, format="json")
    assert response.status_code == 200
    assert api.get("/api/v1/templates/slash/").status_code == 200


def test_it_generates_the_id_from_the_name_with_suffixes(api):
    ids = [create(api, name="Summer Sale! 2024").json()["results"]["id"] for _ in range(3)]
    assert ids == ["summer-sale-2024", "summer-sale-2024-2", "summer-sale-2024-3"]


def test_name_defaults_to_the_id(api):
    create(api, id="only-id")
    assert get(api, "only-id")["name"] == "only-id"


def test_missing_id_and_name_is_422_1400(api):
    assert_error(create(api), 422, "1400")


def test_duplicate_template_id_is_409_1602(api):
    create(api, id="dup")
    error = assert_error(create(api, id="dup"), 409, "1602")
    assert "dup" in error["description"]


def test_nulls_mean_not_given_and_unknown_fields_are_ignored(api):
    response = create(api, id="nulls", name=None, description=None, published=None, options=None, colour="blue")
    assert response.status_code == 200
    detail = get(api, "nulls")
    assert detail["description"] == "" and detail["published"] is False


@pytest.mark.parametrize(
    "content, field",
    [
        ({"subject": "s", "html": "h"}, "from"),
        ({"from": "a@example.com", "html": "h"}, "subject"),
        ({"from": "a@example.com", "subject": "s"}, "html"),
    ],
)
def test_missing_content_field_is_422_1400_naming_it(api, content, field):
    error = assert_error(create(api, id="x", content=content), 422, "1400")
    assert field in error["description"]


def test_missing_content_is_422_1400(api):
    response = api.post("/api/v1/templates", {"id": "x"}, format="json")
    assert_error(response, 422, "1400")


@pytest.mark.parametrize(
    "body",
    [
        {"options": {"open_tracking": "yes"}},
        {"options": "all"},
        {"published": "true"},
        {"name": 5},
        {"id": "x" * 65},
        {"name": "n" * 1025},
        {"description": "d" * 1025},
        {"content": {"from": 5, "subject": "s", "html": "h"}},
        {"content": {"from": "a@example.com", "subject": "s", "html": ["h"]}},
        {"content": {"from": "a@example.com", "subject": "s", "html": "h", "headers": {"X-A": 1}}},
        {"content": "text"},
    ],
)
def test_wrong_types_and_lengths_are_422_1300(api, body):
    body.setdefault("id", "typed")
    assert_error(create(api, **body), 422, "1300")


def test_content_over_the_size_limit_is_422_1300(api, settings):
    settings.ENGAGE_MAX_TEMPLATE_CONTENT_BYTES = 1000
    assert_error(create(api, id="big", content={**CONTENT, "html": "x" * 1001}), 422, "1300")


@pytest.mark.parametrize("header", ["Content-Type", "content-transfer-encoding"])
def test_content_type_headers_are_422_3002(api, header):
    content = {**CONTENT, "headers": {header: "text/plain"}}
    assert_error(create(api, id="hdr", content=content), 422, "3002")


def test_it_keeps_custom_headers_reply_to_and_options(api):
    content = {**CONTENT, "reply_to": "r@example.com", "headers": {"X-Campaign": "summer"}}
    options = {"open_tracking": False, "click_tracking": True, "transactional": True}
    create(api, id="full", content=content, options=options)
    detail = get(api, "full")
    assert detail["content"]["headers"] == {"X-Campaign": "summer"}
    assert detail["content"]["reply_to"] == "r@example.com"
    assert detail["options"] == options


def test_from_may_be_an_object_or_a_bare_address(api):
    create(api, id="obj", content={**CONTENT, "from": {"email": "a@example.com", "name": " A "}})
    create(api, id="bare", content={**CONTENT, "from": "b@example.com"})
    assert get(api, "obj")["content"]["from"] == {"email": "a@example.com", "name": "A"}
    assert get(api, "bare")["content"]["from"] == {"email": "b@example.com"}


def test_email_rfc822_is_accepted_alone(api):
    assert create(api, id="raw", content={"email_rfc822": "Subject: hi\r\n\r\nbody"}).status_code == 200
    assert get(api, "raw")["content"] == {"email_rfc822": "Subject: hi\r\n\r\nbody"}


def test_email_rfc822_with_other_parts_is_422_1301(api):
    assert_error(create(api, id="raw", content={"email_rfc822": "x", "html": "h"}), 422, "1301")


def test_it_creates_published_when_asked(api):
    create(api, id="pub", published=True)
    detail = get(api, "pub")
    assert detail["published"] is True and detail["has_draft"] is False and detail["has_published"] is True


def test_list_shows_every_template_with_flags(api, django_assert_max_num_queries):
    create(api, id="a-draft")
    create(api, id="b-pub", published=True, description="d")
    for n in range(5):
        create(api, id=f"c-{n}")
    with django_assert_max_num_queries(3):  # key lookup, template rows (no N+1)
        response = api.get("/api/v1/templates")
    listed = response.json()["results"]
    assert [item["id"] for item in listed][:2] == ["a-draft", "b-pub"]
    assert len(listed) == 7
    assert listed[1] == {
        "id": "b-pub",
        "name": "b-pub",
        "description": "d",
        "published": True,
        "has_draft": False,
        "has_published": True,
        "last_update_time": listed[1]["last_update_time"],
    }


def test_list_filters_by_draft(api):
    create(api, id="draft-only")
    create(api, id="pub-only", published=True)
    drafts = [t["id"] for t in api.get("/api/v1/templates?draft=true").json()["results"]]
    published = [t["id"] for t in api.get("/api/v1/templates?draft=false").json()["results"]]
    assert drafts == ["draft-only"] and published == ["pub-only"]


def test_bad_draft_query_is_400_1200(api):
    assert_error(api.get("/api/v1/templates?draft=maybe"), 400, "1200")


def test_get_unknown_template_is_404_1600(api):
    error = assert_error(api.get("/api/v1/templates/nope"), 404, "1600")
    assert error["description"] == "Template does not exist"


def test_get_draft_of_published_only_is_422_2004_and_published_of_draft_only_is_422_2005(api):
    create(api, id="pub", published=True)
    create(api, id="drf")
    assert_error(api.get("/api/v1/templates/pub?draft=true"), 422, "2004")
    assert_error(api.get("/api/v1/templates/drf?draft=false"), 422, "2005")


def test_put_creates_a_draft_from_the_published_version(api):
    create(api, id="t", published=True, options={"open_tracking": True})
    response = api.put("/api/v1/templates/t", {"options": {"click_tracking": False}}, format="json")
    assert response.status_code == 200 and response.json() == {"results": {}}
    draft = get(api, "t", "?draft=true")
    assert draft["published"] is False
    assert draft["content"] == get(api, "t", "?draft=false")["content"]
    assert draft["options"] == {"open_tracking": True, "click_tracking": False}
    assert get(api, "t")["published"] is False  # the draft is the most recent version


def test_put_content_replaces_the_whole_content(api):
    create(api, id="t", content={**CONTENT, "reply_to": "r@example.com"})
    api.put("/api/v1/templates/t", {"content": {"from": "n@example.com", "subject": "New", "text": "T"}}, format="json")
    assert get(api, "t")["content"] == {"from": {"email": "n@example.com"}, "subject": "New", "text": "T"}


def test_put_updates_only_fields_present_and_ignores_nulls(api):
    create(api, id="t", name="Name", description="Desc")
    body = {"name": None, "description": "New desc", "content": {"html": None, "text": None}, "options": None}
    assert api.put("/api/v1/templates/t", body, format="json").status_code == 200
    detail = get(api, "t")
    assert detail["name"] == "Name" and detail["description"] == "New desc"
    assert detail["content"]["subject"] == CONTENT["subject"]


def test_put_published_true_publishes_the_draft(api):
    create(api, id="t")
    api.put("/api/v1/templates/t", {"content": {**CONTENT, "subject": "v2"}}, format="json")
    assert api.put("/api/v1/templates/t", {"published": True}, format="json").status_code == 200
    detail = get(api, "t")
    assert detail["published"] is True and detail["has_draft"] is False
    assert detail["content"]["subject"] == "v2"


def test_publishing_without_a_draft_is_422_2004(api):
    create(api, id="t", published=True)
    assert_error(api.put("/api/v1/templates/t", {"published": True}, format="json"), 422, "2004")


def test_update_published_overwrites_the_published_version(api):
    create(api, id="t", published=True)
    response = api.put(
        "/api/v1/templates/t?update_published=true", {"content": {**CONTENT, "subject": "fixed"}}, format="json"
    )
    assert response.status_code == 200
    detail = get(api, "t", "?draft=false")
    assert detail["content"]["subject"] == "fixed"
    assert detail["has_draft"] is False


def test_update_published_without_a_published_version_is_422_2005(api):
    create(api, id="t")
    response = api.put("/api/v1/templates/t?update_published=true", {"description": "x"}, format="json")
    assert_error(response, 422, "2005")


def test_put_cannot_change_the_id(api):
    create(api, id="t")
    assert_error(api.put("/api/v1/templates/t", {"id": "other"}, format="json"), 422, "1300")


def test_put_unknown_template_is_404_1600(api):
    assert_error(api.put("/api/v1/templates/nope", {"name": "x"}, format="json"), 404, "1600")


def test_put_with_invalid_content_is_422(api):
    create(api, id="t")
    assert_error(api.put("/api/v1/templates/t", {"content": {"from": "a@example.com"}}, format="json"), 422, "1400")


def test_delete_removes_every_version_and_is_204(api):
    create(api, id="t", published=True)
    api.put("/api/v1/templates/t", {"description": "draft"}, format="json")
    response = api.delete("/api/v1/templates/t")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get("/api/v1/templates/t"), 404, "1600")


def test_delete_unknown_template_is_404_1600(api):
    assert_error(api.delete("/api/v1/templates/nope"), 404, "1600")


def test_delete_of_a_template_in_use_is_409_1602(api, monkeypatch):
    create(api, id="busy")
    monkeypatch.setattr("templates_app.services.template_in_use", lambda *, template_id: True)
    assert_error(api.delete("/api/v1/templates/busy"), 409, "1602")
    assert api.get("/api/v1/templates/busy").status_code == 200


def test_delete_with_no_in_use_receiver_fails_closed_and_keeps_the_template(api, monkeypatch):
    create(api, id="t")
    monkeypatch.setattr(template_needed, "receivers", [])  # transmissions' answer disconnected
    with pytest.raises(ImproperlyConfigured, match="template_needed"):
        template_delete(template_id="t")
    assert_error(api.delete("/api/v1/templates/t"), 500, "1500")
    assert api.get("/api/v1/templates/t").status_code == 200


def test_preview_renders_the_content(api):
    create(api, id="t")
    response = api.post("/api/v1/templates/t/preview?draft=true", {"substitution_data": {"name": "Ann"}}, format="json")
    assert response.status_code == 200
    preview = response.json()["results"]
    assert preview["from"] == {"email": "shop@example.com", "name": "Shop"}
    assert preview["subject"] == "Hello Ann"
    assert preview["html"] == "<p>Hi Ann</p>"
    assert preview["text"] == "Hi"


def test_preview_with_a_reserved_substitution_key_is_422_1300_naming_it(api):
    create(api, id="t")
    response = api.post("/api/v1/templates/t/preview?draft=true", {"substitution_data": {"email": "x"}}, format="json")
    error = assert_error(response, 422, "1300")
    assert "substitution_data key 'email' is reserved" in error["description"]


def test_preview_unknown_template_is_404_1600(api):
    assert_error(api.post("/api/v1/templates/nope/preview", {}, format="json"), 404, "1600")


def test_preview_of_a_missing_published_version_is_422_2005(api):
    create(api, id="t")
    assert_error(api.post("/api/v1/templates/t/preview?draft=false", {}, format="json"), 422, "2005")


def test_preview_with_non_object_substitution_data_is_422_1300(api):
    create(api, id="t")
    response = api.post("/api/v1/templates/t/preview", {"substitution_data": [1]}, format="json")
    assert_error(response, 422, "1300")


@pytest.mark.parametrize(
    "method, path, grants, allowed",
    [
        ("get", "/api/v1/templates", ("templates/view",), True),
        ("get", "/api/v1/templates", ("templates/preview",), False),
        ("post", "/api/v1/templates", ("templates/view",), False),
        ("post", "/api/v1/templates", ("templates/modify",), True),
        ("post", "/api/v1/templates/t/preview", ("templates/preview",), True),
        ("post", "/api/v1/templates/t/preview", ("templates/view",), False),
        ("delete", "/api/v1/templates/t", ("templates/view",), False),
        ("put", "/api/v1/templates/t", ("templates/view",), False),
    ],
)
def test_grants_are_checked_per_method(api, api_with, method, path, grants, allowed):
    create(api, id="t")
    client = api_with(*grants)
    body = {"id": "new", "content": CONTENT} if path == "/api/v1/templates" and method == "post" else {}
    response = getattr(client, method)(path, body, format="json")
    if allowed:
        assert response.status_code == 200, response.content
    else:
        assert_error(response, 403, "1100")


def test_a_missing_key_is_401_1303(api_with):
    assert_error(api_with().get("/api/v1/templates"), 401, "1303")


def test_patch_is_405_1102(api):
    assert_error(api.patch("/api/v1/templates/t", {}, format="json"), 405, "1102")


def test_syntax_error_is_422_3000_with_part_and_line(api):
    content = {**CONTENT, "text": "a\nb\nc\n{{if name age}}\n{{end}}"}
    response = create(api, id="bad", content=content)
    error = assert_error(response, 422, "3000")
    assert error == {
        "part": "text",
        "description": "Error while compiling part text: line 4: syntax error near 'age'",
        "line": 4,
        "code": "3000",
        "message": "substitution language syntax error in template content",
    }
    assert_error(api.get("/api/v1/templates/bad"), 404, "1600")


def test_syntax_error_in_the_subject_names_the_header_part(api):
    error = assert_error(create(api, id="bad", content={**CONTENT, "subject": "{{ if }}"}), 422, "3000")
    assert error["part"] == "Header:Subject" and error["line"] == 1


def test_put_with_a_syntax_error_is_422_3000_and_changes_nothing(api):
    create(api, id="t")
    response = api.put("/api/v1/templates/t", {"content": {**CONTENT, "html": "{{each x}}"}}, format="json")
    assert_error(response, 422, "3000")
    assert get(api, "t")["content"]["html"] == CONTENT["html"]


def test_preview_render_error_is_422_3001(api):
    create(api, id="t", content={**CONTENT, "text": "{{each a}}{{100 / loop_var}} {{end}}"})
    response = api.post("/api/v1/templates/t/preview", {"substitution_data": {"a": [0]}}, format="json")
    error = assert_error(response, 422, "3001")
    assert error["part"] == "text"


def test_preview_renders_from_reply_to_and_headers(api):
    content = {
        "from": {"email": "{{box}}@example.com", "name": "{{brand}}"},
        "subject": "s",
        "text": "t",
        "reply_to": "{{box}}@example.com",
        "headers": {"X-Brand": "{{brand}}"},
    }
    create(api, id="t", content=content)
    response = api.post(
        "/api/v1/templates/t/preview", {"substitution_data": {"box": "news", "brand": "Acme"}}, format="json"
    )
    preview = response.json()["results"]
    assert preview["from"] == {"email": "news@example.com", "name": "Acme"}
    assert preview["reply_to"] == "news@example.com"
    assert preview["headers"] == {"X-Brand": "Acme"}


def test_preview_without_a_body_renders_with_no_data(api):
    create(api, id="t", content={**CONTENT, "subject": "Hi {{name}}!"})
    response = api.post("/api/v1/templates/t/preview", format="json")
    assert response.status_code == 200
    assert response.json()["results"]["subject"] == "Hi !"
