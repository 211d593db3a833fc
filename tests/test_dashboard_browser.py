"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright signs in with the admin token, opens a group of the demo community and checks
that the charts render, with no Content-Security-Policy violation on the console.
Screenshots go to ``artifacts/`` (kept by CI, ignored by git).

Skipped with the reason where no browser is installed, except under ``CI=true``, where
``.ci/run`` installs it and a missing browser is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web

from bot.app import build_service
from bot.demo.build import build_demo
from bot.demo.generator import DemoSize
from config import Settings, load_settings
from tests.conftest import IN_CI, free_port

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ADMIN_TOKEN = "browser-test-admin-token"


def _missing_browser() -> str | None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (as .ci/run does)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed: pip install -e '.[dev]'"
    return None


@pytest.fixture
def browser_or_skip() -> str:
    reason = _missing_browser()
    if reason:
        if IN_CI:
            pytest.fail(f"CI=true but the browser test cannot run: {reason}")
        pytest.skip(reason)
    return CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))


@pytest.fixture
async def demo_server(tmp_path: Path) -> AsyncIterator[str]:
    """``qunpulse serve`` on a demo community whose history ends today."""
    zone = ZoneInfo("Asia/Shanghai")
    database = tmp_path / "demo.db"
    build_demo(
        database, 7, DemoSize(groups=3, members=150, days=21), datetime.now(zone).date(), Settings()
    )
    port = free_port()
    config = tmp_path / "qunpulse.toml"
    config.write_text(
        f"""
[server]
host = "127.0.0.1"
port = {port}
public_url = "http://127.0.0.1:{port}"

[storage]
url = {json.dumps(f"sqlite:///{database}")}

[dashboard]
admin_token = "{ADMIN_TOKEN}"
""",
        encoding="utf-8",
    )
    service = build_service(load_settings(config, env={}))
    runner = web.AppRunner(service.web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_group_page_renders_charts_in_chromium(
    browser_or_skip: str, demo_server: str
) -> None:
    from playwright.async_api import async_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=browser_or_skip,
            args=["--headless", "--no-sandbox", "--disable-gpu"],
        )
        try:
            context = await browser.new_context(viewport={"width": 1200, "height": 900})
            page = await context.new_page()
            page.on(
                "console",
                lambda message: problems.append(message.text) if message.type == "error" else None,
            )
            await page.goto(f"{demo_server}/dashboard/login")
            await page.fill("input[name=admin_token]", ADMIN_TOKEN)
            await page.click("form.login button[type=submit]")
            await page.wait_for_url(f"{demo_server}/dashboard/")
            assert await page.locator("table#groups tbody tr").count() == 3

            await page.click("table#groups tbody tr:first-child a")
            await page.wait_for_selector("svg.chart")
            charts = page.locator("#daily_activity svg.chart")
            box = await charts.bounding_box()
            assert box is not None
            assert box["width"] > 300
            assert box["height"] > 80
            points = await page.locator("#daily_activity polyline.series").first.get_attribute(
                "points"
            )
            assert points is not None
            assert len(points.split()) == 7  # one point per day of the default 7d period
            assert await page.locator("#daily_membership rect.bar").count() > 0
            assert await page.locator("#rank rect.bar").count() > 0
            await page.screenshot(path=str(ARTIFACTS / "dashboard-group.png"), full_page=True)

            await page.click("nav.tabs a:nth-child(2)")
            await page.wait_for_selector("table#members tbody tr")
            assert await page.locator("table#members tbody tr").count() > 10

            phone = await browser.new_context(
                viewport={"width": 390, "height": 844}, device_scale_factor=2
            )
            await phone.add_cookies(await context.cookies())
            mobile = await phone.new_page()
            await mobile.goto(f"{demo_server}/dashboard/")
            await mobile.screenshot(path=str(ARTIFACTS / "dashboard-phone.png"), full_page=True)
        finally:
            await browser.close()
    assert problems == []  # a CSP violation or a missing file shows up here
