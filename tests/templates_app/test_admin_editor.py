"""The template editor in the admin (issue 15, Deliver 5): create, edit with the live preview
and link check endpoint, errors at their line, publish from the edit page, the test send."""

from __future__ import annotations

import json

import pytest

from templates_app.models import Template
from templates_app.services import template_create
from transmissions.models import Transmission

pytestmark = pytest.mark.django_db

CONTENT = {
    "from": {"email": "shop@example.com", "name": "Shop"},
    "subject": "Hi {{name}}",
    "html": '<p>Hello {{name}}</p><a href="https://example.com/?u={{id}}" data-msys-linkname="go">Go</a>',
    "text": "Hello {{name}}",
}
EDITOR = "/admin/templates_app/template/editor-render/"


def fields(**changes) -> dict:
    form = {
        "template_id": "",
        "name": "Welcome",
        "description": "",
        "from_email": "shop@example.com",
        "from_name": "Shop",
        "subject": "Hi {{name}}",
        "reply_to": "",
        "html": CONTENT["html"],
        "text": CONTENT["text"],
        "amp_html": "",
        "headers": "",
    }
    form.update(changes)
    return form


def test_a_template_is_created_as_a_draft_from_the_add_page(admin_client):
    page = admin_client.get("/admin/templates_app/template/add/")
    assert page.status_code == 200 and b'name="template_id"' in page.content
    response = admin_client.post("/admin/templates_app/template/add/", fields(template_id="welcome"))
    assert response.status_code == 302, response.content[:3000]
    template = Template.objects.get(pk="welcome")
    assert template.has_draft and not template.has_published
    assert template.draft_content["html"] == CONTENT["html"]


def test_without_an_id_it_is_made_from_the_name_and_a_taken_id_is_refused(admin_client):
    assert admin_client.post("/admin/templates_app/template/add/", fields(name="Spring Sale")).status_code == 302
    assert Template.objects.filter(pk="spring-sale").exists()
    taken = admin_client.post("/admin/templates_app/template/add/", fields(template_id="spring-sale"))
    assert taken.status_code == 200
    assert "already exists" in taken.context["adminform"].form.errors["template_id"][0]


def test_save_and_publish_on_the_add_and_edit_pages(admin_client):
    response = admin_client.post("/admin/templates_app/template/add/", fields(template_id="w", _publish="1"))
    assert response.status_code == 302 and response["Location"].endswith("/admin/templates_app/template/w/change/")
    template = Template.objects.get(pk="w")
    assert template.has_published and not template.has_draft
    edited = admin_client.post("/admin/templates_app/template/w/change/", fields(subject="New", _publish="1"))
    assert edited.status_code == 302
    template.refresh_from_db()
    assert template.published_content["subject"] == "New" and not template.has_draft
    page = admin_client.get("/admin/templates_app/template/w/change/")
    assert b'name="_publish"' in page.content and b"Published w" in page.content


def test_the_edit_page_has_the_preview_the_link_check_and_a_wide_subject(admin_client):
    template_create(template_id="t", name="T", content=CONTENT, options={})
    page = admin_client.get("/admin/templates_app/template/t/change/").content.decode()
    assert 'id="tpl-frame" sandbox=""' in page
    assert 'id="tpl-links"' in page and 'id="tpl-test-send"' in page
    assert '<textarea name="subject"' in page and "tpl-wide" in page


def test_the_editor_renders_unsaved_fields_with_sample_data(admin_client):
    response = admin_client.post(EDITOR, {**fields(), "substitution_data": '{"name": "<Ann>", "id": "a b"}'})
    answer = response.json()
    assert answer["errors"] == []
    assert answer["rendered"]["subject"] == "Hi <Ann>"
    assert "Hello &lt;Ann&gt;" in answer["rendered"]["html"]
    [link] = answer["links"]["links"]
    assert link["url"] == "https://example.com/?u=a%20b" and link["tracked"] and link["link_name"] == "go"


def test_the_editor_shows_a_syntax_error_at_the_line_of_its_part(admin_client):
    html = "<p>one</p>\n<p>two</p>\n{{ if }}"
    answer = admin_client.post(EDITOR, {**fields(html=html), "substitution_data": "{}"}).json()
    assert answer["rendered"] is None
    assert [(e["field"], e["message"].split(":")[0]) for e in answer["errors"]] == [("html", "html, line 3")]
    subject = admin_client.post(EDITOR, {**fields(subject="Hi {{"), "substitution_data": "{}"}).json()
    assert subject["errors"][0]["field"] == "subject"
    assert subject["errors"][0]["message"].startswith("Header:Subject, line 1: ")


def test_the_editor_reports_bad_sample_data_and_render_errors(admin_client):
    bad = admin_client.post(EDITOR, {**fields(), "substitution_data": "[1]"}).json()
    assert bad["errors"][0]["field"] == "substitution_data"
    render = admin_client.post(EDITOR, {**fields(html="{{ 1 / 0 }}"), "substitution_data": "{}"}).json()
    assert render["errors"][0]["field"] == "html" and "rendering part html" in render["errors"][0]["message"]
    reserved = admin_client.post(EDITOR, {**fields(), "substitution_data": '{"email": "x"}'}).json()
    assert reserved["errors"] and reserved["rendered"] is None


def test_the_editor_link_check_follows_the_click_tracking_choice_and_the_template_options(admin_client):
    template_create(template_id="off", name="Off", content=CONTENT, options={"click_tracking": False})
    stored = admin_client.post(EDITOR, {**fields(), "substitution_data": "{}", "_template": "off"}).json()
    assert stored["links"]["click_tracking"] is False
    forced = admin_client.post(
        EDITOR, {**fields(), "substitution_data": "{}", "_template": "off", "click_tracking": "true"}
    )
    assert forced.json()["links"]["links"][0]["tracked"] is True


def test_the_template_options_set_in_the_admin_are_what_the_api_returns(admin_client, api):
    # Found by a newcomer: the preview and the Send form said "as the template says", and the
    # admin had no field for what the template says.
    added = fields(template_id="opts", option_open_tracking="off", option_click_tracking="on")
    assert admin_client.post("/admin/templates_app/template/add/", added).status_code == 302
    api.post("/api/v1/templates", {"id": "by-api", "content": CONTENT,
             "options": {"open_tracking": False, "click_tracking": True}}, format="json")  # fmt: skip
    draft = api.get("/api/v1/templates/opts", {"draft": "true"}).json()["results"]
    assert draft["options"] == {"open_tracking": False, "click_tracking": True}
    assert draft["options"] == api.get("/api/v1/templates/by-api", {"draft": "true"}).json()["results"]["options"]
    page = admin_client.get("/admin/templates_app/template/opts/change/").content.decode()
    assert '<option value="off" selected>off</option>' in page and '<option value="on" selected>on</option>' in page
    assert "not set: the transmission&#x27;s, else the server&#x27;s" in page

    # left unset, an option is absent (as an API client that leaves it out), not false
    changed = fields(option_open_tracking="", option_click_tracking="off", option_transactional="on", _publish="1")
    assert admin_client.post("/admin/templates_app/template/opts/change/", changed).status_code == 302
    published = api.get("/api/v1/templates/opts").json()["results"]
    assert published["published"] and published["options"] == {"click_tracking": False, "transactional": True}


def test_the_editor_link_check_follows_the_unsaved_click_tracking_option(admin_client, settings):
    settings.ENGAGE_CLICK_TRACKING = True
    template_create(template_id="on", name="On", content=CONTENT, options={"click_tracking": True})
    check = {**fields(option_click_tracking="off"), "substitution_data": "{}", "_template": "on"}
    assert admin_client.post(EDITOR, check).json()["links"]["click_tracking"] is False
    unset = {**fields(option_click_tracking=""), "substitution_data": "{}", "_template": "on"}
    assert admin_client.post(EDITOR, unset).json()["links"]["click_tracking"] is True  # the server's default


def test_the_editor_endpoint_is_staff_only_and_post_only(client, admin_client):
    assert client.post(EDITOR, fields()).status_code == 302  # to the sign-in page
    assert admin_client.get(EDITOR).status_code == 405


def test_a_test_send_creates_a_transmission_to_that_one_address(admin_client):
    template_create(template_id="t", name="T", content=CONTENT, options={})
    url = "/templates/t/test-send/"
    response = admin_client.post(
        url, {"address": "me@example.com", "substitution_data": '{"name": "Ann"}'}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/admin/templates_app/template/t/change/"
    transmission = Transmission.objects.get()
    assert transmission.template_id == "t" and transmission.use_draft_template
    assert transmission.substitution_data == {"name": "Ann"}
    assert transmission.campaign_id == "admin-test-send"
    assert list(transmission.messages.values_list("email", flat=True)) == ["me@example.com"]
    page = response.content.decode()
    assert f'<a href="/transmissions/{transmission.pk}/">{transmission.pk}</a>' in page


def test_a_test_send_reports_bad_input_and_sends_nothing(admin_client, client):
    template_create(template_id="t", name="T", content=CONTENT, options={})
    url = "/templates/t/test-send/"
    bad_address = admin_client.post(url, {"address": "not an address", "substitution_data": "{}"}, follow=True)
    assert "Test send failed" in bad_address.content.decode()
    bad_json = admin_client.post(url, {"address": "me@example.com", "substitution_data": "{"}, follow=True)
    assert "not valid JSON" in bad_json.content.decode()
    assert client.post(url, {"address": "me@example.com"}).status_code == 302  # sign in first
    assert admin_client.get(url).status_code == 405
    assert not Transmission.objects.exists()


def test_test_sends_past_the_per_user_limit_are_refused_with_a_message_and_send_nothing(
    admin_client, client, django_user_model, settings
):
    settings.ENGAGE_TEST_SENDS_PER_MINUTE = 2
    template_create(template_id="t", name="T", content=CONTENT, options={})
    url, form = "/templates/t/test-send/", {"address": "me@example.com", "substitution_data": "{}"}
    for _ in range(2):
        assert "queued" in admin_client.post(url, form, follow=True).content.decode()
    refused = admin_client.post(url, form, follow=True).content.decode()
    assert "Test send refused: at most 2 test sends a minute per user" in refused
    assert Transmission.objects.count() == 2
    other = django_user_model.objects.create_user("other", is_staff=True, is_superuser=True)
    client.force_login(other)  # the limit is per user
    assert "queued" in client.post(url, form, follow=True).content.decode()
    assert Transmission.objects.count() == 3


def test_hostile_field_values_are_escaped_on_the_edit_page(admin_client):
    evil = "</textarea><script>alert(1)</script>"
    template_create(template_id="x", name=evil, content={**CONTENT, "html": evil}, options={})
    page = admin_client.get("/admin/templates_app/template/x/change/").content.decode()
    assert "<script>alert(1)</script>" not in page
    answer = admin_client.post(EDITOR, {**fields(html=evil), "substitution_data": json.dumps({"n": evil})}).json()
    assert answer["rendered"]["html"] == evil  # shown only inside the sandboxed iframe's srcdoc


def test_nul_characters_in_the_editor_are_refused_not_a_server_error(admin_client):
    nul = admin_client.post(EDITOR, {**fields(html="<p>\x00t1\x00</p>"), "substitution_data": "{}"})
    assert nul.status_code == 200 and nul.json()["errors"][0]["message"] == "NUL characters are not allowed"
    data = admin_client.post(EDITOR, {**fields(), "substitution_data": '{"x": "\\u0000"}'})
    assert data.json()["errors"][0]["field"] == "substitution_data"


def test_a_test_send_with_sample_data_lacking_variables_says_which_were_sent_empty(admin_client):
    template_create(template_id="t", name="T", content=CONTENT, options={})
    url = "/templates/t/test-send/"
    response = admin_client.post(url, {"address": "me@example.com", "substitution_data": "{}"}, follow=True)
    assert "The sample data lacked name, id: sent empty." in response.content.decode()
    full = admin_client.post(
        url, {"address": "me@example.com", "substitution_data": '{"name": "A", "id": 1}'}, follow=True
    )
    assert "lacked" not in full.content.decode()
    assert Transmission.objects.count() == 2


GRACE = '{"address": {"email": "grace@example.com", "name": "Grace Hopper"}, "id": "101"}'


def test_a_list_entry_s_address_previews_as_a_message_to_that_recipient_says_it(admin_client):
    form = fields(subject="Hello {{address.name}}", html="<p>To {{address.email}}, id {{id}}</p>", text="")
    answer = admin_client.post(EDITOR, {**form, "substitution_data": GRACE}).json()
    assert answer["errors"] == [] and answer["missing"] == []
    assert answer["rendered"]["subject"] == "Hello Grace Hopper"
    assert "To grace@example.com, id 101" in answer["rendered"]["html"]


def test_address_name_without_a_recipient_in_the_sample_is_said_missing(admin_client):
    form = fields(subject="Hello {{address.name}}!", html="<p>{{id}}</p>", text="")
    answer = admin_client.post(EDITOR, {**form, "substitution_data": '{"id": "1"}'}).json()
    assert answer["rendered"]["subject"] == "Hello !"
    assert answer["missing"] == ["address.name"]
    bad = admin_client.post(EDITOR, {**form, "substitution_data": '{"address": "grace@example.com"}'}).json()
    assert bad["rendered"] is None and bad["errors"][0]["field"] == "substitution_data"
    assert "address must be an object" in bad["errors"][0]["message"]


def test_name_missing_while_the_entry_has_a_name_points_to_address_name(admin_client):
    answer = admin_client.post(EDITOR, {**fields(), "substitution_data": GRACE}).json()
    assert answer["missing"] == ["name"]
    assert answer["hints"] == ["use {{address.name}} for the recipient's name (Grace Hopper)"]
    anonymous = admin_client.post(EDITOR, {**fields(), "substitution_data": '{"id": "1"}'}).json()
    assert anonymous["missing"] == ["name"] and anonymous["hints"] == []


def test_a_test_send_with_a_list_entry_sends_to_the_typed_address_with_the_entry_s_name(admin_client):
    content = {**CONTENT, "subject": "Hi {{address.name}}", "html": "<p>{{id}}</p>", "text": "x"}
    template_create(template_id="t", name="T", content=content, options={})
    response = admin_client.post(
        "/templates/t/test-send/", {"address": "me@example.com", "substitution_data": GRACE}, follow=True
    )
    assert "lacked" not in response.content.decode()
    transmission = Transmission.objects.get()
    assert transmission.substitution_data == {"id": "101"}  # "address" is the recipient's, not data
    [message] = transmission.messages.all()
    assert message.email == "me@example.com" and message.recipient["address"]["name"] == "Grace Hopper"
