from __future__ import annotations


def test_the_front_door_asks_for_a_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
