"""Who sees what on the Policy tab: the role table decides (developers run retention,
maintainers and up also manage immutability, guests see neither)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from audit.models import AuditEntry
from audit.services import SYSTEM
from distribution.models import ImmutableRule, RetentionRun
from distribution.retention import retention_policy_set
from projects.models import Project
from rbac.bindings import Subject, binding_set
from rbac.roles import Role


@pytest.fixture
def people(db, settings) -> dict[str, Client]:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    project = Project.objects.create(name="p", public=False)
    retention_policy_set(project=project, rules=[{"latestPushedK": 1}], schedule="", actor=SYSTEM)
    clients = {}
    for name, role in [("gus", Role.GUEST), ("dev", Role.DEVELOPER), ("max", Role.MAINTAINER)]:
        user = get_user_model().objects.create_user(name, password="x")
        binding_set(project=project, subject=Subject("user", name), role=role, actor=SYSTEM)
        clients[name] = Client()
        clients[name].force_login(user)
    return clients


def test_guests_see_no_policy_tab(people) -> None:
    assert 'href="/projects/p/policy/"' not in people["gus"].get("/projects/p/").content.decode()
    assert people["gus"].get("/projects/p/policy/").status_code == 403


def test_developers_run_retention_but_do_not_see_immutability(people) -> None:
    dev = people["dev"]
    assert 'href="/projects/p/policy/"' in dev.get("/projects/p/").content.decode()
    page = dev.get("/projects/p/policy/").content.decode()
    assert 'id="retention-run"' in page and 'id="retention-dry-run"' in page
    assert 'id="immutability"' not in page and 'id="add-immutable"' not in page
    refused = dev.post("/projects/p/policy/immutable/add/", {"tag_pattern": "v*"})
    assert refused.status_code == 403 and not ImmutableRule.objects.exists()
    started = dev.post("/projects/p/policy/retention/run/", {"dry_run": "1"})
    assert started.status_code == 302
    run = RetentionRun.objects.get()
    assert (run.status, run.dry_run, run.actor) == ("pending", True, "dev")
    assert AuditEntry.objects.filter(actor="dev", action="retention", detail__run=run.pk).exists()


def test_maintainers_manage_immutability(people) -> None:
    page = people["max"].get("/projects/p/policy/").content.decode()
    assert 'id="add-immutable"' in page
    people["max"].post("/projects/p/policy/immutable/add/", {"tag_pattern": "{bad"})
    assert not ImmutableRule.objects.exists()
    people["max"].post("/projects/p/policy/immutable/add/", {"tag_pattern": "v*"})
    rule = ImmutableRule.objects.get()
    assert (rule.repository_pattern, rule.tag_pattern) == ("**", "v*")
    assert f'data-rule="{rule.pk}"' in people["max"].get("/projects/p/policy/").content.decode()
    people["max"].post("/projects/p/policy/immutable/remove/", {"rule": str(rule.pk)})
    assert not ImmutableRule.objects.exists()
    audited = AuditEntry.objects.filter(actor="max", action="immutable_rule", resource="project:p")
    assert [e.detail["change"] for e in audited.order_by("id")] == ["created", "deleted"]
