"""The production shape: the built wheel, installed outside the repository, answers a prompt."""

from __future__ import annotations

import site
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from shared.auth import mint, verify
from shared.embedded_redis import free_port
from tests.support import procs

SECRET = "wheel-secret-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(procs.ROOT)],
                   check=True, cwd=out, capture_output=True)
    return next(out.glob("threadline-*.whl"))


def test_the_wheel_ships_its_scripts_and_pages_and_no_generic_top_level_names(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"server", "shared", "threadline", "workers"}  # no `app` or `client` in site-packages
    lua = {Path(n).name for n in names if n.startswith("shared/store/lua/")}
    assert lua == {p.name for p in (procs.ROOT / "shared/store/lua").glob("*.lua")}
    static = {n.removeprefix("server/static/") for n in names if n.startswith("server/static/")}
    assert static == {str(p.relative_to(procs.ROOT / "server/static"))
                      for p in (procs.ROOT / "server/static").rglob("*") if p.is_file()}  # vendor/ too
    assert "threadline/py.typed" in names
    meta = zipfile.ZipFile(wheel)
    dist = next(n for n in names if n.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in meta.read(dist).decode()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    entry = meta.read(dist.replace("METADATA", "entry_points.txt")).decode()
    assert "threadline = threadline.cli:main" in entry


def test_the_command_reads_a_dot_env_without_overriding_the_environment(tmp_path: Path) -> None:
    env_file_secret, real_secret = "dotenv-secret-" + "x" * 32, "real-secret-" + "y" * 32
    (tmp_path / ".env").write_text(f'# the app\'s settings\nexport AUTH_SECRET="{env_file_secret}"\n')
    env = procs.child_env()
    env.pop("AUTH_SECRET", None)

    def token(**extra: str) -> str:
        out = subprocess.run([sys.executable, "-m", "threadline", "token", "alice"], cwd=tmp_path,
                             env={**env, **extra}, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    assert verify(env_file_secret, token()).user_id == "alice"  # from .env
    assert verify(real_secret, token(AUTH_SECRET=real_secret)).user_id == "alice"  # the environment wins
    refused = subprocess.run([sys.executable, "-m", "threadline", "nope"], cwd=tmp_path, env=env,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "threadline dev" in refused.stderr


@pytest.mark.timeout(180)
def test_installed_wheel_outside_the_repo_answers_a_prompt_end_to_end(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    target = Path(subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    # dependencies come from the test environment; its own copy of the project must not
    (target / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    check = subprocess.run([py, "-c", "import shared, server, workers, threadline; print(shared.__file__)"],
                           cwd=run_dir, capture_output=True, text=True, check=True)
    assert check.stdout.startswith(str(target))  # imported from the installed wheel, not the repo
    valkey, rport = procs.start_valkey(tmp_path / "valkey")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": f"redis://127.0.0.1:{rport}/0", "AUTH_SECRET": SECRET,
           "PORT": str(port), "DATA_DIR": str(run_dir / "data"), "MOCK_LLM_DELAY_MS": "1", "WORKERS": "1",
           "RATE_LIMIT_SENDS_PER_MINUTE": "0"}
    started = [valkey]
    try:
        for name, argv in (("web", ["-m", "server", "web"]), ("worker", ["-m", "workers", "generation"])):
            with open(tmp_path / f"{name}.log", "ab") as out:
                started.append(subprocess.Popen([str(py), *argv], cwd=run_dir, env=env, stdout=out,
                                                stderr=subprocess.STDOUT, start_new_session=True))
        procs.wait_for_port(port, started[1])
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {mint(SECRET, 'alice')}"}
        assert httpx.get(f"{base}/client.js").status_code == 200  # static files from the package
        for vendored in ("marked.esm.js", "purify.es.js"):  # what the chat page renders markdown with
            assert httpx.get(f"{base}/static/vendor/{vendored}").status_code == 200, vendored
        tid = httpx.post(f"{base}/api/threads", json={}, headers=auth).json()["threadId"]
        assert httpx.post(f"{base}/api/threads/{tid}/messages", json={"prompt": "hello"},
                          headers=auth).status_code == 201
        deadline = time.monotonic() + 60
        while True:
            page = httpx.get(f"{base}/api/threads/{tid}/messages", headers=auth).json()["page"]
            replies = [m for m in page if m["role"] == "assistant" and m["status"] != "pending"]
            if replies:
                break
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-3000:]
            time.sleep(0.2)
        assert replies[0]["status"] == "success" and replies[0]["text"].startswith("[mock]")
    finally:
        for proc in reversed(started):
            procs.stop(proc)
