"""docker-compose.yml, checked by reading it (no Docker engine here)."""

from __future__ import annotations

import pytest
import yaml

from tests.support.procs import ROOT
from threadline.cli import COMMANDS

pytestmark = pytest.mark.any_store  # (its own store, or none: the same on a cluster)

APP = {"web", "worker", "index", "cron"}
CLUSTER = ("redis-1", "redis-2", "redis-3")


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_there_with_pinned_images_and_health() -> None:
    services = compose()["services"]
    assert set(services) == {"redis", "qdrant", *APP, *CLUSTER, "redis-cluster"}
    for name in ("redis", "qdrant", *CLUSTER):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert "healthcheck" in services[name]
    assert "--appendonly" in services["redis"]["command"]
    assert "healthcheck" in services["web"]


def test_every_app_service_gets_the_whole_environment() -> None:
    services = compose()["services"]
    for name in APP:
        env = services[name]["environment"]
        for var in ("REDIS_URL", "RQ_REDIS_URL", "QDRANT_URL", "AUTH_SECRET", "LLM_BASE_URL", "LLM_API_KEY", "LLM_MODEL",
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


def test_the_cluster_profile_forms_three_primaries_with_aof() -> None:
    """``--profile cluster``: three cluster-enabled nodes with AOF, formed once into one cluster; the
    app reaches it through REDIS_URL and keeps RQ on the plain redis (RQ_REDIS_URL)."""
    services = compose()["services"]
    for name in CLUSTER:
        node = services[name]
        assert node["profiles"] == ["cluster"] and node["image"] == services["redis"]["image"]
        assert {"--cluster-enabled", "--appendonly"} <= set(node["command"])
        assert node["volumes"] == [f"{name}-data:/data"]
    init = services["redis-cluster"]
    assert init["profiles"] == ["cluster"] and init["restart"] == "no"
    assert set(init["depends_on"]) == set(CLUSTER)
    script = init["command"][0]
    assert "--cluster create" in script and all(f"hosts {name}" in script for name in CLUSTER)
    assert "cluster_state:ok" in script  # a cluster formed already is left as it is
    env = services["web"]["environment"]
    assert env["REDIS_URL"] == "${REDIS_URL:-redis://redis:6379/0}" and env["RQ_REDIS_URL"] == "${RQ_REDIS_URL:-}"
