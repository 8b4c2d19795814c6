"""The GC schedule form and a project's Policy tab, in a real browser against a live server
with a Celery worker: the admin sets the schedule and sees when it runs next; a project admin
adds an immutability rule and watches a retention dry run finish on the worker."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from audit.services import SYSTEM
from distribution.gc import gc_schedule_get
from distribution.models import ImmutableRule, RetentionRun, Tag
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.roles import Role
from tests.api.test_gc_api import gc_worker_fixture  # noqa: F401
from tests.console.conftest import log_in, screenshot
from tests.distribution.helpers import push_image, tags_of
from tests.fixtures.server import ADMIN_PASSWORD, LiveServer

PASSWORD = "Project-Admin-Password-8"


def test_the_admin_sets_the_gc_schedule(registry: LiveServer, page: Page) -> None:
    base = registry.url
    log_in(page, base, "admin", ADMIN_PASSWORD)
    page.goto(f"{base}/administration/gc/")
    expect(page.locator("#gc-schedule-now")).to_contain_text("No scheduled runs")
    expect(page.locator("#gc-schedule-now")).to_contain_text("HARBORPY_GC_SCHEDULE")

    page.select_option("#gc-schedule-type", "Custom")
    page.fill("#gc-schedule-cron", "every night")
    page.click("#gc-schedule-form button:has-text('Save schedule')")
    expect(page.locator(".notice.error")).to_contain_text("five fields")
    assert gc_schedule_get().source == "setting"

    page.select_option("#gc-schedule-type", "Custom")
    page.fill("#gc-schedule-cron", "30 3 * * 6")
    page.check("#gc-schedule-untagged")
    page.click("#gc-schedule-form button:has-text('Save schedule')")
    page.wait_for_url(f"{base}/administration/gc/")
    expect(page.locator(".notice.success")).to_contain_text("now Custom; next run")
    now = page.locator("#gc-schedule-now")
    expect(now).to_contain_text("30 3 * * 6")
    expect(now).to_contain_text("untagged manifests too")
    expect(now).to_contain_text("Set by admin")
    expect(page.locator("#gc-next-run")).to_contain_text(" 03:30 ")
    expect(page.locator("#gc-schedule-cron")).to_have_value("30 3 * * 6")
    screenshot(page, "admin-gc-schedule")
    schedule = gc_schedule_get()
    assert (schedule.kind, schedule.cron, schedule.untagged) == ("Custom", "30 3 * * 6", True)

    page.select_option("#gc-schedule-type", "None")
    page.click("#gc-schedule-form button:has-text('Save schedule')")
    expect(page.locator("#gc-schedule-now")).to_contain_text("No scheduled runs")
    assert gc_schedule_get().cron == ""


def test_a_project_admin_uses_the_policy_tab(registry: LiveServer, gc_worker, page: Page) -> None:
    base = registry.url
    project = Project.objects.create(name="pol", public=False)
    get_user_model().objects.create_user("pam", password=PASSWORD)
    binding_set(
        project=project, subject=Subject("user", "pam"), role=Role.PROJECT_ADMIN, actor=SYSTEM
    )
    for tag in ("v1", "old", "new"):
        push_image(registry, "pol/app", tag)
    Tag.objects.filter(name="new").update(
        pushed_at=Tag.objects.get(name="new").pushed_at.replace(year=2099)
    )

    log_in(page, base, "pam", PASSWORD)
    page.goto(f"{base}/projects/pol/")
    page.click("nav.tabs a:has-text('Policy')")
    page.wait_for_url(f"{base}/projects/pol/policy/")
    expect(page.locator("#retention .empty")).to_contain_text("No retention rules")
    expect(page.locator("#immutable-rules")).to_contain_text("No immutability rules")

    page.fill("#immutable-tag", "v1")
    page.click("#add-immutable button:has-text('Add rule')")
    expect(page.locator(".notice.success")).to_contain_text("now immutable")
    rule = ImmutableRule.objects.get()
    expect(page.locator(f"#immutable-rules tr[data-rule='{rule.pk}']")).to_contain_text("v1")

    page.fill("#retention-rules-json", '[{"tag": "**", "latestPushedK": 1}]')
    page.fill("#retention-schedule-input", "0 3 * * *")
    page.click("#retention-edit button:has-text('Save policy')")
    expect(page.locator(".notice.success")).to_contain_text("retention policy was saved")
    expect(page.locator("#retention-rules")).to_contain_text(
        "keep the 1 most recently pushed artifacts"
    )
    expect(page.locator("#retention-schedule")).to_have_text("0 3 * * *")

    page.click("#retention-dry-run button:has-text('Dry run')")
    expect(page.locator(".notice.success")).to_contain_text("dry run")
    run = RetentionRun.objects.get()
    row = page.locator(f"#retention-runs tr[data-run='{run.pk}']")
    expect(row).to_have_attribute("data-status", "succeeded", timeout=20_000)
    expect(row.locator(".retained")).to_have_text("2")  # new, and v1 (immutable)
    expect(row.locator(".removed")).to_contain_text("1 (would)")
    row.locator("summary").click()
    expect(row.locator("pre")).to_contain_text("delete pol/app:old")
    screenshot(page, "project-policy")
    assert sorted(tags_of(registry, "pol/app")) == ["new", "old", "v1"]  # a dry run

    page.once("dialog", lambda dialog: dialog.accept())  # "Make tags v1 mutable again?"
    page.click("#immutable-rules button:has-text('Remove')")
    expect(page.locator("#immutable-rules")).to_contain_text("No immutability rules")
    assert not ImmutableRule.objects.exists()
