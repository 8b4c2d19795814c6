"""A project's members tab: users and groups (and robots) with a role; add, change, remove."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from rbac.bindings import binding_remove, binding_set, bindings_of, role_parse, subject_parse
from rbac.exceptions import BindingInvalid
from rbac.roles import Role

from ..access import actor_of, console_page, project_access

KINDS = ("user", "group")


@console_page("GET")
def member_list(request: HttpRequest, name: str) -> HttpResponse:
    access = project_access(request, name, "see_members")
    members = [
        {
            "subject": subject,
            "kind": subject.partition(":")[0],
            "name": subject.partition(":")[2],
            "role": role,
        }
        for subject, role in sorted(bindings_of(access.project).items())
    ]
    context = {"access": access, "tab": "members", "members": members, "roles": list(Role)}
    return render(request, "console/project_members.html", context)


@console_page("POST")
def member_add(request: HttpRequest, name: str) -> HttpResponse:
    """Give a user or a group a role in the project."""
    access = project_access(request, name, "add_member")
    kind = request.POST.get("kind", "")
    return _bind(
        request,
        access.project,
        f"{kind}:{request.POST.get('name', '').strip()}",
        valid=kind in KINDS,
    )


@console_page("POST")
def member_change(request: HttpRequest, name: str) -> HttpResponse:
    """Change the role of a subject that is a member already."""
    access = project_access(request, name, "change_member")
    subject = request.POST.get("subject", "")
    return _bind(request, access.project, subject, valid=subject in bindings_of(access.project))


@console_page("POST")
def member_remove(request: HttpRequest, name: str) -> HttpResponse:
    access = project_access(request, name, "remove_member")
    try:
        subject = subject_parse(request.POST.get("subject", ""), project=name)
    except BindingInvalid as error:
        messages.error(request, str(error))
    else:
        if binding_remove(project=access.project, subject=subject, actor=actor_of(request)):
            messages.success(request, f"{subject} is no longer a member.")
    return redirect("console:project_members", name=name)


def _bind(request: HttpRequest, project, text: str, *, valid: bool) -> HttpResponse:
    try:
        if not valid:
            raise BindingInvalid(f"cannot give {text!r} a role here")
        subject = subject_parse(text, project=project.name)
        role = role_parse(request.POST.get("role", ""))
        binding_set(project=project, subject=subject, role=role, actor=actor_of(request))
    except BindingInvalid as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"{subject} is now {role.value} in {project.name}.")
    return redirect("console:project_members", name=project.name)
