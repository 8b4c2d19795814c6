"""Administration > Log rotation: the admin starts purges and sets the schedule; the page
shows the runs with their counts and refreshes itself while one is active."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from audit.models import AuditEntry, AuditPurgeRun, PurgeStatus
from audit.rotation import audit_purge_run_execute
from audit.schedule import audit_purge_schedule_get
from audit.selectors import audit_verify
from audit.services import Event, _append

PAGE = "/administration/audit/rotation/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(settings) -> Client:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="x"))
    return client


def said(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_admin_purges_and_sees_the_run(admin: Client) -> None:
    at = timezone.now() - timedelta(hours=50)
    _append([Event("alice", action, "lib/app:1", at=at) for action in ("pull", "pull", "push")])
    page = admin.get(PAGE).content.decode()
    assert 'id="purge-start"' in page and "No purge has run yet" in page
    assert 'href="/administration/audit/rotation/" class="active"' in page

    response = admin.post(PAGE, {"retention_hour": "24", "operations": ["pull"]})
    assert response.status_code == 302 and response["Location"] == PAGE
    run = AuditPurgeRun.objects.get()
    assert said(response) == [f"Audit log purge {run.pk} was started."]
    assert (run.status, run.retention_hour, run.operations, run.actor) == (
        PurgeStatus.PENDING,
        24,
        ["pull"],
        "root",
    )
    page = admin.get(PAGE).content.decode()
    assert 'http-equiv="refresh"' in page, "refreshes itself while the run is pending"
    assert 'disabled title="A purge is pending or running"' in page

    audit_purge_run_execute(run_id=run.pk)  # what the worker does
    page = admin.get(PAGE).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert f'data-run="{run.pk}" data-status="succeeded"' in page
    assert '<td class="num deleted">2</td>' in page
    assert list(AuditEntry.objects.filter(action="pull")) == []
    assert audit_verify().intact
    audit_page = admin.get("/administration/audit/").content.decode()
    assert "2 removed by recorded purges" in audit_page


def test_bad_input_and_a_busy_log_are_explained(admin: Client) -> None:
    for form, message in [
        ({"retention_hour": "-3"}, "0 to"),
        ({"retention_hour": "soon"}, "whole number of hours"),
        ({"retention_hour": ""}, "required"),
        ({"retention_hour": "1", "operations": ["teleport"]}, "unknown 'teleport'"),
    ]:
        response = admin.post(PAGE, form)
        assert response.status_code == 302 and message in " ".join(said(response)), form
    assert not AuditPurgeRun.objects.exists()
    admin.post(PAGE, {"retention_hour": "1", "dry_run": "1"})
    busy = admin.post(PAGE, {"retention_hour": "1"})
    assert "pending or running; try again" in said(busy)[-1]
    assert AuditPurgeRun.objects.get().dry_run is True


def test_the_schedule_form(admin: Client) -> None:
    form = {"type": "Custom", "cron": "15 4 * * *", "retention_hour": "168", "operations": "pull"}
    response = admin.post(f"{PAGE}schedule/", form)
    assert response.status_code == 302
    assert said(response)[0].startswith("The log rotation schedule is now Custom; next run")
    schedule = audit_purge_schedule_get()
    assert (schedule.cron, schedule.retention_hour, schedule.operations) == (
        "15 4 * * *",
        168,
        ["pull"],
    )
    page = admin.get(PAGE).content.decode()
    assert "<code>15 4 * * *</code>, keeping 168 hours of pull" in page
    bad = admin.post(f"{PAGE}schedule/", {**form, "cron": "whenever"})
    assert "schedule.cron" in said(bad)[-1]
    assert audit_purge_schedule_get().cron == "15 4 * * *"


def test_others_may_not_see_the_page(admin: Client) -> None:
    plain = Client()
    plain.force_login(get_user_model().objects.create_user("plain", password="x"))
    assert plain.get(PAGE).status_code == 403
    assert plain.post(PAGE, {"retention_hour": "0"}).status_code == 403
    assert not AuditPurgeRun.objects.exists()
