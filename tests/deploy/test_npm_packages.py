"""The npm packages @threadline/client and @threadline/react, packed as they are published: the very
modules the server serves (the React entry importing the client by name, marked "use client"), their
types, an exports map, the project's version and license; and Node resolves and runs the client by
its package name. tests/browser/test_vite_app.py builds an app against them."""

from __future__ import annotations

import json
import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

from tests.support.npm import npm_pack
from tests.support.procs import ROOT

pytestmark = pytest.mark.any_store  # (its own store, or none: the same on a cluster)

STATIC = ROOT / "server" / "static"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def unpack(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {m.name.removeprefix("package/"): tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


def test_the_packages_hold_the_served_modules_their_types_and_metadata(tmp_path: Path) -> None:
    client_tgz, react_tgz = npm_pack(tmp_path)
    assert (client_tgz.name, react_tgz.name) == (f"threadline-client-{VERSION}.tgz", f"threadline-react-{VERSION}.tgz")
    client, react = unpack(client_tgz), unpack(react_tgz)
    assert set(client) == {"package.json", "README.md", "LICENSE", "client.js", "client.d.ts"}
    assert set(react) == {"package.json", "README.md", "LICENSE", "react.js", "react.d.ts"}
    assert client["client.js"] == (STATIC / "client.js").read_bytes()
    assert client["client.d.ts"] == (STATIC / "client.d.ts").read_bytes()
    served = (STATIC / "react.js").read_text()
    assert react["react.js"].decode() == '"use client";\n' + served.replace('from "./client.js"',
                                                                              'from "@threadline/client"')
    assert b"./client.js" not in react["react.js"] and b"./client.js" not in react["react.d.ts"]
    assert client["LICENSE"] == react["LICENSE"] == (ROOT / "LICENSE").read_bytes()

    meta = {name: json.loads(files["package.json"]) for name, files in (("client", client), ("react", react))}
    for name, pkg in meta.items():
        assert (pkg["name"], pkg["version"], pkg["license"], pkg["type"]) == (f"@threadline/{name}", VERSION, "MIT",
                                                                              "module")
        assert pkg["exports"]["."] == {"types": f"./{name}.d.ts", "default": f"./{name}.js"}
    assert meta["react"]["peerDependencies"]["@threadline/client"] == VERSION
    assert "react" in meta["react"]["peerDependencies"] and "dependencies" not in meta["react"]


def test_node_imports_the_client_by_its_package_name(tmp_path: Path) -> None:
    client_tgz, _ = npm_pack(tmp_path / "tarballs")
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps({"name": "an-app", "private": True, "type": "module"}))
    install = subprocess.run(["npm", "install", "--offline", "--no-audit", "--no-fund", str(client_tgz)], cwd=app,
                             capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr
    script = ('import { ChatClient } from "@threadline/client";\n'
              'const c = new ChatClient("ws://127.0.0.1:9/ws", { token: "t" });\n'
              'console.log(JSON.stringify({ id: c.clientId, status: c.status }));\n')
    ran = subprocess.run(["node", "--input-type=module", "-e", script], cwd=app, capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["id"].startswith("tab-")
