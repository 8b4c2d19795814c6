"""Declarative projects and role bindings: ``harborpy apply`` and ``POST /api/v2.0/apply``.

A file holds one or more YAML documents, each describing one project::

    project:
      name: production
      public: false             # optional: false for a new project, else unchanged
      quota_bytes: 10737418240  # optional: null is no limit; else unchanged
      role_bindings:            # optional: when given, the complete set
        - {subject: dev-team, role: developer}

``documents_apply`` validates every document, computes the changes against the
database, authorizes each one, and then makes all of them in one transaction,
or none when ``dry_run``.  A file that matches the database yields no changes
and writes nothing, not even an audit entry.  docs/apply.md is the user's guide.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import yaml
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from audit.services import Actor
from projects.exceptions import ProjectError
from projects.models import Project
from projects.services import check_project_name, project_update

from .bindings import (
    Subject,
    binding_remove,
    binding_set,
    binding_subject_filter,
    bindings_of,
    project_create_owned,
    role_parse,
    subject_parse,
)
from .exceptions import ApplyDenied, ApplyInvalid, BindingInvalid
from .policy import Kind, Principal, System, authorize
from .roles import Act, Res, Role

PROJECT_KEYS = ("name", "public", "quota_bytes", "role_bindings")
BINDING_KEYS = ("subject", "role")
_KEEP: Any = object()  # a setting the document leaves as it is


def system_principal() -> Principal:
    """The principal of the command line: the system itself, with an admin's rights."""
    return Principal(kind=Kind.USER, name="system", is_admin=True)


# --- the changes --------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectCreate:
    project: str
    public: bool
    quota_bytes: int | None
    owner: str | None  # the creating user, who becomes projectAdmin

    kind: ClassVar[str] = "project.create"

    @property
    def text(self) -> str:
        visibility = "public" if self.public else "private"
        quota = "" if self.quota_bytes is None else f", quota {self.quota_bytes} bytes"
        return f"+ project {self.project} ({visibility}{quota})"


@dataclass(frozen=True)
class ProjectUpdate:
    project: str
    field: str  # public or quota_bytes
    previous: Any
    value: Any

    kind: ClassVar[str] = "project.update"
    permission: ClassVar[tuple[str, str]] = (Res.PROJECT, Act.UPDATE)

    @property
    def text(self) -> str:
        old, new = json.dumps(self.previous), json.dumps(self.value)
        return f"~ project {self.project} {self.field}: {old} → {new}"


@dataclass(frozen=True)
class BindingCreate:
    project: str
    subject: Subject
    role: Role

    kind: ClassVar[str] = "binding.create"
    permission: ClassVar[tuple[str, str]] = (Res.MEMBER, Act.CREATE)

    @property
    def text(self) -> str:
        return f"+ {self.subject} {self.role} in {self.project}"


@dataclass(frozen=True)
class BindingUpdate:
    project: str
    subject: Subject
    previous: Role
    role: Role

    kind: ClassVar[str] = "binding.update"
    permission: ClassVar[tuple[str, str]] = (Res.MEMBER, Act.UPDATE)

    @property
    def text(self) -> str:
        return f"~ {self.subject} {self.previous} → {self.role} in {self.project}"


@dataclass(frozen=True)
class BindingDelete:
    project: str
    subject: Subject
    previous: Role

    kind: ClassVar[str] = "binding.delete"
    permission: ClassVar[tuple[str, str]] = (Res.MEMBER, Act.DELETE)

    @property
    def text(self) -> str:
        return f"- {self.subject} {self.previous} in {self.project}"


Change = ProjectCreate | ProjectUpdate | BindingCreate | BindingUpdate | BindingDelete


def change_as_dict(change: Change) -> dict[str, Any]:
    """A change for the API: its kind, its text, and its fields (subjects as text)."""
    values = {f.name: getattr(change, f.name) for f in fields(change)}
    values = {k: str(v) if isinstance(v, Subject) else v for k, v in values.items()}
    return {"kind": change.kind, "text": change.text, **values}


# --- reading the file -----------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last one)."""


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        with contextlib.suppress(TypeError):  # an unhashable key: construct_mapping says so
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def documents_parse(text: str, *, json_body: bool = False) -> list[Any]:
    """The documents of a YAML text (``---`` separated), or of a JSON object or list.

    Empty YAML documents are dropped.  ApplyInvalid when the text does not parse.
    """
    if json_body:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ApplyInvalid([f"not valid JSON: {error}"]) from None
        return data if isinstance(data, list) else [data]
    try:
        documents = list(yaml.load_all(text, Loader=_Loader))
    except yaml.YAMLError as error:
        raise ApplyInvalid([f"not valid YAML: {error}"]) from None
    return [document for document in documents if document is not None]


@dataclass(frozen=True)
class _Entry:
    where: str
    subject: str
    role: Role


@dataclass(frozen=True)
class _Spec:
    """One document, checked for shape: what it asks of one project."""

    where: str
    name: str
    public: bool | None
    quota_bytes: Any  # int, None (no limit) or _KEEP
    bindings: tuple[_Entry, ...] | None  # None: leave the bindings alone


def _spec_parse(document: Any, number: int, problems: list[str]) -> _Spec | None:
    where = f"document {number}"
    if not isinstance(document, dict) or "project" not in document:
        problems.append(f"{where}: expected a mapping with the key 'project'")
        return None
    if len(document) > 1:
        unknown = ", ".join(repr(key) for key in document if key != "project")
        problems.append(f"{where}: unknown key {unknown} (only 'project' is allowed)")
    body = document["project"]
    if not isinstance(body, dict):
        problems.append(f"{where}: 'project' must be a mapping")
        return None
    name = body.get("name")
    if not isinstance(name, str):
        problems.append(f"{where}: 'name' is required and must be a string")
        return None
    try:
        check_project_name(name)
    except ProjectError as error:
        problems.append(f"{where}: {error}")
        return None
    where = f"{where} (project {name!r})"
    unknown_keys = [key for key in body if key not in PROJECT_KEYS]
    if unknown_keys:
        unknown = ", ".join(repr(key) for key in unknown_keys)
        problems.append(f"{where}: unknown key {unknown} (keys are {', '.join(PROJECT_KEYS)})")
    public = body.get("public")
    if public is not None and not isinstance(public, bool):
        problems.append(f"{where}: 'public' must be true or false")
    quota = body.get("quota_bytes", _KEEP)
    if quota not in (_KEEP, None) and (
        isinstance(quota, bool) or not isinstance(quota, int) or quota < 0
    ):
        problems.append(
            f"{where}: 'quota_bytes' must be a non-negative number of bytes, or null for no limit"
        )
    bindings = None
    if "role_bindings" in body:
        bindings = _bindings_parse(body["role_bindings"], where, problems)
    return _Spec(where, name, public, quota, bindings)


def _bindings_parse(entries: Any, where: str, problems: list[str]) -> tuple[_Entry, ...]:
    if not isinstance(entries, list):
        problems.append(
            f"{where}: 'role_bindings' must be a list (an empty list removes every binding)"
        )
        return ()
    parsed = []
    for number, entry in enumerate(entries, 1):
        at = f"{where}, role_bindings entry {number}"
        if not isinstance(entry, dict):
            problems.append(f"{at}: expected a mapping with 'subject' and 'role'")
            continue
        unknown = [key for key in entry if key not in BINDING_KEYS]
        if unknown:
            keys = ", ".join(repr(key) for key in unknown)
            problems.append(f"{at}: unknown key {keys} (keys are subject, role)")
            continue
        subject, role = entry.get("subject"), entry.get("role")
        if not isinstance(subject, str) or not isinstance(role, str):
            problems.append(f"{at}: 'subject' and 'role' are required and must be strings")
            continue
        try:
            parsed.append(_Entry(f"{at} ({subject})", subject, role_parse(role)))
        except BindingInvalid as error:
            problems.append(f"{at} ({subject}): {error}")
    return tuple(parsed)


# --- planning, authorizing, applying --------------------------------------------------------


@dataclass
class _Plan:
    spec: _Spec
    project: Project | None  # None: to be created
    changes: list[Change]


def documents_apply(
    *, documents: list[Any], principal: Principal, actor: Actor, dry_run: bool = False
) -> list[Change]:
    """Make the database match ``documents``; return the changes, in the order made.

    Everything is checked first: ApplyInvalid lists every malformed entry and
    unknown user or robot, ApplyDenied every change the principal may not make;
    either way nothing is written.  The changes are then made in one
    transaction through the audited services, or not at all when ``dry_run``.
    A group named by a binding is created when the binding is (LDAP and SSO
    groups hold roles before anyone of them logs in).
    """
    problems: list[str] = []
    parsed = [_spec_parse(document, n, problems) for n, document in enumerate(documents, 1)]
    specs = [spec for spec in parsed if spec is not None]
    if not documents:
        problems.append("no documents: expected at least one 'project:' document")
    _check_unique(specs, problems)
    creator = principal.name if principal.kind is Kind.USER and principal.user_id else None
    # A dry run only reads (on SQLite a transaction would lock the whole database).
    atomic = contextlib.nullcontext() if dry_run else transaction.atomic()
    with atomic:
        if not dry_run:
            # Concurrent applies naming one project take turns; locking in one order
            # keeps two files naming the same projects from deadlocking.
            names = [spec.name for spec in specs]
            list(Project.objects.select_for_update().filter(name__in=names).order_by("pk"))
        plans = [_plan(spec, creator=creator, problems=problems) for spec in specs]
        if problems:
            raise ApplyInvalid(problems)
        denials = _authorize(principal, plans)
        if denials:
            raise ApplyDenied(denials)
        changes = [change for plan in plans for change in plan.changes]
        if not dry_run:
            _execute(plans, actor=actor)
    return changes


def _check_unique(specs: list[_Spec], problems: list[str]) -> None:
    seen: dict[str, _Spec] = {}
    for spec in specs:
        if spec.name in seen:
            problems.append(f"{spec.where}: the project is also in {seen[spec.name].where}")
        seen.setdefault(spec.name, spec)


def _plan(spec: _Spec, *, creator: str | None, problems: list[str]) -> _Plan:
    project = Project.objects.filter(name=spec.name).first()
    changes: list[Change] = []
    current: dict[str, Role] = {}
    if project is None:
        # The creator becomes projectAdmin unless the file lists the bindings in full.
        owner = creator if spec.bindings is None else None
        quota = None if spec.quota_bytes is _KEEP else spec.quota_bytes
        changes.append(ProjectCreate(spec.name, bool(spec.public), quota, owner))
        if owner is not None:
            changes.append(BindingCreate(spec.name, Subject("user", owner), Role.PROJECT_ADMIN))
    else:
        if spec.public is not None and spec.public != project.public:
            changes.append(ProjectUpdate(spec.name, "public", project.public, spec.public))
        if spec.quota_bytes is not _KEEP and spec.quota_bytes != project.quota_bytes:
            changes.append(
                ProjectUpdate(spec.name, "quota_bytes", project.quota_bytes, spec.quota_bytes)
            )
        current = {subject: Role(role) for subject, role in bindings_of(project).items()}
    if spec.bindings is not None:
        changes.extend(_binding_changes(spec.name, current, _resolve(spec, problems)))
    return _Plan(spec, project, changes)


def _subject_of(text: str) -> Subject:
    kind, _, name = text.partition(":")
    return Subject(kind, name)


def _resolve(spec: _Spec, problems: list[str]) -> dict[str, tuple[Subject, Role]]:
    """The file's bindings by subject; unknown users and robots, and repeats, are problems."""
    group_name_max = Group._meta.get_field("name").max_length or 150
    wanted: dict[str, tuple[Subject, Role]] = {}
    for entry in spec.bindings or ():
        try:
            subject = subject_parse(entry.subject, project=spec.name)
            if subject.kind != "group":
                binding_subject_filter(subject)  # users and robots must exist
            elif len(subject.name) > group_name_max:
                raise BindingInvalid(f"a group name has at most {group_name_max} characters")
        except BindingInvalid as error:
            problems.append(f"{entry.where}: {error}")
            continue
        if str(subject) in wanted:
            problems.append(f"{entry.where}: {subject} is listed twice")
            continue
        wanted[str(subject)] = (subject, entry.role)
    return wanted


def _binding_changes(
    project: str, current: dict[str, Role], wanted: dict[str, tuple[Subject, Role]]
) -> list[Change]:
    changes: list[Change] = []
    for key, (subject, role) in wanted.items():
        previous = current.get(key)
        if previous is None:
            changes.append(BindingCreate(project, subject, role))
        elif previous != role:
            changes.append(BindingUpdate(project, subject, previous, role))
    for key in sorted(current.keys() - wanted.keys()):
        changes.append(BindingDelete(project, _subject_of(key), current[key]))
    return changes


def _authorize(principal: Principal, plans: list[_Plan]) -> list[str]:
    """Every change the principal may not make, as a line naming the document."""
    denials = []
    for plan in plans:
        where, project = plan.spec.where, plan.project
        if project is None:
            # Creating a project includes giving it its first settings and bindings.
            decision = authorize(principal, (System.PROJECT, Act.CREATE))
            if not decision.allowed:
                denials.append(f"{where}: may not create the project: {decision.reason}")
            continue
        # Seeing the project, and its bindings when the file lists them, comes first:
        # the changes (and their denials) would show what the principal may not read.
        needs: list[tuple[str, str]] = [(Res.PROJECT, Act.READ)]
        if plan.spec.bindings is not None:
            needs.append((Res.MEMBER, Act.LIST))
        decisions = [authorize(principal, need, project) for need in needs]
        refused = next((d for d in decisions if not d.allowed), None)
        if refused is not None:
            denials.append(f"{where}: {refused.reason}")
            continue
        for change in plan.changes:
            assert not isinstance(change, ProjectCreate)
            decision = authorize(principal, change.permission, project)
            if not decision.allowed:
                denials.append(f"{where}: {change.text}: {decision.reason}")
    return denials


def _execute(plans: list[_Plan], *, actor: Actor) -> None:
    """Make the planned changes through the audited services (inside the caller's transaction)."""
    for plan in plans:
        project = plan.project
        for change in plan.changes:
            try:
                project = _make(change, project, actor=actor)
            except (ProjectError, BindingInvalid) as error:  # the database moved meanwhile
                raise ApplyInvalid([f"{plan.spec.where}: {change.text}: {error}"]) from None


def _make(change: Change, project: Project | None, *, actor: Actor) -> Project:
    if isinstance(change, ProjectCreate):
        owner = None
        if change.owner is not None:
            owner = get_user_model().objects.get(username=change.owner)
        # The owner's projectAdmin binding is made here; its own change then finds it done.
        return project_create_owned(
            name=change.project,
            public=change.public,
            quota_bytes=change.quota_bytes,
            owner=owner,
            actor=actor,
        )
    assert project is not None
    if isinstance(change, ProjectUpdate):
        return project_update(project=project, actor=actor, **{change.field: change.value})
    if isinstance(change, BindingDelete):
        binding_remove(project=project, subject=change.subject, actor=actor)
    else:
        binding_set(project=project, subject=change.subject, role=change.role, actor=actor)
    return project
