"""The admin page through its HTTP interface (the HTTP server's ASGI app, a client that keeps
cookies like a browser): logging in with a link or an admin API key, sessions, CSRF, each
page, the forms' effects, and that an admin sees and changes only their own workspace.

The same pages in a real browser: tests/test_admin_browser.py.
"""

from __future__ import annotations

import base64
import html
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import itsdangerous
import pytest
from sqlalchemy.engine import make_url
from sqlmodel import select

from adapters.admin import COOKIE
from bot.audit import audit
from bot.bindings import channel_bindings
from bot.events import utcnow
from bot.storage.models import AuditEntry, Memory, ProactiveTaskRecord, User
from tests.admin_helpers import BASE, AdminSite, admin_site, csrf_of, link_in
from tests.conftest import empty_postgres
from tests.fakes import FakeLLM
from tests.servers.tcp_proxy import proxy_to


@pytest.fixture
async def site(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[AdminSite]:
    async for s in admin_site(tmp_path, llm):
        await s.say("hello", tenant="T1", user="U1", user_name="Ada")
        await s.say("hello", tenant="T2", user="U9", user_name="Zed")
        yield s


async def _audit(site: AdminSite, tenant: str = "T1") -> list[AuditEntry]:
    tenant_id = await site.tenant_id(tenant)
    return await site.app.db.run(
        lambda s: list(
            s.exec(
                select(AuditEntry)
                .where(AuditEntry.tenant_id == tenant_id)
                .order_by(AuditEntry.created_at)
            )
        )
    )


# -- logging in -----------------------------------------------------------------------------


async def test_pages_send_whoever_is_not_logged_in_to_the_login_page(site: AdminSite) -> None:
    for path in ("/", "/stats", "/stats/chart.png", "/people", "/jobs", "/audit"):
        response = await site.client.get(f"{BASE}/admin{path}")
        assert response.url.path == "/admin/login", path
        assert "/chorus admin" in response.text


async def test_a_link_logs_in_once_and_only_when_the_admin_continues(site: AdminSite) -> None:
    answer = await site.command("admin", tenant="T1", user="UBOSS", is_admin=True)
    link = link_in(answer)
    # Opening it (as a chat app's link preview would) spends nothing.
    for _ in range(2):
        page = await site.client.get(link)
        assert page.status_code == 200 and "Continue to the admin page" in page.text
    home = await site.client.post(link, data={"csrf": csrf_of(page.text)})
    assert home.url.path == "/admin/" and "Plugins in the whole workspace" in home.text
    assert "test:UBOSS" in home.text
    [entry] = [e for e in await _audit(site) if e.action == "admin.login"]
    assert entry.actor == "test:UBOSS" and entry.detail == {"via": "link"}

    # Used: the second try, even from a fresh browser, is refused.
    site.client.cookies.clear()
    page = await site.client.get(link)
    again = await site.client.post(link, data={"csrf": csrf_of(page.text)})
    assert again.url.path == "/admin/login" and "has been used or has expired" in again.text
    assert (await site.client.get(f"{BASE}/admin/people")).url.path == "/admin/login"


async def test_a_made_up_link_logs_nobody_in(site: AdminSite) -> None:
    link = f"{BASE}/admin/link/{'x' * 43}"
    page = await site.client.get(link)
    response = await site.client.post(link, data={"csrf": csrf_of(page.text)})
    assert "has been used or has expired" in response.text
    assert (await site.client.get(f"{BASE}/admin/")).url.path == "/admin/login"


async def test_only_admin_keys_log_in(site: AdminSite) -> None:
    tenant_id = await site.tenant_id("T1")
    site.keys["read-key"] = (tenant_id, {"read", "write"})
    site.keys["admin-key-0123456789"] = (tenant_id, {"read", "admin"})
    login = await site.client.get(f"{BASE}/admin/login")
    assert 'name="key"' in login.text
    for key in ("read-key", "no-such-key", ""):
        refused = await site.client.post(
            f"{BASE}/admin/login", data={"csrf": csrf_of(login.text), "key": key}
        )
        assert "not an admin API key" in refused.text
        assert (await site.client.get(f"{BASE}/admin/")).url.path == "/admin/login"
    home = await site.client.post(
        f"{BASE}/admin/login", data={"csrf": csrf_of(login.text), "key": "admin-key-0123456789"}
    )
    assert home.url.path == "/admin/" and "Plugins in the whole workspace" in home.text
    [entry] = [e for e in await _audit(site) if e.action == "admin.login"]
    assert entry.actor.startswith("api-key:") and entry.detail == {"via": "key"}
    assert "admin-key-0123456789" not in entry.actor
    assert "admin-key" not in str(site.client.cookies.get(COOKIE))


async def test_without_api_keys_the_login_page_offers_links_only(site: AdminSite) -> None:
    site.app.verify_api_key = None
    login = await site.client.get(f"{BASE}/admin/login")
    assert 'name="key"' not in login.text and "/chorus admin" in login.text
    token = csrf_of((await site.client.get(f"{BASE}/admin/link/x")).text)  # a form's token
    response = await site.client.post(
        f"{BASE}/admin/login", data={"csrf": token, "key": "anything"}
    )
    assert "takes no API keys" in response.text


async def test_log_out(site: AdminSite) -> None:
    home = await site.log_in()
    out = await site.client.post(f"{BASE}/admin/logout", data={"csrf": csrf_of(home.text)})
    assert out.url.path == "/admin/login" and "You are logged out" in out.text
    assert (await site.client.get(f"{BASE}/admin/stats")).url.path == "/admin/login"


# -- sessions and CSRF -------------------------------------------------------------------------


async def test_the_session_cookie_is_httponly_lax_and_signed(site: AdminSite) -> None:
    await site.log_in()
    home = await site.client.get(f"{BASE}/admin/login")  # logged in: sent home
    assert home.url.path == "/admin/"
    response = await site.client.post(
        f"{BASE}/admin/plugins",
        data={"csrf": csrf_of(home.text), "plugin": "data_analyst", "state": "off"},
        follow_redirects=False,
    )
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower() and "path=/admin" in cookie.lower()
    assert "secure" not in cookie.lower()  # http.public_url is http:// here

    # A cookie changed by hand (another workspace's id put in) is not a login.
    value = str(site.client.cookies.get(COOKIE))
    payload, _, _ = value.partition(".")
    data = json.loads(base64.b64decode(payload))
    data["tenant_id"] = str(await site.tenant_id("T2"))
    forged = base64.b64encode(json.dumps(data).encode()).decode() + value[len(payload) :]
    site.use_cookie(forged)
    assert (await site.client.get(f"{BASE}/admin/people")).url.path == "/admin/login"


def _signed(secret: str, data: dict[str, object]) -> str:
    """A session cookie as the page signs it (Starlette's SessionMiddleware)."""
    raw = base64.b64encode(json.dumps(data).encode())
    return itsdangerous.TimestampSigner(secret).sign(raw).decode()


async def test_a_login_ends_after_admin_session_hours(site: AdminSite) -> None:
    tenant_id = await site.tenant_id("T1")
    session = {"tenant_id": str(tenant_id), "actor": "test:UBOSS", "via": "link", "csrf": "t"}
    ongoing = _signed("test-secret", {**session, "until": time.time() + 3600})
    site.use_cookie(ongoing)
    assert (await site.client.get(f"{BASE}/admin/people")).url.path == "/admin/people"
    ended = _signed("test-secret", {**session, "until": time.time() - 1})
    site.use_cookie(ended)
    response = await site.client.get(f"{BASE}/admin/people")
    assert response.url.path == "/admin/login" and "Your login has ended" in response.text
    # Signed with another secret (another process without CHORUS_ADMIN_SECRET): nobody.
    other = _signed("another-secret", {**session, "until": time.time() + 3600})
    site.use_cookie(other)
    assert (await site.client.get(f"{BASE}/admin/people")).url.path == "/admin/login"


async def test_forms_without_this_sessions_token_change_nothing(site: AdminSite) -> None:
    tenant_id = await site.tenant_id("T1")
    await site.log_in()
    for data in (
        {"plugin": "data_analyst", "state": "off"},
        {"plugin": "data_analyst", "state": "off", "csrf": ""},
        {"plugin": "data_analyst", "state": "off", "csrf": "a-token-of-another-session"},
    ):
        response = await site.client.post(f"{BASE}/admin/plugins", data=data)
        assert response.status_code == 403 and "nothing was changed" in response.text
    bind = await site.client.post(
        f"{BASE}/admin/bindings", data={"channel": "C1", "personality": "data_analyst"}
    )
    assert bind.status_code == 403
    assert "data_analyst" in await site.app.state.enabled(tenant_id)
    assert await site.app.db.run(lambda s: channel_bindings(s, tenant_id)) == {}
    assert not [e for e in await _audit(site) if e.action.startswith(("plugin.", "channel."))]


async def test_pages_are_not_framed_cached_or_referred(site: AdminSite) -> None:
    page = await site.client.get(f"{BASE}/admin/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]  # none at all
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"


# -- personalities and plugins -----------------------------------------------------------------


async def test_enabling_and_disabling_a_plugin_is_audited(site: AdminSite) -> None:
    tenant_id = await site.tenant_id("T1")
    await site.log_in()
    off = await site.post("/plugins", plugin="data_analyst", state="off", channel="")
    assert "data_analyst is now disabled in the whole workspace" in off.text
    assert "data_analyst" not in await site.app.state.enabled(tenant_id)
    on = await site.post("/plugins", plugin="data_analyst", state="on", channel="#sales")
    assert "data_analyst is now enabled in #sales" in on.text
    assert "data_analyst" in await site.app.state.enabled(tenant_id, "sales")
    assert "data_analyst" not in await site.app.state.enabled(tenant_id, "other")
    switched = [
        (e.action, e.actor, e.target, e.detail)
        for e in await _audit(site)
        if e.action.startswith("plugin.")
    ]
    assert switched == [
        ("plugin.disable", "test:UBOSS (admin page)", "data_analyst", {"channel": ""}),
        ("plugin.enable", "test:UBOSS (admin page)", "data_analyst", {"channel": "sales"}),
    ]
    # The channels are listed with what is on in each and their own settings.
    sales = on.text.split('id="channel-sales"', 1)[1].split("</tr>", 1)[0]
    c1 = on.text.split('id="channel-C1"', 1)[1].split("</tr>", 1)[0]
    assert "data_analyst</code> on" in sales and "data_analyst" in sales.split("<td>")[3]
    assert "data_analyst" not in c1


async def test_an_unknown_plugin_is_refused_clearly(site: AdminSite) -> None:
    await site.log_in()
    response = await site.post("/plugins", plugin="nope", state="on", channel="")
    assert "There is no plugin called `nope`" in response.text
    too_long = await site.post("/plugins", plugin="data_analyst", state="on", channel="c" * 129)
    assert "at most 128 characters" in too_long.text


async def test_binding_and_unbinding_a_channel(site: AdminSite) -> None:
    tenant_id = await site.tenant_id("T1")
    await site.log_in()
    bound = await site.post("/bindings", channel="#C1", personality="data_analyst")
    assert "data_analyst now answers in #C1" in bound.text
    assert await site.app.db.run(lambda s: channel_bindings(s, tenant_id)) == {"C1": "data_analyst"}
    # The dispatcher routes the channel's messages to it at once (its cache was told).
    await site.say("what were sales last week?", tenant="T1", user="U1", channel="C1")
    assert "Data Analyst" in site.app.llm.history[-1][0].content  # type: ignore[attr-defined]
    unbound = await site.post("/bindings", channel="C1", personality="")
    assert "#C1 has no personality of its own any more" in unbound.text
    assert await site.app.db.run(lambda s: channel_bindings(s, tenant_id)) == {}
    actions = [e.action for e in await _audit(site) if e.action.startswith("channel.")]
    assert actions == ["channel.bind", "channel.unbind"]
    refused = await site.post("/bindings", channel="C1", personality="nobody")
    assert "I don't know a personality called `nobody`" in html.unescape(refused.text)
    assert (await site.post("/bindings", channel="", personality="assistant")).text.count(
        "Name the channel to bind"
    )


# -- what an admin sees, and only of their workspace ------------------------------------------


async def test_an_admin_sees_and_changes_only_their_workspace(site: AdminSite) -> None:
    t2 = await site.tenant_id("T2")
    await site.app.db.run(
        lambda s: audit(s, tenant_id=t2, actor="test:U9", action="t2.secret-action")
    )
    await site.log_in("T1")
    people = await site.client.get(f"{BASE}/admin/people")
    assert "Ada" in people.text and "<code>U1</code>" in people.text
    assert "Zed" not in people.text and "<code>U9</code>" not in people.text
    log = await site.client.get(f"{BASE}/admin/audit")
    assert "admin.login" in log.text and "t2.secret-action" not in log.text
    await site.post("/plugins", plugin="data_analyst", state="off", channel="")
    assert "data_analyst" in await site.app.state.enabled(t2)
    assert not [e for e in await _audit(site, "T2") if e.action.startswith("plugin.")]


async def test_people_shows_counts_never_what_is_remembered(site: AdminSite) -> None:
    t1 = await site.tenant_id("T1")
    [ada] = await site.app.db.run(
        lambda s: list(s.exec(select(User.id).where(User.external_id == "U1")))
    )
    text = "I am secretly planning project Falcon"
    await site.app.db.run(lambda s: s.add(Memory(tenant_id=t1, user_id=ada, text=text)))
    await site.log_in()
    page = await site.client.get(f"{BASE}/admin/people")
    assert "Falcon" not in page.text and "secretly" not in page.text
    row = page.text.split("<code>U1</code>", 1)[1].split("</tr>", 1)[0]
    assert '<td class="n">1</td>' in row  # one memory


async def test_stats_page_and_its_chart(site: AdminSite) -> None:
    await site.log_in()
    page = await site.client.get(f"{BASE}/admin/stats")
    assert page.status_code == 200 and 'id="stats"' in page.text
    assert "<code>assistant</code>" in page.text  # Ada's hello was answered by it
    assert 'src="/admin/stats/chart.png"' in page.text
    chart = await site.client.get(f"{BASE}/admin/stats/chart.png")
    assert chart.headers["content-type"] == "image/png"
    assert chart.content.startswith(b"\x89PNG\r\n\x1a\n")


async def test_jobs_show_tasks_without_what_people_asked(site: AdminSite) -> None:
    t1 = await site.tenant_id("T1")
    [ada] = await site.app.db.run(
        lambda s: list(s.exec(select(User.id).where(User.external_id == "U1")))
    )
    when = utcnow() + timedelta(days=1)

    def tasks(s: object) -> None:
        for source, key, text in (
            ("pattern", "p:1", "the weekly numbers for the Zebra account"),
            ("plugin", "plugin:x", "Plan next week's content"),
        ):
            s.add(  # type: ignore[attr-defined]
                ProactiveTaskRecord(
                    tenant_id=t1,
                    user_id=ada,
                    key=key,
                    source=source,
                    personality="assistant",
                    request=text,
                    description=text,
                    why=f"because of {text}",
                    schedule="0 9 * * 1",
                    next_run_at=when,
                )
            )

    await site.app.db.run(tasks)
    await site.log_in()
    page = await site.client.get(f"{BASE}/admin/jobs")
    assert "Plan next week's content" in html.unescape(page.text)
    assert "Zebra" not in page.text and "a habit of theirs" in page.text
    assert page.text.count("Ada (test:U1)") == 2


async def test_the_audit_log_leaves_out_what_people_wrote(site: AdminSite) -> None:
    t1 = await site.tenant_id("T1")

    def entries(s: object) -> None:
        audit(
            s,  # type: ignore[arg-type]
            tenant_id=t1,
            actor="test:U1",
            action="tool_call",
            target="sql_query",
            detail={"outcome": "ok", "arguments": {"query": "salaries of the Owl team"}},
        )
        audit(
            s,  # type: ignore[arg-type]
            tenant_id=t1,
            actor="test:U1",
            action="tool_call",
            target="move the Heron launch to Friday",
            detail={"goal": "move the Heron launch to Friday", "outcome": "done", "steps": []},
        )

    await site.app.db.run(entries)
    await site.log_in()
    page = await site.client.get(f"{BASE}/admin/audit")
    assert "sql_query" in page.text and "outcome: ok" in page.text
    assert "Owl" not in page.text and "Heron" not in page.text
    assert "<td>plan</td>" in page.text


async def test_the_audit_log_pages(site: AdminSite) -> None:
    t1 = await site.tenant_id("T1")

    def many(s: object) -> None:
        for i in range(60):
            audit(s, tenant_id=t1, actor="chorus", action=f"test.n{i:02d}")  # type: ignore[arg-type]

    await site.app.db.run(many)
    await site.log_in()
    first = await site.client.get(f"{BASE}/admin/audit")
    assert "Older" in first.text and "Newer" not in first.text
    second = await site.client.get(f"{BASE}/admin/audit?page=2")
    assert "Newer" in second.text and "Older" not in second.text
    assert (await site.client.get(f"{BASE}/admin/audit?page=x")).status_code == 200


async def test_an_unknown_page_is_a_404_page(site: AdminSite) -> None:
    response = await site.client.get(f"{BASE}/admin/nowhere")
    assert response.status_code == 404 and "There is no such page" in response.text


async def test_a_login_for_a_workspace_erased_since_ends(site: AdminSite) -> None:
    session = {"tenant_id": str(uuid.uuid4()), "actor": "x", "via": "key", "csrf": "t"}
    site.use_cookie(_signed("test-secret", {**session, "until": time.time() + 60}))
    assert (await site.client.get(f"{BASE}/admin/")).url.path == "/admin/login"


@pytest.mark.postgres
async def test_every_page_and_form_on_postgresql(tmp_path: Path, llm: FakeLLM, pg_url: str) -> None:
    async for site in admin_site(tmp_path, llm, storage={"database_url": pg_url}):
        try:
            await site.say("hello", tenant="T1", user="U1", user_name="Ada")
            await site.say("hi", tenant="T1", user="U1", channel="general")
            await site.log_in()
            assert (
                "is now disabled"
                in (
                    await site.post(
                        "/plugins", plugin="data_analyst", state="off", channel="general"
                    )
                ).text
            )
            assert (
                "now answers in #C1"
                in (await site.post("/bindings", channel="C1", personality="assistant")).text
            )
            for path in ("/", "/stats", "/stats/chart.png", "/people", "/jobs", "/audit?page=2"):
                response = await site.client.get(f"{BASE}/admin{path}")
                assert response.status_code == 200 and response.url.path != "/admin/login", path
            home = await site.client.get(f"{BASE}/admin/")
            assert 'id="channel-general"' in home.text and 'id="channel-C1"' in home.text
        finally:
            empty_postgres(site.app.db.engine)


async def test_redis_down_spends_no_link(site: AdminSite) -> None:
    link = link_in(await site.command("admin", tenant="T1", user="UBOSS", is_admin=True))
    page = await site.client.get(link)
    site.redis.connected = False
    try:
        response = await site.client.post(link, data={"csrf": csrf_of(page.text)})
        assert response.url.path == "/admin/login" and "not answering just now" in response.text
    finally:
        site.redis.connected = True
    home = await site.client.post(link, data={"csrf": csrf_of(page.text)})
    assert home.url.path == "/admin/"  # the link still works


@pytest.mark.postgres
async def test_a_database_that_stops_answering_gets_a_clear_page(
    tmp_path: Path, llm: FakeLLM, pg_url: str
) -> None:
    url = make_url(pg_url)
    with proxy_to(url.host or "127.0.0.1", url.port or 5432) as proxy:
        through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        storage = {"database_url": through, "connect_timeout_s": 1, "outage_s": 0}
        async for site in admin_site(tmp_path, llm, storage=storage):
            try:
                await site.say("hello", tenant="T1", user="U1")
                await site.log_in()
                proxy.refuse()
                response = await site.client.get(f"{BASE}/admin/people")
                assert response.status_code == 503
                assert "not answering just now" in response.text
                proxy.heal()
                assert (await site.client.get(f"{BASE}/admin/people")).status_code == 200
            finally:
                proxy.heal()
                empty_postgres(site.app.db.engine)


async def test_a_form_that_cannot_be_read_changes_nothing(site: AdminSite) -> None:
    tenant_id = await site.tenant_id("T1")
    await site.log_in()
    fields = {f"f{i}": "x" for i in range(50)}  # more fields than any form of the page has
    response = await site.post("/plugins", plugin="data_analyst", state="off", **fields)
    assert response.status_code == 400 and "could not be read" in response.text
    assert "data_analyst" in await site.app.state.enabled(tenant_id)
