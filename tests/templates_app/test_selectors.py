"""The template contract with transmissions: ``template_get_for_send`` and ``template_touch_last_use``."""

from __future__ import annotations

import pytest

from engage import errors
from templates_app.selectors import template_get_for_send
from templates_app.services import TemplateUpdateMode, template_create, template_touch_last_use, template_update

pytestmark = pytest.mark.django_db

CONTENT = {"from": {"email": "a@example.com"}, "subject": "s", "text": "t"}


def test_it_returns_the_published_version_with_its_number():
    template_create(template_id="t", name=None, published=True, content=CONTENT, options={"open_tracking": False})
    template_update(template_id="t", content={**CONTENT, "subject": "draft"})
    content, options, version = template_get_for_send(template_id="t", use_draft=False)
    assert content["subject"] == "s" and options == {"open_tracking": False} and version == 1
    content, _options, version = template_get_for_send(template_id="t", use_draft=True)
    assert content["subject"] == "draft" and version == 2


def test_publishing_keeps_the_draft_version_number():
    template_create(template_id="t", name=None, content=CONTENT, options={})
    template_update(template_id="t", content={**CONTENT, "subject": "v2"})
    template_update(template_id="t", mode=TemplateUpdateMode.PUBLISH)
    assert template_get_for_send(template_id="t", use_draft=False)[2] == 2
    with pytest.raises(errors.NoDraftTemplate):
        template_get_for_send(template_id="t", use_draft=True)


def test_it_raises_for_missing_templates_and_versions():
    template_create(template_id="d", name=None, content=CONTENT, options={})
    with pytest.raises(errors.NotFound):
        template_get_for_send(template_id="nope", use_draft=False)
    with pytest.raises(errors.NoPublishedTemplate):
        template_get_for_send(template_id="d", use_draft=False)


def test_touch_last_use_shows_last_use_in_the_api(api):
    template_create(template_id="t", name=None, content=CONTENT, options={})
    assert "last_use" not in api.get("/api/v1/templates/t").json()["results"]
    template_touch_last_use(template_id="t")
    assert api.get("/api/v1/templates/t").json()["results"]["last_use"].endswith("+00:00")
    assert "last_use" in api.get("/api/v1/templates").json()["results"][0]
