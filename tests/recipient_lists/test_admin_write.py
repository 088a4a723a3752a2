"""Recipient lists created and edited in the admin: recipients uploaded as CSV or pasted (text or
SparkPost's JSON), checked by the code of ``POST``/``PUT /api/v1/recipient-lists`` and stored by
its services; a rejected recipient is named by its row and nothing is stored."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from recipient_lists.models import Recipient, RecipientList
from recipient_lists.services import recipient_list_create
from recipient_lists.upload import UploadError, recipients_from_text

pytestmark = pytest.mark.django_db

ADD = "/admin/recipient_lists/recipientlist/add/"


def change(list_id: str) -> str:
    return f"/admin/recipient_lists/recipientlist/{list_id}/change/"


def stored(list_id: str) -> list[dict]:
    return list(Recipient.objects.filter(recipient_list_id=list_id).order_by("position").values_list("data", flat=True))


def errors_shown(response) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S))


def add(admin_client, **fields):
    data = {"id": "", "name": "", "description": "", "recipients_text": "", **fields}
    return admin_client.post(ADD, data)


def test_the_add_page_explains_the_recipients_formats(admin_client):
    html = admin_client.get(ADD).content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="recipients_file"' in html
    assert "email,name,first_name,plan" in html and "substitution data" in html


def test_a_list_is_created_from_an_uploaded_csv_with_named_columns(admin_client):
    csv = "email,name,first_name,plan\r\nada@example.com,Ada L,Ada,gold\r\n\r\nbob@example.com,,Bob,\r\n"
    upload = SimpleUploadedFile("friends.csv", ("\ufeff" + csv).encode(), content_type="text/csv")
    response = admin_client.post(
        ADD, {"id": "friends", "name": "Friends", "description": "d", "recipients_file": upload}
    )
    assert response.status_code == 302, errors_shown(response)
    saved = RecipientList.objects.get(pk="friends")
    assert (saved.name, saved.description, saved.total_accepted_recipients) == ("Friends", "d", 2)
    rows = stored("friends")
    assert rows[0]["address"] == {"email": "ada@example.com", "name": "Ada L"}
    assert rows[0]["substitution_data"] == {"first_name": "Ada", "plan": "gold"}
    assert rows[1]["address"] == {"email": "bob@example.com"} and rows[1]["substitution_data"] == {"first_name": "Bob"}


def test_a_list_is_created_from_pasted_lines_as_the_api_stores_it(admin_client, api):
    typed = "ada@example.com\nBob <bob@example.com>\ncy@example.com, Cy\n"
    assert add(admin_client, name="Pasted list", recipients_text=typed).status_code == 302
    saved = RecipientList.objects.get(name="Pasted list")
    assert saved.pk == "pasted-list"  # made from the name, as the API makes it
    same = api.post(
        "/api/v1/recipient-lists",
        {"id": "by-api", "recipients": [
            {"address": "ada@example.com"}, {"address": "Bob <bob@example.com>"},
            {"address": {"email": "cy@example.com", "name": "Cy"}},
        ]},
        format="json",
    )  # fmt: skip
    assert same.status_code == 200, same.content
    assert stored("pasted-list") == stored("by-api")


def test_a_pasted_json_array_is_sparkpost_s_recipient_shape(admin_client):
    recipients = [{"address": {"email": "ada@example.com"}, "tags": ["vip"], "metadata": {"tier": 1}}]
    assert add(admin_client, id="json", recipients_text=json.dumps(recipients, indent=2)).status_code == 302
    assert stored("json")[0]["tags"] == ["vip"] and stored("json")[0]["metadata"] == {"tier": 1}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            "ada@example.com\n\nnot-an-address\n",
            "line 3: address.email &#x27;not-an-address&#x27; is not a valid email",
        ),
        ("email,name\nada@example.com,Ada\n,Nobody\n", "line 3: address.email is required"),
        ("email,if\nada@example.com,x\n", "line 2: "),  # a reserved substitution key
        ('[{"address": "ada@example.com"}, 5]', "entry 2: each recipient must be an object"),
        ("nope\nnope2\n", "line 1: "),  # every one rejected: each still named
        ("ada@example.com,Ada,extra\n", "line 1: more than two columns"),
        ("email,email\na@example.com,b@example.com\n", "column names must be present and different"),
        ('[{"address": ', "not valid JSON"),
        ('{"address": "a@example.com"}', "line 1"),  # an object is not CSV either
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_saved(admin_client, text, said):
    response = add(admin_client, id="bad", recipients_text=text)
    assert response.status_code == 200
    assert said in errors_shown(response), errors_shown(response)
    assert not RecipientList.objects.exists() and not Recipient.objects.exists()


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        ({"id": "has space"}, "id must be a non-empty string without spaces"),
        ({"id": "rcptlist_x"}, "cannot start with"),
        ({"id": "x" * 65}, "id"),
        ({"name": "n" * 65}, "name: String should have at most 64 characters"),
        ({"name": "\u00e9" * 33}, "name must be at most 64 bytes"),
        ({"description": "d" * 1025}, "description"),
        ({"recipients_text": ""}, "Give the list its recipients"),
        ({"name": "a\x00b"}, "Null characters are not allowed"),
    ],
)
def test_the_api_s_field_rules_refuse_the_form(admin_client, fields, said):
    data = {"id": "ok", "recipients_text": "ada@example.com", **fields}
    response = add(admin_client, **data)
    assert response.status_code == 200 and said in errors_shown(response), errors_shown(response)
    assert not RecipientList.objects.exists()


def test_an_id_taken_is_refused_on_the_form(admin_client):
    recipient_list_create(list_id="taken", name="T", recipients=[{"address": {"email": "a@example.com"}}])
    response = add(admin_client, id="taken", recipients_text="b@example.com")
    assert response.status_code == 200 and "already exists" in errors_shown(response)
    assert [row["address"]["email"] for row in stored("taken")] == ["a@example.com"]


def test_a_file_over_the_api_s_limit_or_not_utf8_is_refused(admin_client, settings):
    settings.ENGAGE_MAX_REQUEST_BYTES = 1024
    big = SimpleUploadedFile("big.csv", b"a@example.com\n" * 100)
    response = admin_client.post(ADD, {"id": "big", "recipients_file": big})
    assert "over the API&#x27;s limit of 1024 bytes" in errors_shown(response)
    latin = SimpleUploadedFile("l.csv", "caf\u00e9@example.com".encode("latin-1"))
    assert "not UTF-8" in errors_shown(admin_client.post(ADD, {"id": "l", "recipients_file": latin}))
    both = SimpleUploadedFile("b.csv", b"a@example.com")
    response = admin_client.post(ADD, {"id": "b", "recipients_file": both, "recipients_text": "c@example.com"})
    assert "not both" in errors_shown(response)
    assert not RecipientList.objects.exists()


def test_editing_keeps_the_recipients_unless_new_ones_are_given(admin_client):
    recipient_list_create(list_id="edit", name="E", recipients=[{"address": {"email": "a@example.com"}}])
    page = admin_client.get(change("edit")).content.decode()
    assert "Leave empty (and no file) to keep the 1 recipients" in page and 'id="recipients"' in page
    response = admin_client.post(change("edit"), {"name": "Renamed", "description": "new", "recipients_text": ""})
    assert response.status_code == 302, errors_shown(response)
    saved = RecipientList.objects.get(pk="edit")
    assert (saved.name, saved.description, saved.total_accepted_recipients) == ("Renamed", "new", 1)
    response = admin_client.post(change("edit"), {"name": "Renamed", "recipients_text": "b@example.com\nc@example.com"})
    assert response.status_code == 302, errors_shown(response)
    assert [row["address"]["email"] for row in stored("edit")] == ["b@example.com", "c@example.com"]
    response = admin_client.post(change("edit"), {"name": "Renamed", "recipients_text": "b@example.com\nbad"})
    assert "line 2" in errors_shown(response) and RecipientList.objects.get(pk="edit").total_accepted_recipients == 2


def test_a_list_in_use_is_not_edited(admin_client, api):
    recipient_list_create(list_id="busy", name="B", recipients=[{"address": {"email": "a@example.com"}}])
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    scheduled = api.post(
        "/api/v1/transmissions",
        {"recipients": {"list_id": "busy"}, "options": {"start_time": later},
         "content": {"from": "a@example.com", "subject": "s", "text": "t"}},
        format="json",
    )  # fmt: skip
    assert scheduled.status_code == 200, scheduled.content
    response = admin_client.post(change("busy"), {"name": "B", "recipients_text": "b@example.com"})
    assert "List &#x27;busy&#x27; is in use by msg generation" in errors_shown(response)
    assert [row["address"]["email"] for row in stored("busy")] == ["a@example.com"]


def test_a_user_without_the_add_permission_cannot_add(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("v", password="pw-for-tests", is_staff=True))
    assert client.get(ADD).status_code == 403


def test_the_csv_reader_on_its_own():
    upload = recipients_from_text('x@example.com\r\n\r\n"Lovelace, Ada" <ada@example.com>\r\n')
    assert upload.recipients == [{"address": "x@example.com"}, {"address": "Lovelace, Ada <ada@example.com>"}]
    assert upload.rows == [1, 3] and upload.unit == "line"
    with pytest.raises(UploadError, match="line 1"):
        recipients_from_text("a,b,c\n")


def test_an_edit_page_s_help_does_not_leak_into_the_add_page(admin_client):
    recipient_list_create(list_id="one", name="O", recipients=[{"address": {"email": "a@example.com"}}])
    assert "to keep the 1 recipients" in admin_client.get(change("one")).content.decode()
    assert "to keep the" not in admin_client.get(ADD).content.decode()
