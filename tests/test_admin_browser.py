"""The admin page in a real browser: Debian's Chromium, headless, driven through Selenium and
/usr/bin/chromedriver, against the HTTP server listening on a free port.

An admin asks for a link with ``/chorus admin``, opens it, continues, visits every page and
submits forms (a plugin disabled for the workspace with its row's button, then enabled in one
channel with the channel form); the effect is checked in Chorus itself. Each page is kept as
a screenshot in ``tests/artifacts/admin/`` (not committed) to look at.

Chromium and its driver come from Debian (``apt-get install chromium chromium-driver``, which
``scripts/test`` does); without them this test fails, or is skipped with
``CHORUS_TEST_ALLOW_SKIP=1``.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import fakeredis
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait
from sqlmodel import Session, select

from adapters.web.server import WebServer
from bot.app import Chorus
from bot.events import utcnow
from bot.scheduler.leader import Leadership
from bot.scheduler.loop import ProactiveLoop
from bot.settings import Secrets
from bot.storage.models import ProactiveTaskRecord, Tenant, User
from tests.admin_helpers import link_in
from tests.conftest import make_settings, message, service_missing
from tests.fakes import FakeLLM, FakeTransport
from tests.rating_helpers import ask, rate

ARTIFACTS = Path(__file__).resolve().parent / "artifacts" / "admin"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
WIDTH, HEIGHT = 1280, 900

T = TypeVar("T")


def _chromium(profile: Path) -> WebDriver:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            service_missing(f"{path} not found: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))


class Browser:
    """The blocking WebDriver, called from a worker thread so that the server (in this event
    loop) can answer it."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    async def __call__(self, fn: Callable[[WebDriver], T]) -> T:
        return await asyncio.to_thread(fn, self.driver)

    async def open(self, url: str) -> str:
        """Go to ``url``; the page's text as shown."""
        await self(lambda d: d.get(url))
        return await self(lambda d: d.find_element(By.TAG_NAME, "body").text)

    async def shot(self, name: str) -> Path:
        """The whole page, beyond the window too, in ``ARTIFACTS/NAME.png`` (Chrome DevTools'
        ``Page.captureScreenshot``)."""
        path = ARTIFACTS / f"{name}.png"

        def capture(d: WebDriver) -> bytes:
            size = d.execute_script(
                "return [document.documentElement.scrollWidth,"
                " document.documentElement.scrollHeight]"
            )
            clip = {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            shot = d.execute_cdp_cmd(  # type: ignore[attr-defined]
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True, "clip": clip},
            )
            return base64.b64decode(shot["data"])

        png = await self(capture)
        assert png.startswith(b"\x89PNG")
        path.write_bytes(png)
        return path

    async def follow(self, act: Callable[[WebDriver], object]) -> None:
        """Do ``act`` (a click that loads a page) and wait for the next page."""
        await self(lambda d: _followed(d, act))

    async def text(self) -> str:
        return await self(lambda d: d.find_element(By.TAG_NAME, "body").text)

    async def path(self) -> str:
        return await self(lambda d: d.current_url.split("://", 1)[1].split("/", 1)[1])


@pytest.fixture
async def served(tmp_path: Path, llm: FakeLLM) -> AsyncIterator[tuple[Chorus, Browser]]:
    app = await Chorus.create(
        make_settings(tmp_path),
        Secrets(),
        llm=llm,
        redis=fakeredis.FakeAsyncRedis(decode_responses=True),
    )
    web = WebServer(app)
    await web.start()
    app.web = web
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver = await asyncio.to_thread(_chromium, tmp_path / "chromium-profile")
    try:
        yield app, Browser(driver)
    finally:
        await asyncio.to_thread(driver.quit)
        await web.aclose()
        await app.aclose()


async def test_an_admin_uses_the_admin_page_in_chromium(served: tuple[Chorus, Browser]) -> None:
    app, browser = served
    chat = FakeTransport()
    for user, personality, emoji in (
        ("U1", "assistant", "+1"),
        ("U2", "assistant", "+1"),
        ("U1", "data_analyst", "+1"),
        ("U2", "data_analyst", "-1"),
    ):
        answer_id, _ = await ask(app, chat, "how are sales?", personality=personality, user=user)
        await rate(app, answer_id, emoji, user=user)
    await app.dispatcher.handle_message(message("hi", user="U1", channel="general"), chat)
    await _plant_tasks_and_jobs(app)
    answer = await app.dispatcher.run_command(
        message("admin", user="UBOSS", user_name="Boss", is_admin=True), "admin"
    )
    link = link_in(answer)
    assert app.web is not None and link.startswith(f"{app.web.url}/admin/link/")

    # The link asks to continue; continuing logs in.
    assert "Continue to the admin page" in await browser.open(link)
    await browser.shot("01-link")
    await browser.follow(lambda d: d.find_element(By.ID, "continue").click())
    assert await browser.path() == "admin/"
    home = await browser.text()
    assert "Plugins in the whole workspace" in home and "test:UBOSS" in home
    # The stylesheet applies (the page's policy lets its own stylesheet in).
    background = await browser(
        lambda d: d.find_element(By.TAG_NAME, "body").value_of_css_property("background-color")
    )
    assert background in ("rgba(247, 248, 250, 1)", "rgb(247, 248, 250)")
    await browser.shot("02-personalities-and-plugins")

    # Disable a plugin for the workspace with its row's button…
    await browser.follow(
        lambda d: d.find_element(By.CSS_SELECTOR, "#plugin-data_analyst button").click()
    )
    assert "data_analyst is now disabled in the whole workspace" in await browser.text()
    tenant_id = await app.db.run(
        lambda s: s.exec(select(Tenant.id).where(Tenant.external_id == "T1")).one()
    )
    assert "data_analyst" not in await app.state.enabled(tenant_id)

    # …and enable it in one channel with the channel form.
    def enable_in_general(d: WebDriver) -> None:
        form = d.find_element(By.ID, "switch-form")
        form.find_element(By.NAME, "channel").send_keys("general")
        Select(form.find_element(By.NAME, "plugin")).select_by_value("data_analyst")
        form.find_element(By.CSS_SELECTOR, "input[name=state][value=on]").click()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

    await browser.follow(enable_in_general)
    shown = await browser.text()
    assert "data_analyst is now enabled in #general" in shown
    assert "data_analyst" in await app.state.enabled(tenant_id, "general")
    assert "data_analyst" not in await app.state.enabled(tenant_id, "random")
    row = await browser(lambda d: d.find_element(By.ID, "channel-general").text)
    assert "data_analyst on" in row
    await browser.shot("03-plugin-enabled-in-a-channel")

    stats = await browser(_visit("Stats"))
    assert "Satisfaction and stats" in stats and "data_analyst" in stats
    row = await browser(lambda d: d.find_element(By.XPATH, "//tfoot/tr").text)
    assert row.split()[2:7] == ["5", "3", "1", "75%", "0%"]  # answers, up, down, satisfaction
    width = await browser(
        lambda d: d.find_element(By.CSS_SELECTOR, "figure img").get_property("naturalWidth")
    )
    assert width == 800  # the chart came back as an image
    await browser.shot("04-stats")

    people = await browser(_visit("People"))
    assert "Ada" in people and "Bo" in people
    await browser.shot("05-people")

    jobs = await browser(_visit("Jobs"))
    assert "proactive.tick" in jobs and "a draft content calendar for the week ahead" in jobs
    assert "weekly metrics" not in jobs and "a habit of theirs" in jobs
    await browser.shot("06-jobs")

    log = await browser(_visit("Audit log"))
    assert "plugin.enable" in log and "plugin.disable" in log and "admin.login" in log
    assert "test:UBOSS (admin page)" in log
    await browser.shot("07-audit-log")

    # Logging out ends it: the pages send the browser to the login page.
    await browser.follow(lambda d: d.find_element(By.CSS_SELECTOR, ".logout button").click())
    assert "You are logged out" in await browser.text()
    assert app.web is not None
    await browser.open(f"{app.web.url}/admin/people")
    assert await browser.path() == "admin/login"

    # With API keys (a key check connected, here a plain function), the form takes one.
    keys = {"chorus-admin-key-1234": (tenant_id, ("read", "admin"))}
    app.verify_api_key = keys.get
    await browser.open(f"{app.web.url}/admin/login")
    await browser.shot("08-login")

    def log_in_with_the_key(d: WebDriver) -> None:
        d.find_element(By.NAME, "key").send_keys("chorus-admin-key-1234")
        d.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()

    await browser.follow(log_in_with_the_key)
    assert await browser.path() == "admin/"
    assert "api-key:" in await browser.text()


async def _nothing(*_: object) -> str:
    return "skipped"


async def _plant_tasks_and_jobs(app: Chorus) -> None:
    """Two of Ada's proactive tasks (a habit, a plugin's) and the scheduler's stored jobs."""

    def plant(s: Session) -> None:
        ada = s.exec(select(User).where(User.external_id == "U1")).one()
        for source, key, text in (
            ("pattern", "pattern:metrics", "the weekly metrics summary"),
            (
                "plugin",
                "plugin:content_creator:week",
                "a draft content calendar for the week ahead",
            ),
        ):
            s.add(
                ProactiveTaskRecord(
                    tenant_id=ada.tenant_id,
                    user_id=ada.id,
                    key=key,
                    source=source,
                    personality="content_creator" if source == "plugin" else "data_analyst",
                    request=text,
                    description=text,
                    why="Content Creator offers this." if source == "plugin" else f"You ask {text}",
                    schedule="50 8 * * mon",
                    timezone="Europe/Paris",
                    next_run_at=utcnow() + timedelta(days=2),
                )
            )

    await app.db.run(plant)
    loop = ProactiveLoop(
        app, deliver=_nothing, name="admin-page", leadership=Leadership(app.redis, solo=True)
    )
    await loop.start_scheduler()
    await loop.stop_scheduler()


def _followed(d: WebDriver, act: Callable[[WebDriver], object]) -> None:
    """``act``, then wait until the page it loads replaced this one (bounded: a slow machine
    is not a failure, a page that never comes is)."""
    page = d.find_element(By.TAG_NAME, "html")
    act(d)
    # While the old document is being torn down, ChromeDriver may answer a question about its
    # element with "Node with given id does not belong to the document" (an unknown error, not
    # a stale element): that is the page going too, so ask again.
    WebDriverWait(d, 60, ignored_exceptions=(WebDriverException,)).until(staleness_of(page))
    WebDriverWait(d, 60).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def _visit(link_text: str) -> Callable[[WebDriver], str]:
    """Follow the navigation link ``link_text``; the page's text."""

    def visit(d: WebDriver) -> str:
        _followed(d, lambda d: d.find_element(By.LINK_TEXT, link_text).click())
        return str(d.find_element(By.TAG_NAME, "body").text)

    return visit
