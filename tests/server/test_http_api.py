from __future__ import annotations

import httpx

from tests.conftest import token_for


def client(web: str, user: str | None = "alice") -> httpx.Client:
    headers = {"Authorization": f"Bearer {token_for(user)}"} if user else {}
    return httpx.Client(base_url=web, headers=headers, timeout=10)


def test_healthz_answers_once_redis_is_reachable(web: str) -> None:
    assert httpx.get(f"{web}/healthz").json() == {"ok": True}


def test_thread_crud_and_messages_without_generation(web: str) -> None:
    with client(web) as c:
        r = c.post("/api/threads", json={"title": "Hello", "metadata": {"a": 1}})
        assert r.status_code == 201
        tid = r.json()["threadId"]
        assert c.get(f"/api/threads/{tid}").json()["title"] == "Hello"
        assert c.patch(f"/api/threads/{tid}", json={"title": "Renamed"}).json()["title"] == "Renamed"
        r = c.post(f"/api/threads/{tid}/messages", json={"prompt": "hi", "generate": False})
        assert r.status_code == 201 and r.json()["order"] == 1
        human = c.post(f"/api/threads/{tid}/messages", json={
            "message": {"role": "assistant", "content": "a person answers"},
            "agentName": "support", "generate": False, "order": 1,
        }).json()
        page = c.get(f"/api/threads/{tid}/messages", params={"numItems": 10}).json()
        assert [(m["text"], m["order"], m["stepOrder"]) for m in page["page"]] == [
            ("a person answers", 1, 1), ("hi", 1, 0)
        ]
        assert page["page"][0]["messageId"] == human["messageId"]
        assert page["page"][0]["agentName"] == "support" and page["isDone"] is True
        listed = c.get("/api/threads").json()
        assert [t["threadId"] for t in listed["page"]] == [tid]
        assert c.delete(f"/api/threads/{tid}").json() == {"deleted": True}
        assert c.get(f"/api/threads/{tid}").status_code == 404


def test_missing_and_bad_tokens_are_401(web: str) -> None:
    with client(web, None) as c:
        r = c.get("/api/threads")
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        r = c.get("/api/threads", headers={"Authorization": "Bearer not.a.jwt"})
        assert r.status_code == 401
        expired = token_for("alice", ttl_s=-5)
        r = c.get("/api/threads", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and "expired" in r.json()["message"]


def test_bad_body_is_400_naming_the_field(web: str) -> None:
    with client(web) as c:
        r = c.post("/api/threads", json={"title": 5})
        assert r.status_code == 400 and "`title`" in r.json()["message"]
        r = c.post("/api/threads", content=b"{not json")
        assert r.status_code == 400 and r.json()["code"] == "bad_request"
        tid = c.post("/api/threads", json={}).json()["threadId"]
        r = c.post(f"/api/threads/{tid}/messages", json={"generate": False})
        assert r.status_code == 400 and "prompt" in r.json()["message"]
        r = c.post(f"/api/threads/{tid}/messages", json={"prompt": "x", "generate": "no"})
        assert r.status_code == 400 and "`generate`" in r.json()["message"]
        r = c.post(f"/api/threads/{tid}/messages", json={"prompt": "x", "surprise": 1})
        assert r.status_code == 400 and "surprise" in r.json()["message"]
        r = c.get(f"/api/threads/{tid}/messages", params={"numItems": 1000})
        assert r.status_code == 400 and "numItems" in r.json()["message"]
        r = c.get(f"/api/threads/{tid}/messages", params={"cursor": "zz"})
        assert r.status_code == 400


def test_another_users_thread_is_404_everywhere(web: str) -> None:
    with client(web, "alice") as alice, client(web, "bob") as bob:
        tid = alice.post("/api/threads", json={"title": "private"}).json()["threadId"]
        alice.post(f"/api/threads/{tid}/messages", json={"prompt": "secret", "generate": False})
        for r in (
            bob.get(f"/api/threads/{tid}"),
            bob.patch(f"/api/threads/{tid}", json={"title": "x"}),
            bob.delete(f"/api/threads/{tid}"),
            bob.get(f"/api/threads/{tid}/messages"),
            bob.post(f"/api/threads/{tid}/messages", json={"prompt": "x", "generate": False}),
        ):
            assert r.status_code == 404 and r.json()["code"] == "not_found"
        assert bob.get("/api/threads").json()["page"] == []
        assert alice.get(f"/api/threads/{tid}").json()["title"] == "private"


def test_message_deletes_and_snippets_over_http_as_over_the_websocket(web: str) -> None:
    """HTTP parity: delete a message, several, a range; add, list and delete snippets; another
    user's thread, message or snippet is not found and stays."""
    with client(web, "alice") as c, client(web, "bob") as bob:
        tid = c.post("/api/threads", json={}).json()["threadId"]
        ids = [c.post(f"/api/threads/{tid}/messages", json={"prompt": f"m{i}", "generate": False}).json()["messageId"]
               for i in range(6)]

        def texts() -> list[str]:
            return [m["text"] for m in c.get(f"/api/threads/{tid}/messages").json()["page"]]

        assert bob.delete(f"/api/messages/{ids[0]}").status_code == 404
        assert c.delete(f"/api/messages/{ids[0]}").json() == {"deleted": 1}
        assert c.post("/api/messages/delete", json={"messageIds": ids[1:3]}).json() == {"deleted": 2}
        r = c.post("/api/messages/delete", json={"messageIds": []})
        assert r.status_code == 400 and "messageIds" in r.json()["message"]
        assert bob.post(f"/api/threads/{tid}/messages/delete-range",
                        json={"startOrder": 4, "endOrder": 5}).status_code == 404
        assert c.post(f"/api/threads/{tid}/messages/delete-range",
                      json={"startOrder": 4, "endOrder": 5}).json() == {"deleted": 1}  # [4, 5): order 4 only
        assert texts() == ["m5", "m4"]

        r = c.post(f"/api/threads/{tid}/snippets", json={"kind": "canvas-edit", "content": "title -> Hi",
                                                         "target": "title", "messageId": ids[5]})
        assert r.status_code == 201
        sid = r.json()["snippetId"]
        assert bob.post(f"/api/threads/{tid}/snippets", json={"kind": "x", "content": "y"}).status_code == 404
        listed = c.get(f"/api/threads/{tid}/snippets", params={"numItems": 10}).json()
        assert [(x["snippetId"], x["target"]) for x in listed["page"]] == [(sid, "title")]
        assert bob.get(f"/api/threads/{tid}/snippets").status_code == 404
        assert bob.delete(f"/api/snippets/{sid}").status_code == 404
        assert c.delete(f"/api/snippets/{sid}").json() == {"deleted": True}
        assert c.get(f"/api/threads/{tid}/snippets").json()["page"] == []


def test_oversized_body_is_413(web: str) -> None:
    with client(web) as c:
        tid = c.post("/api/threads", json={}).json()["threadId"]
        big = {"prompt": "x" * (1 << 20), "generate": False}
        r = c.post(f"/api/threads/{tid}/messages", json=big)
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        assert c.get(f"/api/threads/{tid}/messages").json()["page"] == []


def test_unknown_route_and_method_are_json_errors(web: str) -> None:
    with client(web) as c:
        assert c.get("/api/nothing").json()["code"] == "not_found"
        assert c.put("/api/threads").status_code == 405


def test_idempotency_key_runs_a_post_once(web: str) -> None:
    with client(web) as c:
        tid = c.post("/api/threads", json={}).json()["threadId"]
        body = {"prompt": "once", "generate": False}
        first = c.post(f"/api/threads/{tid}/messages", json=body, headers={"Idempotency-Key": "k1"})
        again = c.post(f"/api/threads/{tid}/messages", json=body, headers={"Idempotency-Key": "k1"})
        assert first.json() == again.json()
        assert len(c.get(f"/api/threads/{tid}/messages").json()["page"]) == 1


def test_hostile_bodies_and_numbers_get_json_400s_never_storage_errors(web: str) -> None:
    with client(web) as c:
        tid = c.post("/api/threads", json={}).json()["threadId"]
        deep = '{"title":"x","metadata":{"a":' + "[" * 5000 + "]" * 5000 + "}}"
        bad = [
            c.post("/api/threads", content=deep, headers={"Content-Type": "application/json"}),
            c.get(f"/api/threads/{tid}/messages", params={"numItems": "\u00b2"}),
            c.get(f"/api/threads/{tid}/messages", params={"cursor": "\u00b2"}),
            c.get(f"/api/threads/{tid}/messages", params={"cursor": "9" * 20}),
            c.get("/api/threads", params={"cursor": "1" * 30}),
            c.post(f"/api/threads/{tid}/messages", json={"prompt": "x", "generate": False, "order": 10 ** 30}),
        ]
        sent = c.post(f"/api/threads/{tid}/messages", json={"prompt": "x", "generate": False})
        assert sent.status_code == 201
        for last in ("\u00b2".encode(), b"9" * 20):
            bad.append(c.get(f"/api/streams/{tid}-sx", headers={"Last-Event-ID": last}))
        for r in bad:
            assert r.status_code in (400, 404), (r.request.url, r.status_code, r.text)
            body = r.json()
            assert body["code"] in ("bad_request", "not_found"), body
            assert "storage" not in body["message"].lower() and "Traceback" not in r.text
        assert bad[0].status_code == 400 and bad[1].status_code == 400


def test_messages_over_http_list_the_threads_streams_when_asked(web: str) -> None:
    with client(web) as c:
        tid = c.post("/api/threads", json={}).json()["threadId"]
        c.post(f"/api/threads/{tid}/messages", json={"prompt": "hi", "generate": False}).raise_for_status()
        plain = c.get(f"/api/threads/{tid}/messages").json()
        assert "streams" not in plain
        with_streams = c.get(f"/api/threads/{tid}/messages", params={"streams": "true"}).json()
        assert with_streams["streams"] == [] and len(with_streams["page"]) == 1
        assert c.get(f"/api/threads/{tid}/messages", params={"streams": "maybe"}).status_code == 400
