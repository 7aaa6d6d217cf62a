"""Tokens of the app's own identity provider: a JWKS served by a process on loopback (keys made
here, as a provider publishes them), a web process that trusts it, and tokens signed RS256, ES256
and EdDSA; a wrong issuer, audience, an expired token, an unknown key and a key rotation; over
HTTP and the WebSocket. Then web apps on other origins (CORS_ORIGINS)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.conftest import token_for, web_process
from tests.support.idp import AUDIENCE, ISSUER, Provider, serve_provider

pytestmark = pytest.mark.anyio

APP_ORIGIN = "http://app.example.test:5173"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    with serve_provider(tmp_path_factory.mktemp("idp")) as idp:
        yield idp


@pytest.fixture(scope="module")
def web_idp(redis_server: str, provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {**provider.env(), "AUTH_ADMIN_CLAIM": "role=admin", "AUTH_TEAMS_CLAIM": "org_teams",
           "AUTH_JWKS_REFETCH_S": "0", "CORS_ORIGINS": APP_ORIGIN}
    yield from web_process(redis_server, tmp_path_factory, "web-idp", env)


def threads(web: str, token: str) -> httpx.Response:
    return httpx.get(f"{web}/api/threads", headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1", "ed-1"])
def test_a_providers_token_signs_in(web_idp: str, provider: Provider, kid: str) -> None:
    resp = threads(web_idp, provider.token(kid, sub=f"user-{kid}"))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(("claims", "why"), [
    ({"iss": "https://other.example/"}, "issuer"),
    ({"aud": "someone-else"}, "audience"),
    ({"exp": 1_000_000}, "expired"),
    ({"sub": None}, "sub"),
])
def test_a_token_for_someone_else_or_expired_is_refused(web_idp: str, provider: Provider, claims: dict[str, Any],
                                                        why: str) -> None:
    resp = threads(web_idp, provider.token("rsa-1", **claims))
    assert resp.status_code == 401 and why in resp.json()["message"].lower(), resp.text


def test_a_key_the_provider_does_not_publish_is_refused(web_idp: str, provider: Provider) -> None:
    resp = threads(web_idp, provider.token("never"))
    assert resp.status_code == 401 and "not one the identity provider publishes" in resp.json()["message"]
    forged = jwt.encode({"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                        provider.keys["never"][1], algorithm="RS256", headers={"kid": "rsa-1"})  # a published kid
    assert threads(web_idp, forged).status_code == 401


def test_a_rotated_key_is_picked_up(web_idp: str, provider: Provider) -> None:
    assert threads(web_idp, provider.token("rsa-1")).status_code == 200
    provider.publish("rsa-2", "ec-1", "ed-1")  # the provider rotates its RSA key
    try:
        assert threads(web_idp, provider.token("rsa-2")).status_code == 200
    finally:
        provider.publish("rsa-1", "ec-1", "ed-1")


def test_claims_name_the_admin_and_the_teams_and_own_tokens_still_work(web_idp: str, provider: Provider) -> None:
    admin = provider.token("ec-1", sub="boss", role="admin")
    stats = httpx.get(f"{web_idp}/api/stats", headers={"Authorization": f"Bearer {admin}"})
    assert stats.status_code == 200, stats.text
    plain = provider.token("ec-1", sub="worker", role="member")
    assert httpx.get(f"{web_idp}/api/stats", headers={"Authorization": f"Bearer {plain}"}).status_code == 403
    member = provider.token("ec-1", sub="crew", org_teams=["deck"])
    docs = httpx.get(f"{web_idp}/api/rag/team:deck/documents", headers={"Authorization": f"Bearer {member}"})
    assert docs.status_code == 200, docs.text
    outsider = provider.token("ec-1", sub="crew")
    assert httpx.get(f"{web_idp}/api/rag/team:deck/documents",
                     headers={"Authorization": f"Bearer {outsider}"}).status_code == 403
    assert threads(web_idp, token_for("alice")).status_code == 200  # HS256 tokens of the app's backend


async def test_a_providers_token_opens_the_websocket(web_idp: str, provider: Provider) -> None:
    async with websockets.connect(web_idp.replace("http", "ws") + "/ws") as ws:
        await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": provider.token("ed-1", sub="sock"),
                                  "clientId": "idp-tab"}))
        frame = json.loads(await ws.recv())
    assert (frame["type"], frame["userId"]) == ("connected", "sock")


# -- other origins ---------------------------------------------------------------------------


def test_an_allowed_origin_gets_cors_on_the_api_and_the_client_modules(web_idp: str, provider: Provider) -> None:
    preflight = httpx.options(f"{web_idp}/api/chat", headers={
        "Origin": APP_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    real = httpx.get(f"{web_idp}/api/threads", headers={"Origin": APP_ORIGIN,
                                                        "Authorization": f"Bearer {provider.token('rsa-1')}"})
    assert real.status_code == 200 and real.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "x-request-id" in real.headers["access-control-expose-headers"].lower()
    module = httpx.get(f"{web_idp}/client.js", headers={"Origin": APP_ORIGIN})
    assert module.headers["access-control-allow-origin"] == APP_ORIGIN
    page = httpx.get(f"{web_idp}/", headers={"Origin": APP_ORIGIN})
    assert "access-control-allow-origin" not in page.headers  # pages stay the server's own


def test_an_origin_outside_the_list_is_refused(web_idp: str) -> None:
    evil = "http://evil.example.test"
    preflight = httpx.options(f"{web_idp}/api/chat", headers={"Origin": evil, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
    real = httpx.get(f"{web_idp}/api/threads", headers={"Origin": evil, "Authorization": f"Bearer {token_for('a')}"})
    assert "access-control-allow-origin" not in real.headers


async def test_the_websocket_takes_listed_and_own_origins_only(web_idp: str) -> None:
    url = web_idp.replace("http", "ws") + "/ws"
    for origin in (APP_ORIGIN, web_idp, None):  # listed, the server's own, a client without a browser
        async with websockets.connect(url, origin=origin) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "connect", "protocol": 1, "token": token_for("alice"), "clientId": "o"}))
            assert json.loads(await ws.recv())["type"] == "connected"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url, origin="http://evil.example.test"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
