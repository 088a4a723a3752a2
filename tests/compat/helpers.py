"""The ``sparkpost`` PyPI client pointed at a live test server."""

from __future__ import annotations

from sparkpost import SparkPost


def client(live_server, api_key: str) -> SparkPost:
    sp = SparkPost(api_key, base_uri="engage.invalid")
    for resource in (sp.templates, sp.recipient_lists, sp.transmissions, sp.metrics, sp.suppression_list):
        resource.base_uri = live_server.url + "/api/v1"
    return sp
