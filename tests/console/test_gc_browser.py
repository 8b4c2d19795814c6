"""Garbage collection in the console, in a real browser: the admin starts a dry run and
watches it succeed (the page refreshes itself while a run is active); anyone else is refused."""

from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from distribution.models import GCRun
from tests.api.test_gc_api import gc_worker_fixture  # noqa: F401
from tests.console.conftest import log_in, screenshot
from tests.distribution.helpers import push_blob
from tests.fixtures.server import ADMIN_PASSWORD, LiveServer

PASSWORD = "Plain-User-Password-7"


def test_the_admin_starts_a_dry_run_and_sees_it_succeed(
    registry: LiveServer,
    gc_worker,
    page: Page,
) -> None:
    base = registry.url
    push_blob(registry, "library/gcpage", os.urandom(3000))
    log_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(f"{base}/administration/users/")
    page.click("nav.tabs a:has-text('Garbage collection')")
    page.wait_for_url(f"{base}/administration/gc/")
    expect(page.locator("main .empty")).to_contain_text("No garbage collection has run yet")

    page.check("#gc-dry-run")
    page.click("#gc-start button:has-text('Run now')")
    page.wait_for_url(f"{base}/administration/gc/")
    expect(page.locator(".notice.success")).to_contain_text("dry run")
    run = GCRun.objects.get()
    row = page.locator(f"#gc-runs tr[data-run='{run.pk}']")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=20_000)
    expect(row.locator(".status")).to_have_text("succeeded")
    expect(row).to_contain_text("dry run")
    # the blob is fresh: a dry run at the default grace would free nothing
    expect(row).to_contain_text("0 B (would)")
    row.locator("summary").click()
    expect(row.locator("pre.gc-log")).to_contain_text("would free 0 B")
    expect(page.locator(f"#gc-chart g.bar[data-run='{run.pk}'] rect")).to_have_count(1)
    screenshot(page, "admin-gc")
    assert GCRun.objects.get().dry_run is True


def test_others_may_not_see_or_start_a_collection(
    registry: LiveServer, page: Page, browser: Browser
) -> None:
    base = registry.url
    get_user_model().objects.create_user("plain", password=PASSWORD)
    log_in(page, base, "plain", PASSWORD)
    response = page.goto(f"{base}/administration/gc/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        f"{base}/administration/gc/",
        form={"csrfmiddlewaretoken": token, "dry_run": "1"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert not GCRun.objects.exists()
