"""Replication in the console, in a real browser, against live registries.

The admin adds Debian's docker-registry as an endpoint and tests the connection, creates a
push policy, pushes an image with skopeo, clicks "Replicate now" and watches the execution
succeed on a real Celery worker (the page refreshes itself while it runs), with its task row;
the image is then in the docker-registry, byte for byte.  A pending execution is stopped, an
endpoint in use is not deleted, and anyone but a system admin is refused.
"""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from audit.models import AuditEntry
from harborpy.celery import app
from replication.models import Execution, RegistryEndpoint, ReplicationPolicy
from replication.services import execution_run
from tests.console.conftest import log_in, screenshot
from tests.fixtures.clients import SampleImages, skopeo
from tests.fixtures.server import ADMIN_PASSWORD, LiveServer, database_url

pytestmark = pytest.mark.clients

PASSWORD = "Plain-User-Password-7"
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"


@pytest.fixture
def replication_worker(registry: LiveServer, settings) -> Iterator[Any]:
    """A Celery worker in this process, on the live server's broker, database and store."""
    assert os.environ.get("REDIS_URL"), "the worker and the server meet on Redis (REDIS_URL)"
    assert app.conf.broker_url == registry.env["REDIS_URL"] == os.environ["REDIS_URL"]
    assert registry.env["DATABASE_URL"] == database_url()
    settings.HARBORPY_STORAGE = (registry.data / "storage").as_uri()
    app.loader.import_module("replication.tasks")
    with start_worker(app, pool="solo", perform_ping_check=False) as worker:
        yield worker


def remote_digest(host: str, name: str, reference: str) -> str | None:
    request = urllib.request.Request(
        f"http://{host}/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def test_the_admin_replicates_an_image_to_a_registry(
    registry: LiveServer,
    reference_registry: str,
    sample_images: SampleImages,
    replication_worker,
    page: Page,
) -> None:
    base = registry.url
    page.on("dialog", lambda dialog: dialog.accept())  # the confirmations of Stop and Delete
    log_in(page, base, "admin", ADMIN_PASSWORD)

    # A registry endpoint: the connection is tested on the form, then in the list.
    page.goto(f"{base}/administration/users/")
    page.click("nav.tabs a:has-text('Registries')")
    page.wait_for_url(f"{base}/administration/registries/")
    expect(page.locator("#registries .empty")).to_have_text("No registry endpoints yet.")
    page.click("#new-registry")
    page.fill("#registry-name", "mirror")
    page.fill("#registry-url", "http://127.0.0.1:9")
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("failed", timeout=20_000)
    expect(page.locator("#test-result")).to_have_class("test-result failed")
    page.fill("#registry-url", f"http://{reference_registry}")
    page.click("#test-connection")
    expect(page.locator("#test-result")).to_contain_text("answered and accepted")
    screenshot(page, "replication-registry-form")
    page.click("#registry-form button:has-text('Create endpoint')")
    page.wait_for_url(f"{base}/administration/registries/")
    row = page.locator("#registries tr[data-endpoint='mirror']")
    expect(row).to_contain_text(f"http://{reference_registry}")
    expect(row).to_contain_text("0 policies")
    row.locator("button:has-text('Test connection')").click()
    expect(row.locator(".test-result")).to_contain_text("answered and accepted")

    # A push policy for one repository, with a cron schedule shown only when chosen.
    page.click("nav.tabs a:has-text('Replications')")
    page.wait_for_url(f"{base}/administration/replications/")
    page.click("#new-policy")
    page.fill("#policy-name", "to-mirror")
    page.select_option("#policy-endpoint", label=f"mirror (http://{reference_registry})")
    page.fill("#policy-repository-filter", "library/replica")
    page.fill("#policy-tag-filter", "v*")
    page.fill("#policy-namespace", "copies")
    expect(page.locator("#policy-schedule")).to_be_hidden()
    page.select_option("#policy-trigger", "scheduled")
    expect(page.locator("#policy-schedule")).to_be_visible()
    page.fill("#policy-schedule", "every night")
    page.click("#policy-form button:has-text('Create policy')")
    expect(page.locator("#error-trigger")).to_contain_text("cron")
    assert not ReplicationPolicy.objects.exists()
    page.fill("#policy-schedule", "0 3 * * *")
    page.click("#policy-form button:has-text('Create policy')")
    policy = ReplicationPolicy.objects.get(name="to-mirror")
    page.wait_for_url(f"{base}/administration/replications/{policy.pk}/")
    expect(page.locator("#policy")).to_contain_text("this registry → mirror")
    expect(page.locator("main .empty")).to_have_text("This policy has not run yet.")

    # An image pushed with skopeo, replicated on the worker; the page follows the execution.
    host = registry.host
    skopeo("copy", "--dest-tls-verify=false", sample_images.oci("single"),
           f"docker://{host}/library/replica:v1")  # fmt: skip
    page.click("#policy button:has-text('Replicate now')")
    execution = Execution.objects.get(policy=policy)
    page.wait_for_url(f"{base}/administration/replications/executions/{execution.pk}/")
    expect(page.locator("#execution")).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(page.locator("#execution h2 .status")).to_have_text("succeeded")
    task = page.locator("#tasks tbody tr")
    expect(task).to_have_count(1)
    expect(task).to_have_attribute("data-status", "succeeded")
    expect(task).to_contain_text("library/replica:v1 → copies/replica:v1")
    expect(task).to_contain_text(sample_images.single.digest[:19])
    expect(page.locator("#execution .counts")).to_have_text("1 / 0 / 0 / 1")
    expect(page.locator("#stop-execution")).to_have_count(0)
    execution.refresh_from_db()
    assert execution.bytes > 1 << 20  # the 1 MiB layer and the others, sent
    expect(page.locator("#execution td.num[title]").last).to_have_attribute(
        "title", f"{execution.bytes} bytes"
    )
    digest = remote_digest(reference_registry, "copies/replica", "v1")
    assert digest == sample_images.single.digest
    screenshot(page, "replication-execution")

    # The policy's page: the execution, and its bar in the chart of bytes moved.
    page.click(".crumbs a:has-text('to-mirror')")
    page.wait_for_url(f"{base}/administration/replications/{policy.pk}/")
    expect(page.locator(f"#executions tr[data-execution='{execution.pk}']")).to_contain_text(
        "succeeded"
    )
    bar = page.locator(f"#replication-chart g.bar[data-execution='{execution.pk}']")
    expect(bar).to_have_attribute("data-status", "succeeded")
    expect(bar.locator("rect")).to_have_attribute("height", "120")  # the tallest bar
    screenshot(page, "replication-policy")

    # A pending execution (queued behind others, say) is stopped before a worker takes it.
    pending = Execution.objects.create(policy=policy)
    page.goto(f"{base}/administration/replications/executions/{pending.pk}/")
    expect(page.locator("#execution h2 .status")).to_have_text("pending")
    page.click("#stop-execution button")
    expect(page.locator(".notice.success")).to_have_text(f"Execution {pending.pk} was stopped.")
    expect(page.locator("#execution")).to_have_attribute("data-status", "cancelled")
    expect(page.locator("#stop-execution")).to_have_count(0)
    assert execution_run(execution_id=pending.pk).status == "cancelled"
    assert not pending.tasks.exists(), "a stopped execution copies nothing"

    # The lists: the policy with its last execution, the endpoint in use and not deletable.
    page.goto(f"{base}/administration/replications/")
    policy_row = page.locator("#policies tr[data-policy='to-mirror']")
    expect(policy_row).to_contain_text("push →")
    expect(policy_row).to_contain_text("library/replica : v* → copies/")
    expect(policy_row).to_contain_text("scheduled 0 3 * * *")
    expect(policy_row.locator(".status")).to_have_text("cancelled")
    screenshot(page, "replication-policies")
    page.goto(f"{base}/administration/registries/")
    expect(row).to_contain_text("1 policy")
    row.locator("button:has-text('Test connection')").click()
    expect(row.locator(".test-result")).to_contain_text("answered and accepted")
    screenshot(page, "replication-registries")
    row.locator("button:has-text('Delete')").click()
    expect(page.locator(".notice.error")).to_contain_text("the replication policies to-mirror")
    assert RegistryEndpoint.objects.filter(name="mirror").exists()

    actions = set(AuditEntry.objects.filter(actor="admin").values_list("action", "resource"))
    assert {
        ("create", "registry:mirror"),
        ("create", "replication-policy:to-mirror"),
        ("replicate", "replication-policy:to-mirror"),
        ("stop", "replication-policy:to-mirror"),
    } <= actions, actions


def test_others_may_not_see_or_change_replication(
    registry: LiveServer, page: Page, browser: Browser
) -> None:
    base = registry.url
    endpoint = RegistryEndpoint.objects.create(name="remote", url="http://127.0.0.1:9")
    policy = ReplicationPolicy.objects.create(name="p", endpoint=endpoint, direction="push")
    get_user_model().objects.create_user("plain", password=PASSWORD)
    log_in(page, base, "plain", PASSWORD)
    expect(page.locator("nav a:has-text('Administration')")).to_have_count(0)
    for url in ("/administration/registries/", "/administration/replications/"):
        response = page.goto(base + url)
        assert response is not None and response.status == 403
        expect(page.locator("h1")).to_have_text("Not allowed")

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        f"{base}/administration/replications/{policy.pk}/run/",
        form={"csrfmiddlewaretoken": token},
        max_redirects=0,
    )
    assert forged.status == 403
    deleted = page.request.post(
        f"{base}/administration/registries/{endpoint.pk}/delete/",
        form={"csrfmiddlewaretoken": token},
        max_redirects=0,
    )
    assert deleted.status == 403
    assert not Execution.objects.exists()
    assert RegistryEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not AuditEntry.objects.filter(actor="plain").exclude(action="login").exists()
