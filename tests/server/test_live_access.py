"""Live queries shared between tabs are authorized per subscriber: two tokens of one user that grant
different access (the admin claim, a team) never share a result."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import token_for
from tests.support.wsutil import Tab

pytestmark = pytest.mark.anyio


def _thread_of(web: str, user: str) -> str:
    resp = httpx.post(f"{web}/api/threads", json={"title": "secret plans"},
                      headers={"Authorization": f"Bearer {token_for(user)}"})
    resp.raise_for_status()
    return str(resp.json()["threadId"])


async def test_an_admin_query_is_refused_to_the_same_users_plain_token(web: str) -> None:
    bob_thread = _thread_of(web, "bob")
    admin = await Tab.open(web, client_id="admin-tab", token=token_for("alice", admin=True))
    plain = await Tab.open(web, client_id="plain-tab", token=token_for("alice"))
    try:
        first = await admin.subscribe("a", "admin.threads", {"userId": "bob"})
        assert first["type"] == "result" and first["value"]["page"][0]["threadId"] == bob_thread
        refused = await plain.subscribe("p", "admin.threads", {"userId": "bob"})
        assert refused["type"] == "error" and refused["code"] == "forbidden", refused
        refused = await plain.subscribe("m", "admin.messages", {"threadId": bob_thread, "streams": True})
        assert refused["type"] == "error" and refused["code"] == "forbidden", refused
        # the privileged tab leaves; bob's next thread reaches nobody on the plain token
        await admin.close()
        _thread_of(web, "bob")
        retry = await plain.subscribe("p2", "admin.threads", {"userId": "bob"})
        assert retry["type"] == "error" and retry["code"] == "forbidden", retry
        assert not [f for f in plain.frames if f["type"] == "result" and f["id"].startswith("p")]
    finally:
        await plain.close()


async def test_a_team_namespace_is_refused_to_a_token_without_the_team(web: str) -> None:
    member = await Tab.open(web, client_id="member-tab", token=token_for("alice", teams=("red",)))
    outsider = await Tab.open(web, client_id="outsider-tab", token=token_for("alice"))
    try:
        first = await member.subscribe("a", "rag.documents", {"namespace": "team:red"})
        assert first["type"] == "result", first
        refused = await outsider.subscribe("b", "rag.documents", {"namespace": "team:red"})
        assert refused["type"] == "error" and refused["code"] == "forbidden", refused
    finally:
        await member.close()
        await outsider.close()


async def test_tabs_with_the_same_access_all_follow_changes(web: str) -> None:
    _thread_of(web, "bob")
    tabs = [await Tab.open(web, client_id=f"admin-{i}", token=token_for("alice", admin=True)) for i in range(2)]
    try:
        for i, tab in enumerate(tabs):
            frame = await tab.subscribe(f"s{i}", "admin.threads", {"userId": "bob"})
            assert frame["type"] == "result" and len(frame["value"]["page"]) == 1
        _thread_of(web, "bob")
        for i, tab in enumerate(tabs):
            await tab.wait_result(f"s{i}", lambda v: len(v["page"]) == 2)
    finally:
        for tab in tabs:
            await tab.close()
