"""The ``sparkpost`` PyPI client, unchanged, against a live Engage server.

The client builds ``https://<host>/api/v1``; each resource's ``base_uri`` is pointed at the
test server's ``http://`` URL instead (``Resource.uri`` is derived from it).
"""

from __future__ import annotations

import pytest
from sparkpost.exceptions import SparkPostAPIException

from tests.compat.helpers import client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sp(live_server, transactional_db):
    from api_keys.services import api_key_create

    _key, raw = api_key_create(
        label="compat", grants=["templates/modify", "templates/preview", "recipient_lists/manage"]
    )
    return client(live_server, raw)


def test_templates_round_trip(sp):
    created = sp.templates.create(
        id="welcome",
        name="Welcome",
        from_email="Shop <shop@example.com>",
        subject="Hello {{name}}",
        html="<p>Hi {{name}}</p>",
        text="Hi {{name}}",
        track_opens=True,
    )
    assert created == {"id": "welcome"}

    template = sp.templates.get("welcome")
    assert template["name"] == "Welcome" and template["published"] is False
    assert template["content"]["from"] == {"email": "shop@example.com", "name": "Shop"}
    assert template["options"] == {"open_tracking": True}

    assert [t["id"] for t in sp.templates.list()] == ["welcome"]

    sp.templates.update("welcome", subject="Welcome {{name}}", html="<p>{{name}}</p>", from_email="shop@example.com")
    sp.templates.update("welcome", published=True)
    published = sp.templates.get("welcome", draft=False)
    assert published["published"] is True and published["content"]["subject"] == "Welcome {{name}}"

    preview = sp.templates.preview("welcome", {"name": "Ann"}, draft=False)
    assert preview["subject"] == "Welcome Ann" and preview["html"] == "<p>Ann</p>"

    assert sp.templates.delete("welcome") is True
    with pytest.raises(SparkPostAPIException) as info:
        sp.templates.get("welcome")
    assert info.value.status == 404
    assert "Code: 1600" in info.value.errors[0]


def test_template_syntax_error_surfaces_code_3000(sp):
    with pytest.raises(SparkPostAPIException) as info:
        sp.templates.create(id="bad", from_email="a@example.com", subject="s", text="{{if}}")
    assert info.value.status == 422
    assert "Code: 3000" in info.value.errors[0]


def test_recipient_lists_round_trip(sp):
    recipients = [
        {"address": {"email": "wilma@example.com", "name": "Wilma"}, "tags": ["vip"]},
        {"address": "fred@example.com"},
    ]
    created = sp.recipient_lists.create(id="friends", name="Friends", recipients=recipients)
    assert created == {
        "total_rejected_recipients": 0,
        "total_accepted_recipients": 2,
        "id": "friends",
        "name": "Friends",
    }

    shown = sp.recipient_lists.get("friends", show_recipients=True)
    assert [r["address"]["email"] for r in shown["recipients"]] == ["wilma@example.com", "fred@example.com"]
    assert shown["recipients"][1]["return_path"] == ""

    assert sp.recipient_lists.list() == [
        {"id": "friends", "name": "Friends", "description": "", "attributes": {}, "total_accepted_recipients": 2}
    ]

    updated = sp.recipient_lists.update("friends", name="Pals", recipients=[{"address": "barney@example.com"}])
    assert updated["name"] == "Pals" and updated["total_accepted_recipients"] == 1

    assert sp.recipient_lists.delete("friends") is True
    with pytest.raises(SparkPostAPIException) as info:
        sp.recipient_lists.get("friends")
    assert info.value.status == 404


def test_duplicate_list_surfaces_409_1602(sp):
    sp.recipient_lists.create(id="dup", recipients=[{"address": "a@example.com"}])
    with pytest.raises(SparkPostAPIException) as info:
        sp.recipient_lists.create(id="dup", recipients=[{"address": "a@example.com"}])
    assert info.value.status == 409
    assert "Code: 1602" in info.value.errors[0]


def test_a_wrong_key_raises_with_the_parsed_code(live_server, transactional_db):
    sp = client(live_server, "not-a-real-key")
    with pytest.raises(SparkPostAPIException) as info:
        sp.templates.list()
    assert info.value.status == 401
    assert "Code: 1303" in info.value.errors[0]


def test_a_key_without_the_grant_is_403_1100(live_server, transactional_db):
    from api_keys.services import api_key_create

    _key, raw = api_key_create(label="view only", grants=["templates/view"])
    sp = client(live_server, raw)
    assert sp.templates.list() == []
    with pytest.raises(SparkPostAPIException) as info:
        sp.recipient_lists.list()
    assert info.value.status == 403
    assert "Code: 1100" in info.value.errors[0]
