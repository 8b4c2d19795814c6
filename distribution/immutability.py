"""Tag immutability: rules per project, and the check every tag move or delete makes.

A tag covered by an enabled rule cannot point at another manifest, nor be
deleted (by itself, with its artifact or with its repository).  Pushing the
same manifest to it again is allowed.  Services raise ``TagImmutable``.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from audit.services import Actor, audit_record
from projects.models import Project

from .exceptions import ImmutableRuleUnknown, RuleInvalid, TagImmutable
from .models import ImmutableRule, Repository
from .patterns import PatternInvalid, glob_check, glob_match


def short_name(repository_name: str) -> str:
    """The repository's name inside its project (``app`` of ``library/app``)."""
    return repository_name.partition("/")[2]


def immutable_tags(*, repository: Repository, names: Iterable[str]) -> list[str]:
    """Those of ``names`` in ``repository`` that an enabled rule makes immutable, sorted."""
    wanted = set(names)
    if not wanted:
        return []
    rules = list(
        ImmutableRule.objects.filter(project_id=repository.project_id, disabled=False).only(
            "repository_pattern", "tag_pattern"
        )
    )
    repo = short_name(repository.name)
    rules = [r for r in rules if glob_match(r.repository_pattern, repo)]
    return sorted(n for n in wanted if any(glob_match(r.tag_pattern, n) for r in rules))


def immutable_check(*, repository: Repository, names: Iterable[str], doing: str) -> None:
    """TagImmutable if any of these tags is immutable; ``doing`` says what was refused."""
    found = immutable_tags(repository=repository, names=names)
    if found:
        listed = ", ".join(f"{repository.name}:{n}" for n in found)
        raise TagImmutable(
            f"cannot {doing}: tag {listed} is immutable (an immutability rule of the project)",
            detail={"tags": found},
        )


def _patterns(repository_pattern: str, tag_pattern: str) -> tuple[str, str]:
    try:
        return glob_check(repository_pattern), glob_check(tag_pattern)
    except PatternInvalid as error:
        raise RuleInvalid(str(error)) from None


def immutable_rule_create(
    *,
    project: Project,
    repository_pattern: str,
    tag_pattern: str,
    disabled: bool = False,
    actor: Actor,
) -> ImmutableRule:
    """Add an immutability rule to the project (RuleInvalid for an unreadable glob)."""
    repository_pattern, tag_pattern = _patterns(repository_pattern, tag_pattern)
    with transaction.atomic():
        rule = ImmutableRule.objects.create(
            project=project,
            repository_pattern=repository_pattern,
            tag_pattern=tag_pattern,
            disabled=disabled,
        )
        _audit(rule, "created", actor)
    return rule


def immutable_rule_update(
    *,
    project: Project,
    rule_id: int,
    repository_pattern: str,
    tag_pattern: str,
    disabled: bool,
    actor: Actor,
) -> ImmutableRule:
    """Replace a rule's patterns and flag."""
    repository_pattern, tag_pattern = _patterns(repository_pattern, tag_pattern)
    with transaction.atomic():
        rule = _locked(project, rule_id)
        rule.repository_pattern, rule.tag_pattern = repository_pattern, tag_pattern
        rule.disabled = disabled
        rule.save()
        _audit(rule, "updated", actor)
    return rule


def immutable_rule_delete(*, project: Project, rule_id: int, actor: Actor) -> None:
    """Remove a rule; its tags become mutable again."""
    with transaction.atomic():
        rule = _locked(project, rule_id)
        _audit(rule, "deleted", actor)
        rule.delete()


def _locked(project: Project, rule_id: int) -> ImmutableRule:
    rule = ImmutableRule.objects.select_for_update().filter(project=project, pk=rule_id).first()
    if rule is None:
        raise ImmutableRuleUnknown(f"project {project.name!r} has no immutability rule {rule_id}")
    return rule


def _audit(rule: ImmutableRule, change: str, actor: Actor) -> None:
    audit_record(
        actor=actor,
        action="immutable_rule",
        resource=f"project:{rule.project.name}",
        detail={
            "change": change,
            "id": rule.pk,
            "repository": rule.repository_pattern,
            "tag": rule.tag_pattern,
            "disabled": rule.disabled,
        },
    )
