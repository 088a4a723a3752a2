"""Recipient lists deleted in the admin, from a list's page or with "Delete selected", by the
service of ``DELETE /api/v1/recipient-lists/{id}``: a list in use (a transmission with it
scheduled or generating) is refused with a message, and kept."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.admin.models import DELETION, LogEntry

from recipient_lists.models import Recipient, RecipientList
from recipient_lists.services import recipient_list_create

pytestmark = pytest.mark.django_db

LISTS = "/admin/recipient_lists/recipientlist/"


def delete_page(list_id: str) -> str:
    return f"{LISTS}{list_id}/delete/"


def make(list_id: str, count: int = 2) -> None:
    recipients = [{"address": {"email": f"{list_id}{n}@example.com"}} for n in range(count)]
    recipient_list_create(list_id=list_id, name=list_id.capitalize(), recipients=recipients)


def schedule_with(api, list_id: str) -> None:
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat(timespec="seconds")
    response = api.post(
        "/api/v1/transmissions",
        {"recipients": {"list_id": list_id}, "options": {"start_time": later},
         "content": {"from": "a@example.com", "subject": "s", "text": "t"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content


def said(response) -> list[tuple[str, str]]:
    """The admin's messages on the page: (level, text)."""
    found = re.findall(r'<li class="(success|error|warning|info)">(.*?)</li>', response.content.decode(), re.S)
    return [(level, text.replace("&#x27;", "'")) for level, text in found]


def kept(*list_ids: str) -> bool:
    return all(RecipientList.objects.filter(pk=x).exists() and Recipient.objects.filter(recipient_list_id=x).exists()
               for x in list_ids)  # fmt: skip


def test_a_list_not_in_use_is_deleted_from_its_page(admin_client):
    make("old", count=3)
    confirm = admin_client.get(delete_page("old"))
    assert confirm.status_code == 200 and "Recipient list: old (3 recipients)" in confirm.content.decode()
    response = admin_client.post(delete_page("old"), {"post": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == LISTS
    assert not RecipientList.objects.filter(pk="old").exists() and not Recipient.objects.exists()
    assert said(response)[0][0] == "success" and "old" in said(response)[0][1]
    assert LogEntry.objects.filter(action_flag=DELETION, object_id="old").count() == 1


def test_a_list_in_use_is_refused_on_its_page_and_kept(admin_client, api):
    make("busy")
    schedule_with(api, "busy")
    for response in (admin_client.get(delete_page("busy"), follow=True),
                     admin_client.post(delete_page("busy"), {"post": "yes"}, follow=True)):  # fmt: skip
        assert response.status_code == 200 and response.redirect_chain[-1][0] == f"{LISTS}busy/change/"
        level, text = said(response)[0]
        assert level == "error" and text.startswith("Recipient list 'busy' was not deleted: it is in use.")
        assert "scheduled or generating" in text
    assert kept("busy") and not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_a_list_that_came_into_use_after_the_confirmation_is_refused_by_the_service(admin_client, api, monkeypatch):
    make("raced")
    monkeypatch.setattr("recipient_lists.admin.recipient_list_in_use", lambda *, list_id: False)  # the page's look
    schedule_with(api, "raced")  # ... and then a transmission took it: the service's own check refuses
    response = admin_client.post(delete_page("raced"), {"post": "yes"}, follow=True)
    assert response.status_code == 200 and response.redirect_chain[-1][0] == f"{LISTS}raced/change/"
    level, text = said(response)[0]
    assert level == "error"
    assert text.startswith("Recipient list 'raced' was not deleted: List 'raced' is in use by msg generation.")
    assert kept("raced") and not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_delete_selected_deletes_the_lists_not_in_use(admin_client):
    make("a")
    make("b")
    make("c")
    action = {"action": "delete_selected", "_selected_action": ["a", "b"]}
    confirm = admin_client.post(LISTS, action)
    assert confirm.status_code == 200 and "Recipient list: a (2 recipients)" in confirm.content.decode()
    response = admin_client.post(LISTS, {**action, "post": "yes"}, follow=True)
    assert said(response) == [("success", "Successfully deleted 2 recipient lists.")]
    assert list(RecipientList.objects.values_list("pk", flat=True)) == ["c"] and kept("c")


def test_delete_selected_with_a_list_in_use_deletes_nothing_and_names_it(admin_client, api):
    make("free")
    make("busy")
    schedule_with(api, "busy")
    action = {"action": "delete_selected", "_selected_action": ["free", "busy"]}
    for response in (admin_client.post(LISTS, action, follow=True),
                     admin_client.post(LISTS, {**action, "post": "yes"}, follow=True)):  # fmt: skip
        assert response.status_code == 200 and "Delete multiple objects" not in response.content.decode()
        level, text = said(response)[0]
        assert level == "error" and text.startswith("Nothing was deleted: recipient list 'busy' is in use.")
    assert kept("free", "busy") and not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_delete_selected_undoes_every_delete_when_the_service_refuses_one(admin_client, api, monkeypatch):
    make("a-free")
    make("b-raced")
    monkeypatch.setattr("recipient_lists.admin.recipient_list_in_use", lambda *, list_id: False)
    schedule_with(api, "b-raced")
    action = {"action": "delete_selected", "_selected_action": ["a-free", "b-raced"], "post": "yes"}
    response = admin_client.post(LISTS, action, follow=True)
    assert response.status_code == 200
    assert said(response)[0][1].startswith("Nothing was deleted: List 'b-raced' is in use by msg generation.")
    # a-free was deleted first, then undone with the log entries
    assert kept("a-free", "b-raced") and not LogEntry.objects.filter(action_flag=DELETION).exists()


def test_a_staff_user_without_the_delete_permission_cannot_delete(client, django_user_model):
    make("mine")
    client.force_login(django_user_model.objects.create_user("v", password="pw-for-tests", is_staff=True))
    assert client.post(delete_page("mine"), {"post": "yes"}).status_code == 403
    assert kept("mine")
