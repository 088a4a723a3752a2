"""python-sparkpost 1.3.10's ``suppression_list``, unchanged, against a live Engage server
(SPEC A.5, B §11.3): list, get, create, update and delete, single and bulk."""

from __future__ import annotations

import pytest
from sparkpost.exceptions import SparkPostAPIException

from tests.compat.test_python_sparkpost import client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sp(live_server, transactional_db):
    from api_keys.services import api_key_create

    _key, raw = api_key_create(label="compat", grants=["suppression_lists/manage"])
    return client(live_server, raw)


def test_single_create_update_get_list_and_delete(sp):
    created = sp.suppression_list.create(
        {"email": "Test@Test.com", "transactional": False, "non_transactional": True, "description": "Test description"}
    )
    assert created == {"message": "Suppression List successfully updated"}

    (entry,) = sp.suppression_list.get("test@test.com")
    assert entry["recipient"] == "test@test.com" and entry["type"] == "non_transactional"
    assert entry["non_transactional"] is True and entry["description"] == "Test description"

    sp.suppression_list.update({"email": "test@test.com", "transactional": True, "description": "both now"})
    entries = sp.suppression_list.get("test@test.com")
    assert [(e["type"], e["description"]) for e in entries] == [
        ("non_transactional", "Test description"),
        ("transactional", "both now"),
    ]

    listed = sp.suppression_list.list(
        from_date="2015-05-07T00:00:00+0000", types=["transactional", "non_transactional"], limit=5
    )
    assert [e["recipient"] for e in listed] == ["test@test.com", "test@test.com"]
    assert sp.suppression_list.list(types=["transactional"], sources=["Manually Added"])[0]["type"] == "transactional"

    assert sp.suppression_list.delete("test@test.com") is True
    with pytest.raises(SparkPostAPIException) as info:
        sp.suppression_list.get("test@test.com")
    assert info.value.status == 404 and "Code: 1600" in info.value.errors[0]
    assert "Recipient could not be found" in info.value.errors[0]


def test_bulk_create_and_update_with_the_examples_entries(sp):
    entries = [
        {
            "email": "test1@test.com",
            "transactional": False,
            "non_transactional": True,
            "description": "Test description 1",
        },
        {
            "email": "test2@test.com",
            "transactional": True,
            "non_transactional": True,
            "description": "Test description 2",
        },
        {"recipient": "test3@test.com", "type": "transactional"},
    ]
    assert sp.suppression_list.create(entries) == {"message": "Suppression List successfully updated"}
    assert len(sp.suppression_list.list()) == 4
    sp.suppression_list.update([{"email": "test1@test.com", "transactional": True}])
    assert len(sp.suppression_list.get("test1@test.com")) == 2


def test_a_dict_keyed_recipient_reaches_the_path_none_and_is_a_400(sp):
    with pytest.raises(SparkPostAPIException) as info:
        sp.suppression_list.create({"recipient": "a@test.com", "type": "transactional"})
    assert info.value.status == 400 and "Code: 1300" in info.value.errors[0]
    assert sp.suppression_list.list() == []


def test_deleting_an_unknown_address_raises_404(sp):
    with pytest.raises(SparkPostAPIException) as info:
        sp.suppression_list.delete("nobody@test.com")
    assert info.value.status == 404
