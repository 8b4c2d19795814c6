"""The console end to end: a real browser against a live harborpy (gunicorn), real skopeo pushes.

One story per test, as a project admin lives it: log in, create a project, push an image, look
at it, tag it, add a member, make a robot and push with its secret; then the member (a guest)
sees the same pages without a single button that changes anything, and a forged POST is refused.
Each main page is saved as a screenshot for the README (docs/screenshots/).
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import log_in, screenshot
from tests.fixtures.clients import CommandError, SampleImages, skopeo
from tests.fixtures.server import ADMIN_PASSWORD, LiveServer

pytestmark = pytest.mark.clients

GUEST, GUEST_PASSWORD = "gus", "Guest-Password-42"


def push(sample: SampleImages, tag: str, ref: str, *extra: str) -> None:
    """skopeo copy oci:LAYOUT:tag docker://ref (the admin's credentials, or ``extra``'s)."""
    skopeo("copy", "--dest-tls-verify=false", *extra, sample.oci(tag), f"docker://{ref}")


def digest_of(ref: str) -> str:
    raw = skopeo("inspect", "--tls-verify=false", f"docker://{ref}")
    return json.loads(raw)["Digest"]


def test_a_project_admin_runs_a_project_from_the_console(
    registry: LiveServer, sample_images: SampleImages, page: Page, browser: Browser
) -> None:
    base, host = registry.url, registry.host
    log_in(page, base, "admin", ADMIN_PASSWORD)

    # A new private project, from the projects page.
    page.fill("#project-name", "shop")
    page.fill("#project-quota", "1G")
    page.click("button:has-text('Create project')")
    page.wait_for_url(f"{base}/projects/shop/")
    expect(page.locator("h1")).to_contain_text("shop")
    expect(page.locator(".badge.private").first).to_be_visible()

    # Images pushed by a real client show up with their artifact count and pull command.
    push(sample_images, "single", f"{host}/shop/app:1")
    push(sample_images, "multi", f"{host}/shop/app:multi", "--all")
    page.reload()
    row = page.locator("tr", has=page.locator("a", has_text="shop/app"))
    expect(row.locator("td.num").first).to_have_text("2")
    expect(row.locator("code")).to_have_text(f"docker pull {host}/shop/app")
    screenshot(page, "project-repositories")
    page.goto(f"{base}/projects/")
    expect(page.locator("td a", has_text="shop")).to_be_visible()
    screenshot(page, "projects")

    # The repository page: both artifacts, their tags, the index's platforms, pull commands.
    page.goto(f"{base}/projects/shop/")
    page.click("a:has-text('shop/app')")
    page.wait_for_url(f"{base}/repositories/shop/app/")
    single, multi = sample_images.single.digest, sample_images.multi.digest
    single_row = page.locator(f"tr[data-digest='{single}']")
    multi_row = page.locator(f"tr[data-digest='{multi}']")
    expect(single_row.locator(".tag")).to_have_text(["1"])
    expect(multi_row).to_contain_text("linux/amd64")
    expect(multi_row).to_contain_text("linux/arm64/v8")
    expect(single_row.locator("code")).to_have_text(f"docker pull {host}/shop/app@{single}")
    expect(single_row.locator("button.copy[data-copy$=':1']")).to_have_count(1)
    screenshot(page, "repository")

    # The artifact page: layers, the config as JSON, tags added and removed.
    single_row.locator("td a").first.click()
    page.wait_for_url(f"{base}/repositories/shop/app/artifacts/{single}/")
    expect(page.locator("#layers tbody tr")).to_have_count(2)
    expect(page.locator("#config")).to_contain_text('"architecture": "amd64"')
    page.fill("#tag-name", "stable")
    page.click("button:has-text('Add tag')")
    expect(page.locator("#tags tr[data-tag='stable']")).to_be_visible()
    assert digest_of(f"{host}/shop/app:stable") == single, "the registry serves the new tag"
    screenshot(page, "artifact")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("#tags tr[data-tag='stable'] button:has-text('Remove tag')").click()
    expect(page.locator(".notice.success")).to_contain_text("The tag stable was removed.")
    expect(page.locator("#tags tr[data-tag='stable']")).to_have_count(0)
    with pytest.raises(CommandError):
        digest_of(f"{host}/shop/app:stable")

    # The index: one row per platform, each linking to its manifest.
    page.goto(f"{base}/repositories/shop/app/artifacts/{multi}/")
    expect(page.locator("#children tbody tr")).to_have_count(2)
    expect(page.locator("#children")).to_contain_text("linux/arm64/v8")

    # Settings: the quota with its usage.
    page.goto(f"{base}/projects/shop/settings/")
    expect(page.locator("[role=meter]")).to_be_visible()
    expect(page.locator("#quota-value")).to_have_value("1G")

    # A local user, made by the admin, becomes a guest of the project.
    page.goto(f"{base}/administration/users/")
    page.fill("#user-name", GUEST)
    page.fill("#user-password", GUEST_PASSWORD)
    page.click("button:has-text('Create user')")
    expect(page.locator(f"tr[data-user='{GUEST}']")).to_be_visible()
    page.goto(f"{base}/projects/shop/members/")
    page.fill("#member-name", GUEST)
    page.select_option("#member-role", "guest")
    page.click("button:has-text('Add member')")
    expect(page.locator(f"tr[data-subject='user:{GUEST}'] select")).to_have_value("guest")
    screenshot(page, "members")

    # A robot that may pull and push; its secret is shown once and works with skopeo.
    page.goto(f"{base}/projects/shop/robots/")
    page.fill("#robot-name", "ci")
    page.fill("#robot-description", "the build pipeline")
    page.check("input[name=actions][value=push]")
    page.click("button:has-text('Create robot')")
    robot = page.locator("#robot-name").inner_text()
    secret = page.locator("#robot-secret").inner_text()
    assert robot == "robot$shop+ci" and len(secret) > 30
    creds = f"--dest-creds={robot}:{secret}"
    push(sample_images, "single", f"{host}/shop/from-robot:1", creds)
    page.goto(f"{base}/projects/shop/robots/")
    assert secret not in page.content(), "the secret is never shown again"
    screenshot(page, "robots")

    # Disabled, the robot is refused; enabled with a refreshed secret, only the new one works.
    robot_row = page.locator(f"tr[data-robot='{robot}']")
    robot_row.locator("button:has-text('Disable')").click()
    expect(robot_row.locator(".badge.off")).to_have_text("disabled")
    with pytest.raises(CommandError):
        push(sample_images, "single", f"{host}/shop/from-robot:2", creds)
    robot_row.locator("button:has-text('Enable')").click()
    robot_row.locator("button:has-text('Refresh secret')").click()
    new_secret = page.locator("#robot-secret").inner_text()
    assert new_secret != secret
    with pytest.raises(CommandError):
        push(sample_images, "single", f"{host}/shop/from-robot:3", creds)
    push(sample_images, "single", f"{host}/shop/from-robot:4", f"--dest-creds={robot}:{new_secret}")

    # The project's log and the system audit log, with the hash chain checked.
    page.goto(f"{base}/projects/shop/logs/")
    expect(page.locator("td", has_text="shop/from-robot:1")).to_be_visible()
    page.goto(f"{base}/administration/audit/")
    expect(page.locator("#chain")).to_contain_text("Hash chain intact")
    page.select_option("#audit-action", "push")
    page.click("button:has-text('Filter')")
    expect(page.locator("tbody tr").first).to_contain_text("push")
    screenshot(page, "admin-audit")
    page.goto(f"{base}/profile/")
    screenshot(page, "profile")

    # The guest sees the project, but nothing that changes it ...
    guest = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        as_guest = guest.new_page()
        log_in(as_guest, base, GUEST, GUEST_PASSWORD)
        expect(as_guest.locator("td a", has_text="shop")).to_be_visible()
        expect(as_guest.locator("#create-project")).to_have_count(1)  # everyone may, by default
        expect(as_guest.locator("a:has-text('Administration')")).to_have_count(0)
        pages = [
            "/projects/shop/",
            "/projects/shop/members/",
            "/projects/shop/robots/",
            "/projects/shop/settings/",
            "/repositories/shop/app/",
            f"/repositories/shop/app/artifacts/{single}/",
            f"/repositories/shop/app/artifacts/{multi}/",
        ]
        for path in pages:
            as_guest.goto(base + path)
            assert as_guest.url == base + path
            expect(as_guest.locator("main form[method=post]")).to_have_count(0)
            for word in ("Delete", "Remove", "Add", "Disable", "Refresh", "Change", "Save"):
                expect(as_guest.locator("main button", has_text=word)).to_have_count(0)
        as_guest.goto(f"{base}/projects/shop/logs/")
        expect(as_guest.locator("h1")).to_have_text("Not allowed")

        # ... and a POST forged with a valid session and CSRF token is refused.
        token = next(c["value"] for c in guest.cookies() if c["name"] == "csrftoken")
        forged = as_guest.request.post(
            f"{base}/repositories/shop/app/artifacts/{single}/delete/",
            form={"csrfmiddlewaretoken": token},
            max_redirects=0,
        )
        assert forged.status == 403
        assert digest_of(f"{host}/shop/app:1") == single, "the artifact is still there"
    finally:
        guest.close()
