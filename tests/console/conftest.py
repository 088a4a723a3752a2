"""Fixtures of the console's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def staff(client, staff_user):
    """The test client, signed in as a staff user (``tests/browser.py``'s ``staff_user``)."""
    client.force_login(staff_user)
    return client
