"""Every operation of the served OpenAPI document, fuzzed by schemathesis (issue 10 §2).

The document is fetched from the running app (``/api/v1/openapi.json``) and every operation is
called through the whole WSGI stack (middleware, authentication, grants, the views, the
database) with examples made from its declarations, valid and invalid, by a fixed seed and a
bounded count. Each answer must be no server error, a status the document lists, JSON where
it says JSON, and a body matching the declared schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 40


@pytest.fixture
def api_schema(db):
    """The document, loaded from the app; requests keep the test's connection (as Django's
    test client does), so each operation's examples run inside the test's transaction."""
    from django.core import signals
    from django.db import close_old_connections

    from engage.wsgi import application

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key(make_key, monkeypatch):
    """One key with every grant for all of an operation's examples. Webhook targets the
    fuzzer makes up are never looked up or connected to: nothing leaves the machine."""
    import socket

    from analytics import targets, webhooks

    def no_resolver(host, port, timeout):
        raise targets.TargetRefused(f"'{host}' could not be resolved")

    def loopback_only(addresses, address, timeout, source_address=None):
        if not all(ip.is_loopback for ip in addresses):
            raise OSError("the fuzz test connects to loopback only")
        return socket.create_connection((str(addresses[0]), address[1]), timeout, source_address)

    monkeypatch.setattr(targets, "_getaddrinfo", no_resolver)
    monkeypatch.setattr(webhooks, "_connect_first", loopback_only)
    return make_key()


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_operation_answers_as_documented(case, fuzz_key):
    case.call_and_validate(headers={"Authorization": fuzz_key}, checks=CHECKS)


def test_document_lists_every_api_route(client):
    """A route added without declarations would be missing from the document and unfuzzed."""
    from django.urls import get_resolver

    document = client.get("/api/v1/openapi.json").json()
    documented = set(document["paths"])
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                text = prefix + str(pattern.pattern)
                if text.startswith("api/v1/") and getattr(pattern.callback, "cls", None) is not None:
                    routes.add(text)

    walk(get_resolver().url_patterns)
    import re

    as_paths = {"/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route) for route in routes}
    as_paths -= {"/api/v1/openapi.json", "/api/v1/docs"}
    assert as_paths - documented == set()
    assert all(document["paths"][path] for path in documented)


def test_docs_page_is_served_without_a_key(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    assert b"swagger" in page.content.lower()
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.1")
    # descriptions are for the API's readers: no pointers into Engage's own contract file
    assert "SPEC" not in document.content.decode() and "``" not in document.content.decode()
