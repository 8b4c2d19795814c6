"""A project's Policy tab: tag retention (rules, schedule, runs on the worker) and immutability.

Who sees and does what is the role table's: developers and up see and run
retention; maintainers and up also see and change the immutability rules.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from distribution.exceptions import ImmutableRuleUnknown, RuleInvalid
from distribution.immutability import immutable_rule_create, immutable_rule_delete
from distribution.models import RetentionStatus
from distribution.retention import (
    RETENTION_ACTIONS,
    retention_policy_get,
    retention_policy_set,
    retention_runs,
    retention_start,
)

from ..access import actor_of, console_page, project_access
from ..forms import flag

RECENT_RUNS = 10
ACTIVE = (RetentionStatus.PENDING, RetentionStatus.RUNNING)


def rule_text(rule: dict[str, Any]) -> str:
    """What a retention rule keeps, in words: "keep the 3 most recently pushed artifacts"."""
    for action, words in RETENTION_ACTIONS.items():
        if action in rule:
            return words if action == "always" else words.replace(" N ", f" {rule[action]} ")
    return "?"


@console_page("GET")
def policy_page(request: HttpRequest, name: str) -> HttpResponse:
    access = project_access(request, name, "see_retention")
    project = access.project
    policy = retention_policy_get(project=project)
    runs = list(retention_runs(project=project)[:RECENT_RUNS])
    rules = [{**rule, "text": rule_text(rule)} for rule in (policy.rules if policy else [])]
    context = {
        "access": access,
        "tab": "policy",
        "policy": policy,
        "rules": rules,
        "rules_json": json.dumps(policy.rules if policy else [], indent=1),
        "actions": RETENTION_ACTIONS,
        "runs": runs,
        "active": any(run.status in ACTIVE for run in runs),
        "immutable": (
            list(project.immutable_rules.order_by("id")) if access.can["see_immutable"] else []
        ),
    }
    return render(request, "console/project_policy.html", context)


@console_page("POST")
def retention_set_page(request: HttpRequest, name: str) -> HttpResponse:
    """Replace the retention rules (a JSON list, as the API takes them) and the schedule."""
    access = project_access(request, name, "change_retention")
    try:
        try:
            rules = json.loads(request.POST.get("rules", "") or "[]")
        except ValueError:
            raise RuleInvalid("rules: a JSON list of rules") from None
        retention_policy_set(
            project=access.project,
            rules=rules,
            schedule=request.POST.get("schedule", ""),
            actor=actor_of(request),
        )
    except RuleInvalid as error:
        messages.error(request, str(error))
    else:
        messages.success(request, "The retention policy was saved.")
    return redirect("console:project_policy", name=name)


@console_page("POST")
def retention_run_page(request: HttpRequest, name: str) -> HttpResponse:
    """Start a run (or a dry run) of the policy on a worker."""
    access = project_access(request, name, "run_retention")
    policy = retention_policy_get(project=access.project)
    if policy is None:
        messages.error(request, f"{name} has no retention policy; save one first.")
        return redirect("console:project_policy", name=name)
    dry_run = flag(request.POST, "dry_run")
    run = retention_start(policy=policy, dry_run=dry_run, actor=actor_of(request))
    kind = "dry run" if dry_run else "run"
    messages.success(request, f"Retention {kind} {run.pk} was started.")
    return redirect("console:project_policy", name=name)


@console_page("POST")
def immutable_add_page(request: HttpRequest, name: str) -> HttpResponse:
    access = project_access(request, name, "add_immutable")
    try:
        rule = immutable_rule_create(
            project=access.project,
            repository_pattern=request.POST.get("repository_pattern", "").strip() or "**",
            tag_pattern=request.POST.get("tag_pattern", "").strip(),
            actor=actor_of(request),
        )
    except RuleInvalid as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Tags {rule.tag_pattern} in {rule.repository_pattern} are now immutable."
        )
    return redirect("console:project_policy", name=name)


@console_page("POST")
def immutable_remove_page(request: HttpRequest, name: str) -> HttpResponse:
    access = project_access(request, name, "remove_immutable")
    try:
        rule_id = int(request.POST.get("rule", ""))
        immutable_rule_delete(project=access.project, rule_id=rule_id, actor=actor_of(request))
    except (ValueError, ImmutableRuleUnknown):
        messages.error(request, "No such immutability rule.")
    else:
        messages.success(request, "The immutability rule was removed.")
    return redirect("console:project_policy", name=name)
