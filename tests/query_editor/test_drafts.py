"""Tab drafts: the whole tab state per user and space, validated and size-capped."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import client_for
from tests.query_editor.conftest import space_url
from tests.query_editor.test_execute import assert_error

pytestmark = pytest.mark.django_db


def tab(tab_id: str, **fields) -> dict:
    return {"id": tab_id, "title": "Untitled", "sql_text": "SELECT 1", "connector_id": None, **fields}


def put(client, slug: str, body: dict):
    return client.put(space_url(slug, "drafts"), body, format="json")


def test_drafts_are_empty_at_first(analyst_client, slug):
    response = analyst_client.get(space_url(slug, "drafts"))
    assert response.status_code == 200
    assert response.json() == {"tabs": [], "active_tab_id": None, "updated_at": None}


def test_drafts_round_trip(analyst_client, slug, sales):
    tabs = [tab("tab-1", sql_text="SELECT * FROM orders", connector_id=str(sales.uuid)), tab("tab-2", title="Scratch")]
    saved = put(analyst_client, slug, {"tabs": tabs, "active_tab_id": "tab-2"})
    assert saved.status_code == 200, saved.content
    body = analyst_client.get(space_url(slug, "drafts/")).json()
    assert body["tabs"] == tabs
    assert body["active_tab_id"] == "tab-2"
    assert body["updated_at"].endswith("Z")
    assert saved.json() == body


def test_a_save_replaces_the_whole_state(analyst_client, slug):
    put(analyst_client, slug, {"tabs": [tab("a"), tab("b")], "active_tab_id": "a"})
    put(analyst_client, slug, {"tabs": [tab("c")], "active_tab_id": "c"})
    body = analyst_client.get(space_url(slug, "drafts")).json()
    assert [t["id"] for t in body["tabs"]] == ["c"]
    put(analyst_client, slug, {"tabs": [], "active_tab_id": None})
    assert analyst_client.get(space_url(slug, "drafts")).json()["tabs"] == []


def test_drafts_are_per_user_and_per_space(analyst_client, member, pii_member, slug):
    put(analyst_client, slug, {"tabs": [tab("mine")], "active_tab_id": "mine"})
    assert client_for(pii_member.user).get(space_url(slug, "drafts")).json()["tabs"] == []


def test_tab_ids_must_be_unique(analyst_client, slug):
    body = assert_error(
        put(analyst_client, slug, {"tabs": [tab("a"), tab("a")], "active_tab_id": "a"}), 400, "BAD_REQUEST"
    )
    assert "unique" in body["detail"]


def test_the_active_tab_must_be_one_of_the_tabs(analyst_client, slug):
    body = assert_error(put(analyst_client, slug, {"tabs": [tab("a")], "active_tab_id": "zzz"}), 400, "BAD_REQUEST")
    assert "active_tab_id" in body["detail"] or "zzz" in body["detail"]
    assert_error(put(analyst_client, slug, {"tabs": [tab("a")]}), 400, "BAD_REQUEST")


def test_at_most_50_tabs(analyst_client, slug):
    tabs = [tab(f"t{i}") for i in range(51)]
    assert_error(put(analyst_client, slug, {"tabs": tabs, "active_tab_id": "t0"}), 400, "BAD_REQUEST")


def test_the_state_is_capped_at_one_megabyte(analyst_client, slug):
    tabs = [tab(f"t{i}", sql_text="x" * 45_000) for i in range(25)]
    body = assert_error(put(analyst_client, slug, {"tabs": tabs, "active_tab_id": "t0"}), 400, "BAD_REQUEST")
    assert "bytes" in body["detail"]


def test_malformed_tabs_are_400(analyst_client, slug):
    assert_error(put(analyst_client, slug, {"tabs": "nope"}), 400, "BAD_REQUEST")
    assert_error(put(analyst_client, slug, {"tabs": [{"title": "no id"}], "active_tab_id": None}), 400, "BAD_REQUEST")
    bad_connector = {"tabs": [tab("a", connector_id="x")], "active_tab_id": "a"}
    assert_error(put(analyst_client, slug, bad_connector), 400, "BAD_REQUEST")
    ok_connector = {"tabs": [tab("a", connector_id=str(uuid.uuid4()))], "active_tab_id": "a"}
    assert put(analyst_client, slug, ok_connector).status_code == 200


def test_drafts_of_a_foreign_space_are_404(slug, outsider):
    assert_error(client_for(outsider.user).get(space_url(slug, "drafts")), 404, "NOT_FOUND")
    assert_error(put(client_for(outsider.user), slug, {"tabs": []}), 404, "NOT_FOUND")
