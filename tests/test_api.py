"""The HTTP API (``/api/v1``) through its HTTP interface: keys and scopes, messages answered by
the same dispatcher (with the context used, or streamed as server-sent events), sessions,
personalities, a person's profile, preferences and memories, export and erasure, ratings,
stats, the audit log, and problem documents for every error.

Across workspaces: tests/test_api_tenants.py; against the OpenAPI document:
tests/test_api_schema.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from adapters.api import ApiAdapter
from adapters.api.conversations import JOURNAL
from bot.api_keys import revoke_key
from bot.inbox import Inbox, Pending
from bot.middleware.dedupe import first_sight
from bot.storage.models import AuditEntry, InboundEvent, Interaction, Tenant
from tests.api_helpers import API, ApiSite, api_site
from tests.conftest import message
from tests.fakes import FakeLLM, StreamingLLM


@pytest.fixture
async def site(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[ApiSite]:
    async for s in api_site(tmp_path, llm):
        await s.say("hello", tenant="T1", user="U1", user_name="Ada")
        yield s


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["type"] == f"urn:chorus:problem:{code}" and body["title"]
    return dict(body)


# -- keys -------------------------------------------------------------------------------------


async def test_requests_without_a_valid_key_are_refused(site: ApiSite) -> None:
    _problem(await site.client.get(f"{API}/personalities"), 401, "unauthorized")
    for key in ("chorus_nope", "Bearer", "x" * 600):
        response = await site.client.get(f"{API}/personalities", headers=site.auth(key))
        _problem(response, 401, "unauthorized")
    key = await site.key()
    assert (
        await site.client.get(f"{API}/personalities", headers=site.auth(key))
    ).status_code == 200
    await site.app.db.run(lambda s: revoke_key(s, key[:12], actor="test"))
    assert site.app.api_keys is not None
    site.app.api_keys.forget()
    response = await site.client.get(f"{API}/personalities", headers=site.auth(key))
    _problem(response, 401, "unauthorized")


async def test_each_operation_needs_its_scope(site: ApiSite) -> None:
    read = site.auth(await site.key(scopes=["read"]))
    write = site.auth(await site.key(scopes=["write"]))
    sent = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "hi"}, headers=read
    )
    assert "write" in _problem(sent, 403, "insufficient_scope")["detail"]
    _problem(await site.client.get(f"{API}/people/U1", headers=write), 403, "insufficient_scope")
    _problem(await site.client.get(f"{API}/audit", headers=read), 403, "insufficient_scope")
    disabled = await site.client.post(
        f"{API}/personalities/assistant/disable", json={}, headers=write
    )
    _problem(disabled, 403, "insufficient_scope")


# -- messages ---------------------------------------------------------------------------------


async def test_a_message_is_answered_by_the_dispatcher_with_the_context_used(
    site: ApiSite, llm: FakeLLM
) -> None:
    headers = site.auth(await site.key())
    added = await site.client.post(
        f"{API}/people/U1/memories",
        json={"text": "Ada's favourite editor is Helix", "kind": "preference"},
        headers=headers,
    )
    assert added.status_code == 201, added.text
    llm.enqueue("Helix, of course.")
    response = await site.client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "which editor do I like best?"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "answer" and body["text"].startswith("Helix, of course.")
    assert body["speaker"]["name"] and body["notices"] == []
    context = body["context"]
    assert [m["text"] for m in context["memories"]] == ["Ada's favourite editor is Helix"]
    assert context["personal"] is True and context["provider"] == "fake"
    assert context["sections"] and context["route_reason"] == "default"
    # The model was given the memory; the answer is on record like any other.
    assert "Helix" in llm.history[-1][0].content
    row = await site.app.db.run(lambda s: s.get(Interaction, _uuid(body["interaction_id"])))
    assert row is not None and row.request_text == "which editor do I like best?"


def _uuid(text: str) -> Any:
    import uuid

    return uuid.UUID(text)


async def test_a_personality_is_asked_by_name_and_an_unknown_one_is_said(
    site: ApiSite, llm: FakeLLM
) -> None:
    headers = site.auth(await site.key())
    llm.enqueue("Numbers!")
    asked = await site.client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "sales?", "personality": "data_analyst"},
        headers=headers,
    )
    assert asked.json()["speaker"]["name"] == "data_analyst"
    assert asked.json()["context"]["route_reason"] == "explicit"
    unknown = await site.client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "hi", "personality": "no_such_one"},
        headers=headers,
    )
    assert unknown.status_code == 200
    assert unknown.json()["interaction_id"] is None and "no_such_one" in unknown.json()["text"]


async def test_a_retried_message_is_answered_once(site: ApiSite, llm: FakeLLM) -> None:
    headers = site.auth(await site.key())
    sent = {"user": "U1", "text": "hello there", "idempotency_key": "req-42"}
    first = await site.client.post(f"{API}/messages", json=sent, headers=headers)
    assert first.status_code == 200
    again = await site.client.post(f"{API}/messages", json=sent, headers=headers)
    assert again.status_code == 200, again.text  # the answer on record, not a second one
    replayed, answered = again.json(), first.json()
    for field in ("interaction_id", "text", "kind", "speaker"):
        assert replayed[field] == answered[field], field
    assert replayed["context"]["route_reason"] == answered["context"]["route_reason"]
    streamed = await site.client.post(f"{API}/messages?stream=true", json=sent, headers=headers)
    assert _events(streamed.text)[-1] == ("answer", replayed)
    assert len(llm.history) == 2  # the chat's hello, and this one once
    tenants = await site.app.db.run(
        lambda s: s.exec(select(Tenant.platform, Tenant.external_id)).all()
    )
    assert ("api", "T1") not in tenants  # journaled in the key's workspace, not a new one
    other = await site.client.post(
        f"{API}/messages",
        json={**sent, "text": "hello again"},
        headers=site.auth(await site.key("T2")),
    )
    assert other.json()["interaction_id"] != answered["interaction_id"]  # a key per workspace
    assert len(llm.history) == 3


async def test_a_retry_while_its_message_is_being_answered_waits(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    tenant_id = await site.tenant_id("T1")
    elsewhere = Inbox(site.app.db, lease_s=60, worker="another-worker")  # alive
    assert (
        await elsewhere.admit(JOURNAL, f"{tenant_id}:req-7", "message", {}, tenant_id=tenant_id)
        == "new"
    )
    sent = {"user": "U1", "text": "hello there", "idempotency_key": "req-7"}
    busy = await site.client.post(f"{API}/messages", json=sent, headers=headers)
    _problem(busy, 409, "message_in_progress")
    assert busy.headers["retry-after"] == "1"


async def test_a_retry_gets_the_answer_before_it_is_off_the_journal(
    site: ApiSite, llm: FakeLLM
) -> None:
    headers = site.auth(await site.key())
    tenant_id = await site.tenant_id("T1")
    sent = {"user": "U1", "text": "hello there", "idempotency_key": "req-8"}
    first = await site.client.post(f"{API}/messages", json=sent, headers=headers)
    await site.app.inbox.aclose()  # off the journal; then on it again, as if not yet taken off
    elsewhere = Inbox(site.app.db, lease_s=60, worker="another-worker")
    assert (
        await elsewhere.admit(JOURNAL, f"{tenant_id}:req-8", "message", {}, tenant_id=tenant_id)
        == "new"
    )
    for path in ("/messages", "/messages?stream=true"):
        again = await site.client.post(f"{API}{path}", json=sent, headers=headers)
        assert again.status_code == 200, again.text
        got = again.json() if "stream" not in path else _events(again.text)[-1][1]
        assert got["interaction_id"] == first.json()["interaction_id"]
    assert len(llm.history) == 2


async def test_a_message_a_dead_worker_left_is_answered_by_the_retry(
    site: ApiSite, llm: FakeLLM
) -> None:
    headers = site.auth(await site.key())
    tenant_id = await site.tenant_id("T1")
    dead = Inbox(site.app.db, lease_s=-1, worker="dead-worker")  # its lease ran out
    assert (
        await dead.admit(JOURNAL, f"{tenant_id}:req-9", "message", {}, tenant_id=tenant_id) == "new"
    )
    # It had seen the message (the dispatcher's dedupe), and died before answering.
    assert await first_sight(site.app.redis, "message:test:T1:api:req-9", 3600)
    sent = {"user": "U1", "text": "hello there", "idempotency_key": "req-9"}
    retried = await site.client.post(f"{API}/messages", json=sent, headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["interaction_id"] is not None and len(llm.history) == 2
    await site.app.inbox.aclose()  # waits for the journal's work in the background
    left = await site.app.db.run(lambda s: s.exec(select(InboundEvent)).all())
    assert left == []  # off the journal once answered


async def test_a_message_a_dead_worker_left_is_answered_for_the_retry(
    site: ApiSite, llm: FakeLLM
) -> None:
    """Nobody retried yet: the worker that takes it over answers and records it; the retry
    then gets that answer."""
    headers = site.auth(await site.key())
    sent = {"user": "U1", "text": "hello there", "idempotency_key": "req-11"}
    msg = message("hello there", tenant="T1", user="U1", event_id="api:req-11")
    tenant_id = await site.tenant_id("T1")
    pending = Pending(JOURNAL, "key", "message", msg.to_json(), None, 2, tenant_id)
    await ApiAdapter(site.app)._recover(pending)
    assert len(llm.history) == 2
    retried = await site.client.post(f"{API}/messages", json=sent, headers=headers)
    assert retried.status_code == 200, retried.text
    assert retried.json()["interaction_id"] is not None and len(llm.history) == 2


async def test_a_chat_command_is_answered_as_in_chat(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    response = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "help"}, headers=headers
    )
    body = response.json()
    assert body["interaction_id"] is None and body["context"] is None and body["text"]


async def test_sessions_keep_their_own_history(site: ApiSite, llm: FakeLLM) -> None:
    headers = site.auth(await site.key())
    started = await site.client.post(f"{API}/sessions", json={}, headers=headers)
    assert started.status_code == 201, started.text
    session = started.json()
    for text in ("my project is Apollo", "what is my project?"):
        answer = await site.client.post(
            f"{API}/messages",
            json={"user": "U1", "text": text, "session_id": session["id"]},
            headers=headers,
        )
        assert answer.json()["session_id"] == session["id"]
    contents = [m.content for m in llm.history[-1]]
    assert any("my project is Apollo" in c for c in contents[1:-1])  # the session's history
    other = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "and now?"}, headers=headers
    )
    assert other.json()["session_id"] is None
    assert not any("Apollo" in m.content for m in llm.history[-1][1:])
    listed = await site.client.get(f"{API}/sessions", headers=headers)
    assert session["id"] in [s["id"] for s in listed.json()["sessions"]]
    unknown = await site.client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "hi", "session_id": "00000000-0000-0000-0000-000000000001"},
        headers=headers,
    )
    _problem(unknown, 404, "unknown_session")


def _events(text: str) -> list[tuple[str, Any]]:
    found = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


@pytest.mark.parametrize("how", ["accept", "query"])
async def test_an_answer_streams_as_server_sent_events(tmp_path: Path, how: str) -> None:
    llm = StreamingLLM()
    async for site in api_site(tmp_path, llm):
        headers = site.auth(await site.key())
        llm.enqueue("one two three four")
        url, extra = f"{API}/messages", {}
        if how == "accept":
            extra = {"Accept": "text/event-stream"}
        else:
            url += "?stream=true"
        response = await site.client.post(
            url, json={"user": "U1", "text": "count"}, headers={**headers, **extra}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.text)
        deltas = [data["text"] for name, data in events if name == "delta"]
        assert len(deltas) > 1 and "".join(deltas) == "one two three four"
        name, answer = events[-1]
        assert name == "answer" and answer["text"].startswith("one two three four")
        assert answer["interaction_id"] and answer["context"]["sections"]


async def test_a_notice_streams_as_a_message_event(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    response = await site.client.post(
        f"{API}/messages?stream=true", json={"user": "U1", "text": "help"}, headers=headers
    )
    events = _events(response.text)
    assert [n for n, _ in events] == ["message", "answer"]
    assert events[0][1]["kind"] == "notice" and events[1][1]["interaction_id"] is None


# -- personalities ----------------------------------------------------------------------------


async def test_personalities_enabled_disabled_and_bound_with_an_audit_entry(
    site: ApiSite, llm: FakeLLM
) -> None:
    headers = site.auth(await site.key(scopes=["read", "write", "admin"]))
    listed = (await site.client.get(f"{API}/personalities", headers=headers)).json()
    analyst = next(p for p in listed["personalities"] if p["name"] == "data_analyst")
    assert analyst["enabled"] is True and analyst["plugin"]

    off = await site.client.post(
        f"{API}/personalities/data_analyst/disable", json={}, headers=headers
    )
    assert off.json()["enabled"] is False and "data_analyst" in off.json()["personalities"]
    refused = await site.client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "sales?", "personality": "data_analyst"},
        headers=headers,
    )
    assert refused.json()["interaction_id"] is None  # told it is not available here
    await site.client.post(f"{API}/personalities/data_analyst/enable", json={}, headers=headers)

    bound = await site.client.post(
        f"{API}/personalities/data_analyst/bind", json={"channel": "C9"}, headers=headers
    )
    assert bound.json() == {"channel": "C9", "personality": "data_analyst", "before": None}
    answer = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "hi", "channel": "C9"}, headers=headers
    )
    assert answer.json()["speaker"]["name"] == "data_analyst"
    assert answer.json()["context"]["route_reason"] == "channel"
    listed = (await site.client.get(f"{API}/personalities", headers=headers)).json()
    analyst = next(p for p in listed["personalities"] if p["name"] == "data_analyst")
    assert analyst["bound_channels"] == ["C9"]
    unbound = await site.client.delete(f"{API}/bindings/C9", headers=headers)
    assert unbound.json()["before"] == "data_analyst"

    entries = await site.app.db.run(lambda s: list(s.exec(select(AuditEntry))))
    actions = [e.action for e in entries if e.actor.startswith("api-key:")]
    assert actions.count("plugin.disable") == 1 and "channel.bind" in actions
    _problem(
        await site.client.post(f"{API}/personalities/nobody_here/enable", json={}, headers=headers),
        404,
        "unknown_personality",
    )


# -- people -----------------------------------------------------------------------------------


async def test_a_persons_profile_and_preferences_read_and_changed(
    site: ApiSite, llm: FakeLLM
) -> None:
    headers = site.auth(await site.key())
    patched = await site.client.patch(
        f"{API}/people/U1/profile",
        json={"timezone": "Europe/Lisbon", "role": "engineer"},
        headers=headers,
    )
    assert patched.json()["timezone"] == "Europe/Lisbon"
    patched = await site.client.patch(
        f"{API}/people/U1/profile", json={"role": None}, headers=headers
    )
    assert "role" not in patched.json()
    prefs = await site.client.patch(
        f"{API}/people/U1/preferences",
        json={"personality": "data_analyst", "style": {"length": "short"}},
        headers=headers,
    )
    assert prefs.json() == {"personality": "data_analyst", "style": {"length": "short"}}
    person = (await site.client.get(f"{API}/people/U1", headers=headers)).json()
    assert person["profile"]["timezone"] == "Europe/Lisbon"
    assert person["preferences"]["style"] == {"length": "short"}
    # The dispatcher answers with them.
    answer = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "hello"}, headers=headers
    )
    assert answer.json()["speaker"]["name"] == "data_analyst"
    assert answer.json()["context"]["style"]["length"] == "short"
    wrong = await site.client.patch(
        f"{API}/people/U1/preferences", json={"style": {"length": "huge"}}, headers=headers
    )
    _problem(wrong, 422, "invalid_request")
    _problem(await site.client.get(f"{API}/people/NOBODY", headers=headers), 404, "unknown_person")


async def test_memories_added_searched_and_deleted(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    for text in ("Ada lives in Lisbon", "Ada's team ships on Thursdays"):
        added = await site.client.post(
            f"{API}/people/U1/memories", json={"text": text}, headers=headers
        )
        assert added.status_code == 201
    listed = (await site.client.get(f"{API}/people/U1/memories", headers=headers)).json()
    assert len(listed["memories"]) == 2
    found = await site.client.get(
        f"{API}/people/U1/memories", params={"q": "where does Ada live?"}, headers=headers
    )
    best = found.json()["memories"][0]
    assert best["text"] == "Ada lives in Lisbon" and best["score"] > 0
    gone = await site.client.delete(f"{API}/people/U1/memories/{best['id']}", headers=headers)
    assert gone.status_code == 204
    again = await site.client.delete(f"{API}/people/U1/memories/{best['id']}", headers=headers)
    _problem(again, 404, "unknown_memory")
    listed = (await site.client.get(f"{API}/people/U1/memories", headers=headers)).json()
    assert [m["text"] for m in listed["memories"]] == ["Ada's team ships on Thursdays"]


async def test_a_person_exported_and_erased(site: ApiSite) -> None:
    admin = site.auth(await site.key(scopes=["read", "write", "admin"]))
    await site.client.post(
        f"{API}/people/U1/memories", json={"text": "Ada likes tea"}, headers=admin
    )
    exported = (await site.client.get(f"{API}/people/U1/export", headers=admin)).json()
    assert exported["user"]["id"] == "U1"
    assert any("Ada likes tea" in json.dumps(v) for v in exported.values())
    erased = await site.client.delete(f"{API}/people/U1", headers=admin)
    assert erased.status_code == 200 and erased.json()["user"] == "U1"
    _problem(await site.client.get(f"{API}/people/U1", headers=admin), 404, "unknown_person")
    entries = await site.app.db.run(lambda s: list(s.exec(select(AuditEntry))))
    assert [e.target for e in entries if e.action == "api.erase_person"] == ["test:U1"]


# -- feedback, stats, audit -------------------------------------------------------------------


async def test_an_answer_rated_counts_in_the_stats(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    answer = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "a question"}, headers=headers
    )
    iid = answer.json()["interaction_id"]
    rated = await site.client.post(
        f"{API}/feedback", json={"interaction_id": iid, "rating": 1}, headers=headers
    )
    assert rated.json() == {"interaction_id": iid, "user": "U1", "rating": 1}
    stats = (await site.client.get(f"{API}/stats", headers=headers)).json()
    assert stats["overall"]["positive"] == 1 and stats["overall"]["satisfaction"] == 1.0
    changed = await site.client.post(
        f"{API}/feedback", json={"interaction_id": iid, "rating": -1}, headers=headers
    )
    assert changed.json()["rating"] == -1
    back = await site.client.post(
        f"{API}/feedback", json={"interaction_id": iid, "rating": 0}, headers=headers
    )
    assert back.json()["rating"] == 0
    unknown = await site.client.post(
        f"{API}/feedback",
        json={"interaction_id": "00000000-0000-0000-0000-000000000002", "rating": 1},
        headers=headers,
    )
    _problem(unknown, 404, "unknown_interaction")


async def test_the_audit_log_pages_without_personal_detail(site: ApiSite) -> None:
    headers = site.auth(await site.key(scopes=["read", "admin"]))
    await site.client.post(f"{API}/personalities/assistant/disable", json={}, headers=headers)
    page = (await site.client.get(f"{API}/audit", headers=headers)).json()
    actions = [e["action"] for e in page["entries"]]
    assert "plugin.disable" in actions and "api_key.create" in actions
    assert page["page"] == 1 and page["more"] is False


# -- problems ---------------------------------------------------------------------------------


async def test_bad_requests_are_problem_documents(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    missing = await site.client.post(f"{API}/messages", json={"user": "U1"}, headers=headers)
    body = _problem(missing, 422, "invalid_request")
    assert body["errors"][0]["location"] == ["body", "text"]
    broken = await site.client.post(
        f"{API}/messages",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    _problem(broken, 400, "malformed_body")
    _problem(await site.client.get(f"{API}/nowhere", headers=headers), 404, "not_found")
    _problem(await site.client.put(f"{API}/stats", headers=headers), 405, "method_not_allowed")
    extra = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "x", "admin": True}, headers=headers
    )
    _problem(extra, 422, "invalid_request")


async def test_a_process_shutting_down_refuses_new_messages(site: ApiSite) -> None:
    headers = site.auth(await site.key())
    adapter = next(a for a in site.web.adapters if a.platform == "api")
    await adapter.aclose()
    response = await site.client.post(
        f"{API}/messages", json={"user": "U1", "text": "hi"}, headers=headers
    )
    _problem(response, 503, "shutting_down")
    assert (await site.client.get(f"{API}/personalities", headers=headers)).status_code == 200


def test_every_problem_code_is_documented() -> None:
    from adapters.api.problems import CODES

    guide = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    for code, (status, _) in CODES.items():
        assert f"| `{code}` | {status} |" in guide, code


async def test_an_agent_made_from_a_personality_answers_in_its_workspace_only(
    site: ApiSite, llm: FakeLLM
) -> None:
    admin = site.auth(await site.key(scopes=["read", "write", "admin"]))
    made = await site.client.post(
        f"{API}/personalities",
        json={
            "name": "acme_analyst",
            "base": "data_analyst",
            "display_name": "Acme Analyst",
            "instructions": "Always quote figures in euros.",
            "style": {"length": "short"},
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["base"] == "data_analyst" and made.json()["display_name"] == "Acme Analyst"
    listed = (await site.client.get(f"{API}/personalities", headers=admin)).json()
    assert "acme_analyst" in [p["name"] for p in listed["personalities"]]

    answer = await site.client.post(
        f"{API}/messages",
        json={"user": "U1", "text": "revenue?", "personality": "acme_analyst"},
        headers=admin,
    )
    assert answer.json()["speaker"]["display_name"] == "Acme Analyst"
    system = llm.history[-1][0].content
    assert "Always quote figures in euros." in system
    assert site.app.pm.registry.get("data_analyst").persona.split("\n")[0] in system
    # Bound to a channel like any personality; the same name again is refused.
    bound = await site.client.post(
        f"{API}/personalities/acme_analyst/bind", json={"channel": "C7"}, headers=admin
    )
    assert bound.status_code == 200
    again = await site.client.post(
        f"{API}/personalities", json={"name": "acme_analyst", "base": "assistant"}, headers=admin
    )
    _problem(again, 409, "name_taken")
    installed = await site.client.post(
        f"{API}/personalities", json={"name": "assistant", "base": "assistant"}, headers=admin
    )
    _problem(installed, 409, "name_taken")

    # Another workspace neither lists nor reaches it.
    await site.say("hi", tenant="T2", user="U5")
    other = site.auth(await site.key("T2", scopes=["read", "write", "admin"]))
    listed = (await site.client.get(f"{API}/personalities", headers=other)).json()
    assert "acme_analyst" not in [p["name"] for p in listed["personalities"]]
    asked = await site.client.post(
        f"{API}/messages",
        json={"user": "U5", "text": "revenue?", "personality": "acme_analyst"},
        headers=other,
    )
    assert asked.json()["interaction_id"] is None
    _problem(
        await site.client.delete(f"{API}/personalities/acme_analyst", headers=other),
        404,
        "unknown_personality",
    )
    assert (
        await site.client.delete(f"{API}/personalities/acme_analyst", headers=admin)
    ).status_code == 204


async def test_the_same_rate_limit_as_in_chat(tmp_path: Path, llm: FakeLLM) -> None:
    async for site in api_site(tmp_path, llm, dispatcher={"rate_limit_per_minute": 2}):
        await site.say("hello", tenant="T1", user="U1")
        headers = site.auth(await site.key())
        sent = [
            (
                await site.client.post(
                    f"{API}/messages", json={"user": "U1", "text": f"q{i}"}, headers=headers
                )
            ).json()
            for i in range(2)
        ]
        assert sent[0]["interaction_id"] is not None  # the chat's hello was the first
        assert sent[1]["interaction_id"] is None and sent[1]["kind"] in ("notice", "error")
