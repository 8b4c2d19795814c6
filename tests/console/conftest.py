"""The console in a real browser: Debian's Chromium driven by Playwright (sync API)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from tests.fixtures.tools import missing_tool

# Sync Playwright runs an event loop in this thread; the ORM would refuse to run beside it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/lib/chromium/chromium"  # the binary; /usr/bin/chromium is a noisy wrapper
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 800}
# Where screenshots go: a scratch folder, unless SCREENSHOTS_DIR names one. Refresh the
# README's with `SCREENSHOTS_DIR=docs/screenshots bash scripts/test.sh tests/console`.
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "harborpy-screenshots"
).resolve()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not os.path.exists(CHROMIUM):
        missing_tool("Debian's chromium is not installed")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT}


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Log in through the form and land on the projects page."""
    page.goto(f"{base_url}/projects/")
    assert re.search(r"/login/\?next=/projects/$", page.url), page.url
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base_url}/projects/")


def screenshot(page, name: str) -> None:
    """Save the visible 1280x800 viewport as NAME.png in SCREENSHOTS (overwritten)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
