from __future__ import annotations

import jwt
import pytest

from threadline.shared.auth import bearer, mint, resolve_secret, verify
from threadline.shared.config import load_settings
from threadline.shared.errors import Unauthorized

S = "k" * 40


def test_round_trip_and_admin_claim() -> None:
    ident = verify(S, mint(S, "alice", admin=True))
    assert (ident.user_id, ident.admin) == ("alice", True)


def test_expired_wrong_secret_and_missing_sub_are_rejected() -> None:
    with pytest.raises(Unauthorized, match="expired"):
        verify(S, mint(S, "alice", ttl_s=-10))
    with pytest.raises(Unauthorized):
        verify("o" * 40, mint(S, "alice"))
    with pytest.raises(Unauthorized):
        verify(S, jwt.encode({"x": 1}, S, algorithm="HS256"))
    with pytest.raises(Unauthorized):
        verify(S, jwt.encode({"sub": "a"}, S * 2, algorithm="HS512"))


def test_bearer_header_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    for bad in (None, "", "Basic abc", "Bearer "):
        with pytest.raises(Unauthorized):
            bearer(bad)


def test_dev_secret_is_created_once_under_data_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings({"DATA_DIR": str(tmp_path)})
    first, dev = resolve_secret(settings)
    again, _ = resolve_secret(settings)
    assert dev and first == again and len(first) > 40
    assert resolve_secret(load_settings({"AUTH_SECRET": S})) == (S, False)
