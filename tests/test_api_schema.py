"""The HTTP API against its OpenAPI document, property-based (schemathesis over a real server on
127.0.0.1): every operation, with data made from the document (valid and invalid), answers
without a server error, with a status, media type and body the document allows, and never
with anything of another workspace, though the key used may do everything in its own.

The document served is the one kept in the repository (docs/openapi.json); when they differ,
``python -m adapters.api.openapi`` writes it again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlmodel import select

from adapters.api.openapi import DEFAULT_PATH, render
from adapters.api.transport import Collected
from bot.api_keys import create_key
from bot.app import Chorus
from bot.bindings import bind_channel
from bot.memory.store import NewMemory, Scope
from bot.storage.models import Tenant, User
from tests.api_server import LiveServer, live_server
from tests.conftest import message

#: What only workspace T2 holds: no answer to T1's key may contain it.
SECRET = "T2-SECRET"
#: Examples per operation and mode (kept small: the whole test runs in well under a minute).
EXAMPLES = 6


@dataclass
class Seeded:
    key: str
    #: Ids of workspace T2's rows (no answer to T1's key may name them).
    other_ids: list[str]
    #: A memory of T2's person U1 (who also exists in T1).
    other_memory: uuid.UUID


def _seed(server: LiveServer) -> Seeded:
    async def seed(app: Chorus) -> Seeded:
        transport = Collected()
        for tenant, text in (("T1", "hello from T1"), ("T2", f"{SECRET}-QUESTION")):
            await app.dispatcher.handle_message(
                message(text, tenant=tenant, user="U1", channel="C1"), transport
            )

        def ids(s: Any) -> dict[str, uuid.UUID]:
            rows = s.exec(select(Tenant).where(Tenant.platform == "test")).all()
            return {row.external_id: row.id for row in rows}

        tenants = await app.db.run(ids)

        def prepare(s: Any) -> tuple[str, uuid.UUID]:
            person = s.exec(select(User).where(User.tenant_id == tenants["T2"])).one()
            person.profile = {"note": f"{SECRET}-PROFILE"}
            s.add(person)
            bind_channel(s, tenants["T2"], f"{SECRET}-CHANNEL", "assistant", actor=f"{SECRET}")
            made = create_key(s, tenants["T1"], ["read", "write", "admin"], actor="test")
            create_key(s, tenants["T2"], ["read"], name=f"{SECRET}-KEY", actor="test")
            return made.key, person.id

        key, other_user = await app.db.run(prepare)
        [memory] = await app.memory.remember(
            Scope(tenants["T2"], other_user), [NewMemory(f"{SECRET}-MEMORY about U1")]
        )
        return Seeded(key, [str(tenants["T2"]), str(other_user), str(memory.id)], memory.id)

    return server.run(seed)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, Seeded]]:
    with live_server(tmp_path_factory.mktemp("api-schema")) as live:
        yield live, _seed(live)


def test_the_document_served_is_the_one_in_the_repository(
    server: tuple[LiveServer, Seeded],
) -> None:
    live, _ = server
    served = requests.get(f"{live.url}/api/v1/openapi.json", timeout=10).json()
    kept = DEFAULT_PATH.read_text(encoding="utf-8")
    assert render(served) == kept, (
        "docs/openapi.json differs from the API: run python -m adapters.api.openapi"
    )


# schemathesis (and hypothesis with it) is imported by the tests that use it, not by this
# module: a third of a second that every pytest-xdist worker would pay to collect it. Its
# pytest plugin is off (pyproject.toml): these tests call it, they need no plugin.


def _checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]


def _operations(url: str) -> list[Any]:
    import schemathesis

    schema = schemathesis.openapi.from_url(f"{url}/api/v1/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def _erasing(operation: Any) -> bool:
    return bool(operation.method.upper() == "DELETE" and operation.path == "/people/{user}")


def _exercise(
    operation: Any,
    seeded: Seeded,
    base: str,
    session: requests.Session,
    seen: dict[str, set[int]],
) -> None:
    """Run ``operation`` with data made from the document: any data, data naming people and
    rows that exist (T1's person U1, T2's memory), and data the document forbids."""
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode

    checks = _checks()
    label = f"{operation.method.upper()} {operation.path}"
    headers = {"Authorization": f"Bearer {seeded.key}"}
    known = {
        "user": "U1",  # a person in both workspaces
        "memory_id": str(seeded.other_memory),  # T2's: never reachable from T1
        "name": "assistant",
        "channel": "C1",
    }
    fixed = {p.name: known[p.name] for p in operation.path_parameters if p.name in known}

    def check(case: Any) -> None:
        response = case.call(base_url=base, headers=headers, session=session, timeout=30)
        case.validate_response(response, checks=checks)
        text = response.text
        assert SECRET not in text, f"{label} answered with another workspace's data"
        asked = f"{case.formatted_path} {case.query} {case.body}"
        for other in seeded.other_ids:
            if other not in asked:  # a problem's instance repeats the path asked for
                assert other not in text, f"{label} named another workspace's row"
        seen.setdefault(label, set()).add(response.status_code)

    modes = [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None)]
    if fixed:
        modes.insert(1, (GenerationMode.POSITIVE, fixed))
    for mode, params in modes:
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=params)
        run = settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=strategy)(check))
        run()


def test_every_operation_keeps_to_the_document_and_to_its_workspace(
    server: tuple[LiveServer, Seeded],
) -> None:
    live, seeded = server
    session = requests.Session()
    operations = sorted(_operations(live.url), key=_erasing)  # erasing U1 last
    assert len(operations) >= 16
    seen: dict[str, set[int]] = {}
    for operation in operations:
        _exercise(operation, seeded, f"{live.url}/api/v1", session, seen)
    # Every operation was reached, and answered with success at least once, but those that
    # need a row of this workspace named in the request (made-up data names none).
    assert len(seen) == len(operations)
    failing = {label for label, codes in seen.items() if all(c >= 300 for c in codes)}
    assert failing <= NEED_A_ROW, json.dumps({k: sorted(v) for k, v in seen.items()})


#: Operations that succeed only for an agent, a memory or an answer of this workspace.
NEED_A_ROW = {
    "POST /personalities",  # its base must be an installed personality
    "DELETE /personalities/{name}",
    "DELETE /people/{user}/memories/{memory_id}",  # the id tried is T2's: never found
    "POST /feedback",
}


def test_the_document_in_the_repository_is_valid_openapi() -> None:
    import schemathesis

    document = json.loads(Path(DEFAULT_PATH).read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict(document)
    assert len(list(schema.get_all_operations())) >= 16
    assert document["servers"] == [{"url": "/api/v1"}]
