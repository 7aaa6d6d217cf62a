"""docker-compose.yml, checked by reading it (no Docker engine here)."""

from __future__ import annotations

import yaml

from tests.support.procs import ROOT
from threadline.cli import COMMANDS

APP = {"web", "worker", "index", "cron"}


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_there_with_pinned_images_and_health() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "qdrant", *APP}
    for name in ("redis", "qdrant"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert "healthcheck" in services[name]
    assert "--appendonly" in services["redis"]["command"]
    assert "healthcheck" in services["web"]


def test_every_app_service_gets_the_whole_environment() -> None:
    services = compose()["services"]
    for name in APP:
        env = services[name]["environment"]
        for var in ("REDIS_URL", "QDRANT_URL", "AUTH_SECRET", "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL",
                    "EMBEDDING_MODEL", "EMBEDDING_BASE_URL", "EMBEDDING_API_KEY", "APP_MODULE"):
            assert var in env, (name, var)
        assert services[name]["depends_on"] == {"redis": {"condition": "service_healthy"},
                                               "qdrant": {"condition": "service_healthy"}}
    assert services["web"]["environment"]["HOST"] == "0.0.0.0"


def test_every_command_exists_in_the_package() -> None:
    services = compose()["services"]
    for name in APP:
        program, command = services[name]["command"]
        assert (program, command) == ("threadline", name)  # the installed command
        assert command in COMMANDS
