"""What the template editor refuses that PostgreSQL could not store or that would become a
second header line (issue 15, the attacker's review): an error at the field, on save and in the
live preview (``editor-render/``), never a 500; nothing is saved. The API refuses the same
content with 422 in SparkPost's envelope."""

from __future__ import annotations

import pytest

from templates_app.models import Template
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

ADD = "/admin/templates_app/template/add/"
RENDER = "/admin/templates_app/template/editor-render/"


def fields(**changes) -> dict:
    return {"template_id": "e1", "name": "e1", "from_email": "a@example.com", "subject": "s",
            "html": "<p>x</p>", **changes}  # fmt: skip


def field_errors(response) -> dict:
    return response.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("headers", "said"),
    [
        ('{"X-A": "a\\u0000b"}', "X-A: contains a NUL character"),
        ('{"X-A": "\\ud800"}', "X-A: contains a lone UTF-16 surrogate"),
        ('{"X-\\ud800": "x"}', "a key contains a lone UTF-16 surrogate"),
        ("[" * 100000, "Not valid JSON: nested too deeply"),
        ('{"X-A": NaN}', "Not valid JSON: NaN is not a JSON number"),
    ],
    ids=["nul", "surrogate", "surrogate-name", "deep", "nan"],
)
def test_headers_json_postgresql_cannot_store_is_an_error_at_the_field(admin_client, headers, said):
    response = admin_client.post(ADD, fields(headers=headers))
    assert response.status_code == 200
    assert said in " ".join(field_errors(response)["headers"])
    assert not Template.objects.exists()
    answer = admin_client.post(RENDER, fields(headers=headers)).json()
    assert answer["rendered"] is None
    assert [(e["field"], said in e["message"]) for e in answer["errors"]] == [("headers", True)]


@pytest.mark.parametrize(
    ("field", "value"),
    [("reply_to", "a@example.com\r\nBcc: x@evil.com"), ("reply_to", "a@example.com\nBcc: x@evil.com"),
     ("from_name", "Shop\r\nBcc: x@evil.com")],
)  # fmt: skip
def test_a_line_break_in_reply_to_or_from_name_is_an_error_at_the_field(admin_client, field, value):
    response = admin_client.post(ADD, fields(**{field: value}))
    assert response.status_code == 200
    assert "must not contain line breaks" in " ".join(field_errors(response)[field])
    assert 'value="a@example.com"' in response.content.decode()  # what was typed is still there
    assert not Template.objects.exists()


@pytest.mark.parametrize(
    "content",
    [
        {"from": "a@example.com", "reply_to": "a@example.com\r\nBcc: x@evil.com", "subject": "s", "text": "t"},
        {"from": {"email": "a@example.com", "name": "A\r\nBcc: x@evil.com"}, "subject": "s", "text": "t"},
        {"from": "A\nBcc: x@evil.com <a@example.com>", "subject": "s", "text": "t"},
    ],
    ids=["reply-to", "from-name", "from-string"],
)
def test_the_api_refuses_a_line_break_in_reply_to_or_from_with_422_3002(api, content):
    error = assert_error(api.post("/api/v1/templates", {"id": "t1", "content": content}, format="json"), 422, "3002")
    assert "must not contain line breaks" in error["description"]
    assert not Template.objects.exists()


def test_the_live_preview_names_the_variables_the_sample_data_lacks(admin_client):
    form = fields(subject="Hi {{first_name}}", html="<p>{{first_name}} {{if vip}}VIP{{end}} {{plan}}</p>")
    answer = admin_client.post(RENDER, {**form, "substitution_data": '{"plan": "gold"}'}).json()
    assert answer["errors"] == [] and answer["missing"] == ["first_name", "vip"]
    full = '{"plan": "gold", "first_name": "Ada", "vip": true}'
    assert admin_client.post(RENDER, {**form, "substitution_data": full}).json()["missing"] == []


def test_the_preview_page_warns_of_variables_the_sample_data_lacks(admin_client):
    from templates_app.services import template_create

    content = {"from": {"email": "a@example.com"}, "subject": "Hi {{first_name}}", "text": "Hi {{first_name}}"}
    template_create(template_id="p1", name="p1", content=content, options={})
    url = "/admin/templates_app/template/p1/preview/"
    html = admin_client.post(url, {"substitution_data": "{}"}).content.decode()
    assert "Not in the sample data, rendered empty: first_name." in html
    html = admin_client.post(url, {"substitution_data": '{"first_name": "Ada"}'}).content.decode()
    assert "Not in the sample data" not in html and "Hi Ada" in html
