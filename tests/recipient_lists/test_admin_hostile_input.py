"""What the admin's list form refuses that PostgreSQL could not store or that would lose
recipients (issue 15, the attacker's and newcomer's review): each is a form error naming the
line or entry, never a 500, and nothing is saved."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from recipient_lists.models import Recipient, RecipientList

pytestmark = pytest.mark.django_db

ADD = "/admin/recipient_lists/recipientlist/add/"


def errors_shown(response) -> str:
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.content.decode(), re.S))


def nothing_saved() -> bool:
    return not RecipientList.objects.exists() and not Recipient.objects.exists()


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[{"address": "a@example.com", "substitution_data": {"x": "a\\u0000b"}}]', "entry 1: substitution_data.x: contains a NUL"),
        ('[{"address": "a@example.com"}, {"address": "b@example.com", "substitution_data": {"x": "\\ud800"}}]',
         "entry 2: substitution_data.x: contains a lone UTF-16 surrogate"),
        ('[{"address": "a@example.com", "substitution_data": {"x": NaN}}]', "NaN is not a JSON number"),
        ('[{"address": "a@example.com", "substitution_data": {"x": 1' + "0" * 5000 + "}}]", "not valid JSON"),
        ('[{"address": {"email": "a@example.com", "name": "A\\u0000"}}]', "entry 1: address.name: contains a NUL"),
    ],
    ids=["nul", "surrogate", "nan", "bigint", "nul-in-name"],
)  # fmt: skip
def test_pasted_json_postgresql_cannot_store_is_a_form_error(admin_client, text, said):
    response = admin_client.post(ADD, {"id": "l1", "name": "l1", "recipients_text": text})
    assert response.status_code == 200
    assert said in errors_shown(response), errors_shown(response)
    assert nothing_saved()


@pytest.mark.parametrize(
    ("csv", "said"),
    [
        (b"email,plan\na@example.com,a\x00b\n", "line 2: substitution_data.plan: contains a NUL"),
        (b"email,pl\x00an\na@example.com,gold\n", "line 1: the name of column 2 contains a NUL"),
        (b"a@example.com,A\x00da\n", "line 1: address.name: contains a NUL"),
    ],
    ids=["cell", "column-name", "plain-name"],
)
def test_an_uploaded_csv_with_nul_is_a_form_error(admin_client, csv, said):
    upload = SimpleUploadedFile("a.csv", csv, content_type="text/csv")
    response = admin_client.post(ADD, {"id": "l2", "name": "l2", "recipients_file": upload})
    assert response.status_code == 200
    assert said in errors_shown(response), errors_shown(response)
    assert nothing_saved()


def test_csv_columns_differing_only_in_case_are_refused(admin_client):
    text = "email,Email\na@example.com,b@example.com\n"
    response = admin_client.post(ADD, {"id": "dup", "name": "dup", "recipients_text": text})
    assert response.status_code == 200
    assert "different from each other (whatever their case)" in errors_shown(response)
    assert nothing_saved()


@pytest.mark.parametrize(
    ("text", "said"),
    [("email,name,plan\n", "the first line names the columns but no line follows"), ("[]", "the array is empty")],
)
def test_an_upload_without_recipients_is_a_form_error_and_keeps_what_was_typed(admin_client, text, said):
    fields = {"id": "empty", "name": "Newsletter", "description": "typed by hand", "recipients_text": text}
    response = admin_client.post(ADD, fields)
    assert response.status_code == 200
    html = response.content.decode()
    assert f"No recipients: {said}" in errors_shown(response)
    assert 'value="Newsletter"' in html and "typed by hand" in html
    assert nothing_saved()


def test_the_file_limit_is_shown_in_mb(admin_client, settings):
    settings.ENGAGE_MAX_REQUEST_BYTES = 50 * 1024 * 1024
    html = admin_client.get(ADD).content.decode()
    assert "at most 50 MB (the API's limit)" in html and "52428800" not in html


def test_the_help_says_how_a_template_uses_the_name_column_and_that_works():
    from mailcore.language import build_context, compile_content
    from recipient_lists.admin import RECIPIENTS_HELP
    from recipient_lists.recipients import normalize_recipient
    from recipient_lists.upload import recipients_from_text

    assert "<code>{{address.name}}</code>" in RECIPIENTS_HELP and "<code>{{address.email}}</code>" in RECIPIENTS_HELP
    # one sentence a thought (found by a newcomer: "shown in To: in a template write ...")
    assert "shown in the To: header. In a template, write <code>{{address.name}}</code>" in RECIPIENTS_HELP
    raw = recipients_from_text("email,name,plan\nada@example.com,Ada L,gold\n").recipients[0]
    recipient, _error = normalize_recipient(raw, 0)
    assert recipient is not None
    context = build_context(tx_metadata={}, tx_substitution_data={}, rcpt_metadata={},
                            rcpt_substitution_data=recipient["substitution_data"],
                            address_email=recipient["address"]["email"], address_name=recipient["address"]["name"],
                            return_path="")  # fmt: skip
    content = {"from": {"email": "a@example.com"}, "subject": "s",
               "text": "Hi {{address.name}} <{{address.email}}>, {{plan}}; {{name}}"}  # fmt: skip
    assert compile_content(content).render(context)["text"] == "Hi Ada L <ada@example.com>, gold; "
