"""Log rotation in the console, in a real browser: the admin purges old pulls and watches the
run succeed on a Celery worker (the page refreshes itself while it is active)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import Page, expect

from audit.models import AuditEntry, AuditPurgeRun
from audit.selectors import audit_verify
from audit.services import Event, _append
from tests.api.test_purgeaudit_api import audit_worker_fixture  # noqa: F401
from tests.console.conftest import log_in, screenshot
from tests.fixtures.server import ADMIN_PASSWORD, LiveServer


def test_the_admin_purges_old_pulls_and_sees_it_succeed(
    registry: LiveServer, audit_worker, page: Page
) -> None:
    base = registry.url
    at = timezone.now() - timedelta(hours=100)
    _append([Event("alice", "pull", f"library/app:{i}", at=at) for i in range(5)])
    log_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(f"{base}/administration/audit/")
    page.click("nav.tabs a:has-text('Log rotation')")
    page.wait_for_url(f"{base}/administration/audit/rotation/")
    expect(page.locator("main .empty")).to_contain_text("No purge has run yet")

    page.fill("#purge-hours", "48")
    page.check("#purge-operations input[value='pull']")
    page.click("#purge-start button:has-text('Purge now')")
    page.wait_for_url(f"{base}/administration/audit/rotation/")
    expect(page.locator(".notice.success")).to_contain_text("was started")
    run = AuditPurgeRun.objects.get()
    row = page.locator(f"#purge-runs tr[data-run='{run.pk}']")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=20_000)
    expect(row.locator(".deleted")).to_have_text("5")
    expect(row).to_contain_text("older than 48 h, pull")
    row.locator("summary").click()
    expect(row.locator("pre.gc-log")).to_contain_text("deleted 5 entries")
    screenshot(page, "admin-audit-rotation")
    assert not AuditEntry.objects.filter(action="pull", at__lt=timezone.now() - timedelta(hours=48))
    assert audit_verify().intact
