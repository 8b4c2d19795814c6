"""The replication pages' forms and buttons through Django's test client: what each accepts,
what it refuses (with the message beside the field, 400, nothing written), and the audit
entry every change leaves.  The browser test (test_replication_browser.py) runs the story
against live registries."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEntry
from distribution.models import Label
from replication.models import Execution, RegistryEndpoint, ReplicationPolicy, Status

DEAD_URL = "http://127.0.0.1:9"  # the discard port: nothing listens there

PAGES = [
    "/administration/registries/",
    "/administration/registries/new/",
    "/administration/replications/",
    "/administration/replications/new/",
    "/administration/replications/executions/",
]


@pytest.fixture
def admin(db, settings) -> Client:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    return client


def entries(action: str, resource: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action, resource=resource, actor="root"))


def test_a_registry_endpoint_is_created_edited_and_its_password_never_shown(admin) -> None:
    refused = admin.post(
        "/administration/registries/new/",
        {"name": "remote", "url": "ftp://nowhere", "password": "S3cret-pw", "verify_tls": "1"},
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    assert 'id="error-url"' in page and "is not of the form http(s)://host[:port]" in page
    assert 'value="ftp://nowhere"' in page and "S3cret-pw" not in page
    assert not RegistryEndpoint.objects.exists()

    created = admin.post(
        "/administration/registries/new/",
        {"name": "remote", "url": DEAD_URL, "username": "bot", "password": "S3cret-pw"},
    )
    assert created.status_code == 302
    endpoint = RegistryEndpoint.objects.get()
    assert (endpoint.url, endpoint.username, endpoint.secret) == (DEAD_URL, "bot", "S3cret-pw")
    assert endpoint.verify_tls is False  # the box was not ticked
    assert entries("create", "registry:remote")

    form = admin.get(f"/administration/registries/{endpoint.pk}/").content.decode()
    assert 'value="bot"' in form and "S3cret-pw" not in form

    # An empty password keeps the stored one; a taken name is refused beside the name.
    RegistryEndpoint.objects.create(name="other", url=DEAD_URL)
    taken = admin.post(
        f"/administration/registries/{endpoint.pk}/", {"name": "other", "url": DEAD_URL}
    )
    assert taken.status_code == 400 and 'id="error-name"' in taken.content.decode()
    kept = admin.post(
        f"/administration/registries/{endpoint.pk}/",
        {"name": "remote2", "url": DEAD_URL, "username": "bot", "password": "", "verify_tls": "1"},
    )
    assert kept.status_code == 302
    endpoint.refresh_from_db()
    assert (endpoint.name, endpoint.secret, endpoint.verify_tls) == ("remote2", "S3cret-pw", True)
    assert entries("update", "registry:remote2")


def test_test_connection_answers_with_the_result(admin) -> None:
    endpoint = RegistryEndpoint.objects.create(name="dead", url=DEAD_URL)
    json = {"HTTP_ACCEPT": "application/json"}
    saved = admin.post("/administration/registries/test/", {"endpoint": endpoint.pk}, **json)
    assert saved.status_code == 200
    assert saved.json()["ok"] is False and DEAD_URL in saved.json()["message"]
    typed = admin.post("/administration/registries/test/", {"url": "not a url"}, **json)
    assert typed.status_code == 400 and "http(s)://host[:port]" in typed.json()["message"]
    # without the page's script: the result as a message on the registries page
    plain = admin.post("/administration/registries/test/", {"endpoint": endpoint.pk}, follow=True)
    assert "Test connection: " + DEAD_URL + " failed" in plain.content.decode()


def test_an_endpoint_a_policy_uses_is_not_deleted(admin) -> None:
    endpoint = RegistryEndpoint.objects.create(name="used", url=DEAD_URL)
    ReplicationPolicy.objects.create(name="nightly", endpoint=endpoint, direction="push")
    answer = admin.post(f"/administration/registries/{endpoint.pk}/delete/", follow=True)
    assert "the replication policies nightly use it" in answer.content.decode()
    assert RegistryEndpoint.objects.filter(pk=endpoint.pk).exists()
    assert not entries("delete", "registry:used")

    ReplicationPolicy.objects.all().delete()
    admin.post(f"/administration/registries/{endpoint.pk}/delete/")
    assert not RegistryEndpoint.objects.exists() and entries("delete", "registry:used")


def test_a_policy_with_every_field_then_enabled_disabled_and_deleted(admin) -> None:
    endpoint = RegistryEndpoint.objects.create(name="remote", url=DEAD_URL)
    Label.objects.create(name="release", scope=Label.GLOBAL)
    form = {
        "name": "nightly",
        "direction": "push",
        "endpoint": endpoint.pk,
        "repository_filter": "library/**",
        "tag_filter": "v*",
        "label_filter": ["release"],
        "destination_namespace": "mirror",
        "trigger": "scheduled",
        "schedule": "not cron",
        "override": "1",
        "replicate_deletion": "1",
        "enabled": "1",
    }
    page = admin.get("/administration/replications/new/").content.decode()
    assert '<option value="release"' in page and f'<option value="{endpoint.pk}"' in page

    refused = admin.post("/administration/replications/new/", form)
    assert refused.status_code == 400
    assert 'id="error-trigger"' in refused.content.decode()
    assert 'value="library/**"' in refused.content.decode(), "what was typed stays"
    assert not ReplicationPolicy.objects.exists()

    created = admin.post("/administration/replications/new/", {**form, "schedule": "0 2 * * *"})
    assert created.status_code == 302
    policy = ReplicationPolicy.objects.get()
    assert (policy.trigger, policy.schedule, policy.label_filter) == (
        "scheduled",
        "0 2 * * *",
        ["release"],
    )
    assert (policy.destination_namespace, policy.replicate_deletion) == ("mirror", True)
    assert entries("create", "replication-policy:nightly")
    listed = admin.get("/administration/replications/").content.decode()
    assert "<code>0 2 * * *</code>" in listed and "never ran" in listed

    admin.post(f"/administration/replications/{policy.pk}/enable/", {"enabled": "0"})
    policy.refresh_from_db()
    assert policy.enabled is False
    refused_run = admin.post(f"/administration/replications/{policy.pk}/run/", follow=True)
    assert "is disabled: enable it first" in refused_run.content.decode()
    assert not Execution.objects.exists()

    edited = admin.post(
        f"/administration/replications/{policy.pk}/edit/",
        {**form, "schedule": "", "trigger": "manual", "label_filter": [], "enabled": "1"},
    )
    assert edited.status_code == 302
    policy.refresh_from_db()
    assert (policy.trigger, policy.label_filter, policy.enabled) == ("manual", [], True)

    admin.post(f"/administration/replications/{policy.pk}/delete/")
    assert not ReplicationPolicy.objects.exists()
    assert entries("delete", "replication-policy:nightly")


def test_replicate_now_and_stop_are_audited(admin) -> None:
    endpoint = RegistryEndpoint.objects.create(name="remote", url=DEAD_URL)
    policy = ReplicationPolicy.objects.create(name="p", endpoint=endpoint, direction="push")
    started = admin.post(f"/administration/replications/{policy.pk}/run/")
    execution = Execution.objects.get()
    assert started["Location"] == f"/administration/replications/executions/{execution.pk}/"
    assert execution.status == Status.PENDING  # the worker gets it once the request commits
    assert [e.detail for e in entries("replicate", "replication-policy:p")] == [
        {"execution": execution.pk}
    ]
    page = admin.get(started["Location"]).content.decode()
    assert 'http-equiv="refresh"' in page and 'id="stop-execution"' in page

    admin.post(f"/administration/replications/executions/{execution.pk}/stop/")
    execution.refresh_from_db()
    assert execution.status == Status.CANCELLED
    assert entries("stop", "replication-policy:p")
    again = admin.post(f"/administration/replications/executions/{execution.pk}/stop/", follow=True)
    assert "had ended: nothing to stop" in again.content.decode()
    assert len(entries("stop", "replication-policy:p")) == 1
    page = admin.get(started["Location"]).content.decode()
    assert 'http-equiv="refresh"' not in page and 'id="stop-execution"' not in page


@pytest.mark.parametrize("url", PAGES)
def test_the_pages_are_for_system_admins_only(db, settings, url: str) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    assert Client().get(url)["Location"].startswith("/login/?next=")
    user = Client()
    user.force_login(get_user_model().objects.create_user("plain", password="x"))
    assert user.get(url).status_code == 403


def test_a_running_execution_shows_its_tasks_progress_and_the_chart_the_ended_ones(
    admin,
) -> None:
    endpoint = RegistryEndpoint.objects.create(name="remote", url=DEAD_URL)
    policy = ReplicationPolicy.objects.create(name="p", endpoint=endpoint, direction="push")
    big = Execution.objects.create(policy=policy, status="succeeded", total=1, succeeded=1)
    big.bytes = 4000
    big.save()
    small = Execution.objects.create(policy=policy, status="failed", total=1, failed=1)
    small.bytes = 1000
    small.save()
    # running: its own counters are still 0; two of its four tasks are done
    running = Execution.objects.create(policy=policy, status="running", total=4)
    for status, size in (("succeeded", 700), ("skipped", 0), ("running", 0), ("pending", 0)):
        running.tasks.create(source="a:1", destination="a:1", status=status, bytes=size)

    page = admin.get(f"/administration/replications/{policy.pk}/").content.decode()
    assert 'http-equiv="refresh"' in page
    row = page.split(f'<tr data-execution="{running.pk}"')[1].split("</tr>")[0]
    counts = '<span title="succeeded">1</span> / <span title="failed">0</span> / '
    assert counts + '<span title="skipped">1</span> / <span title="total">4</span>' in row
    assert 'aria-valuenow="50"' in row and "700 B" in row
    assert 'class="succeeded" style="width: 25.00%"' in row
    assert 'class="skipped" style="width: 25.00%"' in row
    # the chart: ended executions only, the tallest the most bytes, red for a failure
    bars = page.split('<g class="bar"')[1:]
    assert len(bars) == 2, "the running execution has no bar yet"
    assert all(f'data-execution="{e.pk}"' in bar for e, bar in zip((big, small), bars, strict=True))
    assert 'height="120"' in bars[0] and 'height="30"' in bars[1]
    assert "#b42318" in bars[1]
