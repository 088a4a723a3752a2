"""python-sparkpost 1.3.10's ``suppression_list``, unchanged, against a live Engage server
(SPEC A.5, B §11.3): list, get, create, update and delete, single and bulk; and
node-sparkpost 2.x's ``suppressionList`` (``tests/compat/node``), when it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from sparkpost.exceptions import SparkPostAPIException

from tests.compat.helpers import client

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


NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_sparkpost() -> Path:
    """node-sparkpost as tests/compat/node/package-lock.json pins it, installed with ``npm ci``
    on first use (node_modules/ is not committed). Skipped only where node or npm is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (the node-sparkpost test needs them)")
    if not (NODE_DIR / "node_modules" / "sparkpost").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR)],
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
    return NODE_DIR


def test_node_sparkpost_2_suppression_list(live_server, transactional_db, node_sparkpost):
    """node-sparkpost 2.1.4's ``suppressionList``: ``upsert`` always bulk PUTs (the new key with
    the old booleans), ``list`` sends its object as the query string, 2xx resolves with the
    whole body (``results``, ``links``, ``total_count``), and a 4xx rejects with ``errors``."""
    from api_keys.services import api_key_create

    _key, raw = api_key_create(label="compat-node", grants=["suppression_lists/manage"])
    run = subprocess.run(
        ["node", str(NODE_DIR / "suppression_list.js"), live_server.url, raw],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["upsertOne"]["ok"] == {"results": {"message": "Suppression List successfully updated"}}
    assert seen["upsertMany"]["ok"]["results"]["message"] == "Suppression List successfully updated"
    (entry,) = seen["get"]["ok"]["results"]
    assert entry["recipient"] == "test1@test.com" and entry["type"] == "non_transactional"
    assert entry["non_transactional"] is True
    assert seen["list"]["ok"]["total_count"] == 4 and len(seen["list"]["ok"]["results"]) == 4
    assert seen["list"]["ok"]["links"] == []
    assert sorted(e["recipient"] for e in seen["listTypes"]["ok"]["results"]) == ["test2@test.com", "test3@test.com"]
    assert seen["delete"] == {"ok": ""}
    assert seen["getDeleted"]["status"] == 404 and seen["getDeleted"]["errors"][0]["code"] == "1600"
    assert seen["bad"]["status"] == 400 and seen["bad"]["errors"][0]["code"] == "1300"
