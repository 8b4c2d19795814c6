"""Tag retention: what a policy keeps and deletes, through the service, the CLI and the API."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import SYSTEM
from distribution.exceptions import RuleInvalid
from distribution.immutability import immutable_rule_create
from distribution.models import Manifest, RetentionRun, Tag
from distribution.retention import retention_policy_set, retention_run
from projects.models import Project
from tests.api.team import call, team_fixture, team_password_hash_fixture
from tests.api.test_gc_api import gc_worker_fixture
from tests.distribution.helpers import OCI_MANIFEST, wait_until
from tests.distribution.helpers import push_image as push_over_http
from tests.fixtures import authed
from tests.fixtures.server import harborpy_command
from tests.gc.helpers import push_image, push_index, push_referrer, put_manifest

# fixtures this module uses
__all__ = ["gc_worker_fixture", "team_fixture", "team_password_hash_fixture"]


@pytest.fixture
def project(db, settings, tmp_path: Path) -> Project:
    settings.HARBORPY_STORAGE = (tmp_path / "storage").as_uri()
    return Project.objects.create(name="ret", public=False)


def age(repository: str, days: dict[str, int]) -> None:
    """Date the tags, and the manifests they name, ``days[tag]`` days back."""
    for tag, ago in days.items():
        when = timezone.now() - timedelta(days=ago)
        found = Tag.objects.filter(repository__name=repository, name=tag)
        Manifest.objects.filter(tags__in=found).update(pushed_at=when)
        found.update(pushed_at=when)


def push_tags(repository: str, ages: dict[str, int]) -> dict[str, str]:
    """One image per tag, pushed ``ages[tag]`` days ago; returns tag -> digest."""
    digests = {tag: push_image(repository, tag).digest for tag in ages}
    age(repository, ages)
    return digests


def tags(repository: str) -> list[str]:
    return sorted(Tag.objects.filter(repository__name=repository).values_list("name", flat=True))


def apply(project: Project, rules: list[dict], *, dry_run: bool = False) -> RetentionRun:
    policy = retention_policy_set(project=project, rules=rules, schedule="", actor=SYSTEM)
    return retention_run(policy=policy, dry_run=dry_run)


def test_latest_pushed_k_keeps_the_k_newest_of_each_repository(project) -> None:
    app = push_tags("ret/app", {"a": 4, "b": 1, "c": 3, "d": 2})
    push_tags("ret/tools/lint", {"x": 9, "y": 8, "z": 7})
    run = apply(project, [{"latestPushedK": 2}])
    assert tags("ret/app") == ["b", "d"]
    assert tags("ret/tools/lint") == ["y", "z"]
    assert not Manifest.objects.filter(digest__in=[app["a"], app["c"]]).exists()
    assert Manifest.objects.filter(digest__in=[app["b"], app["d"]]).count() == 2
    assert (run.status, run.retained, run.deleted, run.manifests_deleted) == ("succeeded", 4, 3, 3)
    assert "delete ret/app:a" in run.log and "retain ret/app:b" in run.log
    audited = AuditEntry.objects.filter(action="delete", detail__by="retention")
    assert audited.filter(detail__kind="tag").count() == 3
    assert audited.filter(detail__kind="manifest", detail__run=run.pk).count() == 3


def test_days_since_last_push_and_pull(project) -> None:
    push_tags("ret/app", {"new": 1, "mid": 5, "old": 20, "pulled": 30})
    Tag.objects.filter(name="pulled").update(pulled_at=timezone.now() - timedelta(days=2))
    apply(project, [{"nDaysSinceLastPush": 7}, {"nDaysSinceLastPull": 3}])
    assert tags("ret/app") == ["mid", "new", "pulled"]


def test_latest_pulled_n_ranks_pulled_artifacts_first(project) -> None:
    push_tags("ret/app", {"a": 1, "b": 1, "c": 3, "d": 2})
    Tag.objects.filter(name="a").update(pulled_at=timezone.now() - timedelta(days=9))
    Tag.objects.filter(name="b").update(pulled_at=timezone.now() - timedelta(days=1))
    apply(project, [{"latestPulledN": 1}])
    assert tags("ret/app") == ["b"]


def test_latest_pulled_n_fills_up_with_the_newest_never_pulled(project) -> None:
    push_tags("ret/app", {"a": 1, "c": 3, "d": 2})
    Tag.objects.filter(name="a").update(pulled_at=timezone.now() - timedelta(days=9))
    apply(project, [{"latestPulledN": 2}])
    assert tags("ret/app") == ["a", "d"]


def test_a_pull_by_digest_counts(project) -> None:
    # Deployments pinned by digest pull no tag: the artifact was pulled all the same.
    pinned = push_tags("ret/app", {"pinned": 40, "idle": 40})["pinned"]
    Manifest.objects.filter(digest=pinned).update(pulled_at=timezone.now() - timedelta(days=1))
    apply(project, [{"nDaysSinceLastPull": 7}])
    assert tags("ret/app") == ["pinned"]


def test_patterns_scope_rules_and_rules_add_up(project) -> None:
    push_tags("ret/app", {"v1": 3, "v2": 2, "dev": 1, "latest": 1})
    push_tags("ret/other", {"v1": 30, "dev": 30})
    apply(
        project,
        [
            {"repository": "app", "tag": "v*", "latestPushedK": 1},
            {"repository": "{app,nothing}", "tag": "latest", "always": True},
        ],
    )
    # In app, a tag no rule keeps goes (dev); other is in no rule's scope, untouched.
    assert tags("ret/app") == ["latest", "v2"]
    assert tags("ret/other") == ["dev", "v1"]


def test_a_tag_moved_to_other_bytes_forgets_its_pulls(project) -> None:
    first = push_image("ret/app", "v1")
    Tag.objects.filter(name="v1").update(pulled_at=timezone.now())
    put_manifest("ret/app", "v1", json.loads(first.body))  # the same bytes: still pulled
    assert Tag.objects.get(name="v1").pulled_at is not None
    push_image("ret/app", "v1")  # other bytes: they were never pulled
    assert Tag.objects.get(name="v1").pulled_at is None
    apply(project, [{"nDaysSinceLastPull": 7}])
    assert tags("ret/app") == []


def test_a_dry_run_reports_and_deletes_nothing(project) -> None:
    push_tags("ret/app", {"a": 3, "b": 2, "c": 1})
    run = apply(project, [{"latestPushedK": 1}], dry_run=True)
    assert tags("ret/app") == ["a", "b", "c"]
    assert Manifest.objects.count() == 3
    assert (run.dry_run, run.retained, run.deleted, run.manifests_deleted) == (True, 1, 2, 2)
    assert "delete ret/app:a" in run.log and "would delete 2 tags" in run.log
    assert not AuditEntry.objects.filter(detail__by="retention").exists()


def test_immutable_tags_are_never_deleted(project) -> None:
    push_tags("ret/app", {"v1": 100, "v2": 50, "dev": 1})
    immutable_rule_create(project=project, repository_pattern="**", tag_pattern="v1", actor=SYSTEM)
    apply(project, [{"latestPushedK": 0}])
    assert tags("ret/app") == ["v1"]


def test_an_artifact_is_kept_or_deleted_with_all_its_tags(project) -> None:
    # Each release is pushed under several tags (1.4.2, 1.4, 1, latest), as CI does.
    releases = {}
    for version in ("1.2.0", "1.3.0", "1.4.0", "1.4.2"):
        image = push_image("ret/app", version)
        major, minor, _ = version.split(".")
        for alias in (f"{major}.{minor}", major, "latest"):
            put_manifest("ret/app", alias, json.loads(image.body))
        releases[version] = image.digest
    for version, days in (("1.2.0", 30), ("1.3.0", 20), ("1.4.0", 10), ("1.4.2", 1)):
        when = timezone.now() - timedelta(days=days)
        Manifest.objects.filter(digest=releases[version]).update(pushed_at=when)
        Tag.objects.filter(manifest__digest=releases[version]).update(pushed_at=when)

    run = apply(project, [{"tag": "*.*.*", "latestPushedK": 2}])

    # 1.4.2 keeps its aliases although the rule's pattern matches none of them.
    assert tags("ret/app") == ["1", "1.4", "1.4.0", "1.4.2", "latest"]
    left = set(Manifest.objects.values_list("digest", flat=True))
    assert left == {releases["1.4.0"], releases["1.4.2"]}
    assert (run.retained, run.deleted, run.manifests_deleted) == (5, 4, 2)


def test_index_children_and_referrers_follow_their_parent(project) -> None:
    children = [push_image("ret/app", "@"), push_image("ret/app", "@")]
    kept_index = push_index("ret/app", "kept", children)
    gone_children = [push_image("ret/app", "@")]
    gone_index = push_index("ret/app", "gone", gone_children)
    kept_signature = push_referrer("ret/app", kept_index)
    gone_signature = push_referrer("ret/app", gone_index)
    shared = push_index("ret/app", "shared-gone", [children[0]])
    age("ret/app", {"gone": 10, "shared-gone": 10})
    run = apply(project, [{"nDaysSinceLastPush": 5}])
    left = set(Manifest.objects.values_list("digest", flat=True))
    assert {kept_index.digest, kept_signature.digest, *(c.digest for c in children)} <= left
    for doomed in (gone_index, gone_signature, shared, *gone_children):
        assert doomed.digest not in left
    assert run.manifests_deleted == 4


def test_rules_are_checked(project) -> None:
    for rules in (
        {"latestPushedK": 1},
        [{"tag": "**"}],
        [{"latestPushedK": 1, "always": True}],
        [{"latestPushedK": -1}],
        [{"latestPushedK": "3"}],
        [{"tag": "{a", "always": True}],
        [{"keepAll": True}],
    ):
        with pytest.raises(RuleInvalid):
            retention_policy_set(project=project, rules=rules, schedule="", actor=SYSTEM)
    with pytest.raises(RuleInvalid):
        retention_policy_set(project=project, rules=[], schedule="every day", actor=SYSTEM)


# --- over HTTP and the command line ---------------------------------------------------------


def finished_run(registry, location: str, timeout: float = 30) -> dict:
    """Poll the run at ``location`` (as the developer) until a worker has finished it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = call(registry, "GET", location.removeprefix("/api/v2.0/"), "dev")
        assert response.status_code == 200, response.text
        if response.json()["status"] not in ("pending", "running"):
            return response.json()
        time.sleep(0.1)
    raise AssertionError(f"{location} did not finish")


def test_the_api_sets_the_policy_and_runs_it(registry, team, gc_worker) -> None:
    for tag in ("a", "b", "c"):
        push_over_http(registry, "team/app", tag)
    url = "projects/team/retention"
    unset = call(registry, "POST", f"{url}/executions", "pat", json={})
    assert unset.status_code == 404 and "no retention policy" in unset.text
    assert call(registry, "GET", url, "dev").json() == {"rules": [], "schedule": ""}
    policy = {"rules": [{"repository": "**", "tag": "**", "latestPushedK": 1}], "schedule": ""}
    assert call(registry, "PUT", url, "gus", json=policy).status_code == 403
    bad = call(registry, "PUT", url, "pat", json={"rules": [{"keep": 1}]})
    assert bad.status_code == 400 and "exactly one of" in bad.json()["errors"][0]["message"]
    put = call(registry, "PUT", url, "pat", json={**policy, "schedule": "0 3 * * *"})
    assert put.status_code == 200, put.text
    assert put.json()["rules"][0]["latestPushedK"] == 1
    assert call(registry, "GET", url, "dev").json()["schedule"] == "0 3 * * *"

    assert call(registry, "POST", f"{url}/executions", "gus", json={}).status_code == 403
    dry = call(registry, "POST", f"{url}/executions", "pat", json={"dry_run": True})
    assert dry.status_code == 201, dry.text
    assert dry.headers["Location"] == f"/api/v2.0/{url}/executions/{dry.json()['id']}"
    done = finished_run(registry, dry.headers["Location"])
    assert (done["status"], done["dry_run"], done["deleted"], done["retained"]) == (
        "succeeded",
        True,
        2,
        1,
    )
    assert len(Tag.objects.filter(repository__name="team/app")) == 3
    real = call(registry, "POST", f"{url}/executions", "pat", json={})
    assert real.status_code == 201 and real.json()["status"] in ("pending", "running")
    assert finished_run(registry, real.headers["Location"])["status"] == "succeeded"
    assert tags("team/app") == ["c"]
    runs = call(registry, "GET", f"{url}/executions", "dev")
    assert runs.status_code == 200 and runs.headers["X-Total-Count"] == "2"
    assert [r["dry_run"] for r in runs.json()] == [False, True]  # newest first
    assert call(registry, "GET", f"{url}/executions", "anonymous").status_code == 401
    assert call(registry, "GET", f"{url}/executions", "out").status_code == 404
    assert call(registry, "GET", f"{url}/executions/{real.json()['id']}", "gus").status_code == 403
    assert call(registry, "GET", f"{url}/executions/{real.json()['id'] + 9}").status_code == 404


def test_a_pull_by_digest_over_v2_keeps_an_artifact(registry, team) -> None:
    pinned = push_over_http(registry, "team/app", "pinned")
    push_over_http(registry, "team/app", "idle")
    age("team/app", {"pinned": 40, "idle": 40})
    pulled = authed.get(
        f"{registry.url}/v2/team/app/manifests/{pinned.digest}", headers={"Accept": OCI_MANIFEST}
    )
    assert pulled.status_code == 200
    # Pull times are written in batches by the server, within seconds.
    assert wait_until(lambda: Manifest.objects.get(digest=pinned.digest).pulled_at is not None)
    apply(Project.objects.get(name="team"), [{"nDaysSinceLastPull": 7}])
    assert tags("team/app") == ["pinned"]


def test_the_command_line_runs_it(registry, team) -> None:
    for tag in ("a", "b"):
        push_over_http(registry, "team/app", tag)
    Tag.objects.filter(name="a").update(pushed_at=timezone.now() - timedelta(days=1))
    retention_policy_set(project=team, rules=[{"latestPushedK": 1}], schedule="", actor=SYSTEM)
    output = harborpy_command(registry, "retention", "run", "team", "--dry-run")
    assert "retain team/app:b" in output and "delete team/app:a" in output
    assert tags("team/app") == ["a", "b"]
    harborpy_command(registry, "retention", "run", "team")
    assert tags("team/app") == ["b"]
    assert RetentionRun.objects.filter(dry_run=False, deleted=1).count() == 1


def test_a_scheduled_policy_runs_once_in_its_minute(project, settings) -> None:
    from datetime import datetime

    from distribution.retention import retention_run_execute, retention_scheduled
    from distribution.tasks import run_scheduled_retention
    from harborpy.celery import beat_schedule

    assert beat_schedule(settings)["tag-retention"]["task"] == "distribution.retention_scheduled"
    push_tags("ret/app", {"a": 2, "b": 1})
    retention_policy_set(
        project=project, rules=[{"latestPushedK": 1}], schedule="30 3 * * *", actor=SYSTEM
    )
    at = timezone.make_aware(datetime(2026, 11, 30, 3, 30, 12))
    assert retention_scheduled(now=at.replace(minute=29)) == []
    assert tags("ret/app") == ["a", "b"]
    [run] = retention_scheduled(now=at)
    assert (run.trigger, run.status, run.dry_run) == ("schedule", "pending", False)
    assert tags("ret/app") == ["a", "b"]  # a worker carries it out (tests/retention/test_jobs.py)
    retention_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert (run.status, run.deleted) == ("succeeded", 1)
    assert tags("ret/app") == ["b"]
    assert retention_scheduled(now=at.replace(second=50)) == []  # the same minute: once
    assert RetentionRun.objects.count() == 1
    run_scheduled_retention()  # the task Celery beat sends, now: not 03:30, nothing runs
    assert RetentionRun.objects.count() == 1
    with pytest.raises(RuleInvalid):
        retention_policy_set(project=project, rules=[], schedule="61 * * * *", actor=SYSTEM)
    retention_policy_set(project=project, rules=[], schedule="@daily", actor=SYSTEM)
