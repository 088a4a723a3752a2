"""``manage.py create_api_key``: a key has exactly the grants named, which must be named
(``--grants all`` is a choice to write out, never a default), and the key is printed once."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api_keys.grants import ALL_GRANTS
from api_keys.management.commands.create_api_key import Command
from api_keys.models import ApiKey

pytestmark = pytest.mark.django_db


def test_without_grants_no_key_is_made():
    for args in (["--label", "me"], ["--label", "me", "--grants", ""], ["--label", "me", "--grants", " , "]):
        with pytest.raises(CommandError):
            call_command("create_api_key", *args, stdout=StringIO())
    assert not ApiKey.objects.exists()


def test_the_key_holds_exactly_the_grants_named_and_is_printed_once():
    out = StringIO()
    call_command("create_api_key", "--label", "smtp app", "--grants", "smtp/inject", stdout=out)
    key = ApiKey.objects.get()
    assert key.grants == ["smtp/inject"] and key.label == "smtp app"
    assert out.getvalue().strip().startswith(key.prefix)


def test_all_grants_only_when_asked_and_the_help_names_every_grant():
    call_command("create_api_key", "--label", "everything", "--grants", "all", stdout=StringIO())
    assert ApiKey.objects.get().grants == list(ALL_GRANTS)
    with pytest.raises(CommandError, match="unknown grant"):
        call_command("create_api_key", "--label", "x", "--grants", "transmissions/modify,everything", stdout=StringIO())
    usage = Command().create_parser("manage.py", "create_api_key").format_help()
    assert all(grant in usage for grant in ALL_GRANTS)
