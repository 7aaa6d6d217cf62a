"""docs/protocol.md names everything the server speaks."""

from __future__ import annotations

import re

import pytest

from tests.support.procs import ROOT
from threadline.server.mutations import MUTATIONS
from threadline.server.queries import QUERIES
from threadline.server.ws.session import CloseCode
from threadline.shared.errors import ChatError

pytestmark = pytest.mark.any_store  # (its own store, or none: the same on a cluster)

DOC = (ROOT / "docs" / "protocol.md").read_text()


def test_every_query_and_mutation_is_documented() -> None:
    for name in [*QUERIES, *MUTATIONS]:
        assert f"`{name}`" in DOC, name


def test_every_error_and_close_code_is_documented() -> None:
    for cls in ChatError.__subclasses__():
        assert f"`{cls.code}`" in DOC, cls.code
    for name, code in vars(CloseCode).items():
        if name.isupper() and name != "TOO_SLOW":  # a dropped socket is aborted, no code reaches the peer
            assert f"| {code} |" in DOC, name


def test_every_http_route_is_documented() -> None:
    from threadline.server.app import create_app

    app = create_app()
    documented = re.findall(r"`(?:GET|POST|PATCH|DELETE)(?:/[A-Z]+)* ([^` ?]+)", DOC)
    doc_paths = {re.sub(r"\{[^}]+\}", "{}", p) for p in documented} | {"/playground", "/client.js", "/client.d.ts", "/react.js", "/react.d.ts", "/static"}
    for route in app.routes:
        path = re.sub(r"\{[^}]+\}", "{}", getattr(route, "path", ""))
        if path and path != "/ws":
            assert path in doc_paths, path


def test_every_query_and_mutation_is_also_an_http_route() -> None:
    """HTTP parity: each query and mutation of the WebSocket protocol is named by a row of the HTTP
    table, whose route the server serves with that method."""
    from threadline.server.app import create_app

    served = {(method, re.sub(r"\{[^}]+\}", "{}", route.path))
              for route in create_app().routes for method in getattr(route, "methods", None) or ()}
    rows = [line for line in DOC.split("\n## HTTP", 1)[1].splitlines() if line.startswith("| `")]
    for name in [*QUERIES, *MUTATIONS]:
        naming = [row for row in rows if f"`{name}`" in row.split(" | ", 1)[1]]
        assert naming, f"no HTTP route does {name}"
        for row in naming:
            method, path = re.match(r"\| `([A-Z]+) ([^` ?]+)", row).groups()  # type: ignore[union-attr]
            assert (method, re.sub(r"\{[^}]+\}", "{}", path)) in served, row


def test_every_frame_is_documented() -> None:
    from threadline.server import frames
    from threadline.server.ws import client_frames

    def tags(cls: type) -> set[str]:
        tag = cls.__struct_config__.tag
        found = {tag} if isinstance(tag, str) and not tag.startswith("_") else set()  # not the bases
        return found.union(*(tags(sub) for sub in cls.__subclasses__()))

    for tag in tags(frames._Frame) | tags(client_frames._Frame):
        assert f'{{"type":"{tag}"' in DOC, tag
