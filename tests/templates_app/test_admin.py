"""The templates admin: changelist with search and filters, draft editing, publish, preview."""

from __future__ import annotations

import pytest

from templates_app.models import Template
from templates_app.services import template_create

pytestmark = pytest.mark.django_db

CONTENT = {
    "from": {"email": "shop@example.com", "name": "Shop"},
    "subject": "Hi {{name}}",
    "html": "<b>{{name}}</b>",
    "text": "T {{name}}",
}


@pytest.fixture
def templates():
    template_create(template_id="draft-one", name="Spring", content=CONTENT, options={})
    template_create(template_id="pub-one", name="Summer", published=True, content=CONTENT, options={})


def test_changelist_loads_with_search_and_filters(admin_client, templates):
    page = admin_client.get("/admin/templates_app/template/")
    assert page.status_code == 200
    assert b"draft-one" in page.content and b"pub-one" in page.content
    searched = admin_client.get("/admin/templates_app/template/?q=summer")
    assert b"pub-one" in searched.content and b"draft-one" not in searched.content
    drafts = admin_client.get("/admin/templates_app/template/?has_draft=yes")
    assert b"draft-one" in drafts.content and b"pub-one" not in drafts.content
    published = admin_client.get("/admin/templates_app/template/?published=yes")
    assert b"pub-one" in published.content and b"draft-one" not in published.content


def test_the_admin_cannot_delete_a_template_past_the_in_use_check(admin_client, templates):
    assert admin_client.get("/admin/templates_app/template/pub-one/delete/").status_code == 403
    bulk = {"action": "delete_selected", "_selected_action": ["pub-one"], "post": "yes"}
    admin_client.post("/admin/templates_app/template/", bulk)
    assert Template.objects.filter(pk="pub-one").exists()


def edit_form(**changes) -> dict:
    form = {
        "name": "Spring",
        "description": "",
        "from_email": "shop@example.com",
        "from_name": "Shop",
        "subject": "New {{name}}",
        "reply_to": "",
        "html": "<i>{{name}}</i>",
        "text": "",
        "headers": "",
    }
    form.update(changes)
    return form


def test_editing_writes_the_draft_and_keeps_the_published_version(admin_client, templates):
    assert admin_client.get("/admin/templates_app/template/pub-one/change/").status_code == 200
    response = admin_client.post("/admin/templates_app/template/pub-one/change/", edit_form(name="Summer 2"))
    assert response.status_code == 302, response.content[:2000]
    template = Template.objects.get(pk="pub-one")
    assert template.name == "Summer 2"
    assert template.draft_content["subject"] == "New {{name}}"
    assert template.published_content["subject"] == "Hi {{name}}"


def test_editing_with_a_syntax_error_shows_it_and_stores_nothing(admin_client, templates):
    response = admin_client.post("/admin/templates_app/template/draft-one/change/", edit_form(html="<p>\n{{if}}"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["html"] == ["html, line 2: syntax error near '}}'"]
    assert Template.objects.get(pk="draft-one").draft_content["html"] == CONTENT["html"]


def test_publish_action_publishes_drafts(admin_client, templates):
    response = admin_client.post(
        "/admin/templates_app/template/",
        {"action": "publish", "_selected_action": ["draft-one", "pub-one"]},
        follow=True,
    )
    assert response.status_code == 200
    assert b"Published: draft-one" in response.content
    assert b"No draft to publish: pub-one" in response.content
    template = Template.objects.get(pk="draft-one")
    assert template.has_published and not template.has_draft


def test_preview_renders_with_sample_data(admin_client, templates):
    url = "/admin/templates_app/template/draft-one/preview/"
    assert admin_client.get(url).status_code == 200
    response = admin_client.post(url, {"version": "draft", "substitution_data": '{"name": "Ann"}'})
    assert response.status_code == 200
    assert b"Hi Ann" in response.content
    assert b"T Ann" in response.content
    assert b"&lt;b&gt;Ann&lt;/b&gt;" in response.content


def test_preview_reports_bad_json_and_missing_versions(admin_client, templates):
    url = "/admin/templates_app/template/draft-one/preview/"
    assert b"Invalid JSON" in admin_client.post(url, {"version": "draft", "substitution_data": "{"}).content
    response = admin_client.post(url, {"version": "published", "substitution_data": "{}"})
    assert b"has no published version" in response.content


def test_admin_needs_a_staff_login(client, templates):
    assert client.get("/admin/templates_app/template/").status_code == 302
