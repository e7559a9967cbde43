"""``chorus api-key create|list|revoke``: a key printed once and kept only as a hash, listed
without it, revoked for good; mistakes fail like every command (``chorus: error:``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from click.testing import CliRunner, Result
from sqlmodel import select

from bot.api_keys import ApiKeys
from bot.cli import cli
from bot.storage.db import Database
from bot.storage.models import ApiKey, AuditEntry


def chorus(tmp_path: Path, *args: str) -> Result:
    config = tmp_path / "chorus.yaml"
    config.write_text(f"storage:\n  data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    return CliRunner().invoke(cli, ["--config", str(config), *args], obj={})


def _db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'data' / 'chorus.db'}")


async def test_create_list_revoke(tmp_path: Path) -> None:
    made = chorus(
        tmp_path, "api-key", "create", "--tenant", "api:acme", "-s", "read", "-s", "admin"
    )
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("chorus_") and len(key) > 40
    assert "shown only now" in made.stderr and "new:" in made.stderr

    db = _db(tmp_path)
    try:
        with db.session() as s:
            [row] = s.exec(select(ApiKey)).all()
            assert row.digest == hashlib.sha256(key.encode()).hexdigest()
            assert key not in json.dumps(row.model_dump(mode="json"))
            entries = [e.action for e in s.exec(select(AuditEntry))]
            assert entries == ["api_key.create"]
        checked = await ApiKeys(db).verify(key)
        assert checked is not None and set(checked[1]) == {"read", "admin"}

        listed = chorus(tmp_path, "api-key", "list")
        assert listed.exit_code == 0 and key not in listed.output
        assert key[:12] in listed.output and "api:acme" in listed.output
        assert "read,admin" in listed.output
        as_json = json.loads(chorus(tmp_path, "api-key", "list", "--json").stdout)
        assert as_json["scopes"] == ["read", "admin"] and as_json["revoked_at"] is None

        revoked = chorus(tmp_path, "api-key", "revoke", key[:14])
        assert revoked.exit_code == 0 and "revoked" in revoked.output
        assert await ApiKeys(db).verify(key) is None
        assert chorus(tmp_path, "api-key", "list").stderr.startswith("No API key")
        assert "revoked" in chorus(tmp_path, "api-key", "list", "--revoked").output
    finally:
        db.dispose()


def test_mistakes_fail_clearly(tmp_path: Path) -> None:
    wrong_scope = chorus(tmp_path, "api-key", "create", "--tenant", "api:x", "-s", "root")
    assert wrong_scope.exit_code == 2 and "root" in wrong_scope.output
    no_tenant = chorus(tmp_path, "api-key", "create")
    assert no_tenant.exit_code == 2
    unknown = chorus(tmp_path, "api-key", "revoke", "chorus_nothinghere")
    assert unknown.exit_code == 1 and "no API key" in unknown.output
    short = chorus(tmp_path, "api-key", "revoke", "abc")
    assert short.exit_code == 1 and "at least" in short.output
    missing = chorus(tmp_path, "api-key", "list", "--tenant", "slack:T404")
    assert missing.exit_code == 1 and "no workspace slack:T404" in missing.output
