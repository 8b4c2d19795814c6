"""A project's robot accounts: create (the secret shown once), refresh, disable, delete."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from rbac.exceptions import RobotInvalid
from rbac.models import Robot
from rbac.robots import (
    ROBOT_ACTIONS,
    robot_create,
    robot_delete,
    robot_refresh_secret,
    robot_set_disabled,
)
from rbac.selectors import robot_get, robot_list

from ..access import ProjectAccess, actor_of, console_page, project_access, registry_host
from ..forms import FieldInvalid, days_parse, flag


@console_page("GET")
def robot_list_page(request: HttpRequest, name: str) -> HttpResponse:
    access = project_access(request, name, "see_robots")
    context = {
        "access": access,
        "tab": "robots",
        "robots": robot_list(project=access.project),
        "actions": ROBOT_ACTIONS,
    }
    return render(request, "console/project_robots.html", context)


@console_page("POST")
def robot_create_page(request: HttpRequest, name: str) -> HttpResponse:
    """Create a robot; the answer is the one page that ever shows its secret."""
    access = project_access(request, name, "create_robot")
    actions = [a for a in request.POST.getlist("actions") if a in ROBOT_ACTIONS]
    try:
        robot, secret = robot_create(
            name=request.POST.get("name", "").strip(),
            permissions=[{"project": name, "actions": actions}] if actions else [],
            project=access.project,
            days=days_parse(request.POST.get("days", "")),
            description=request.POST.get("description", "").strip(),
            actor=actor_of(request),
            created_by=request.user,
        )
    except (RobotInvalid, FieldInvalid) as error:
        messages.error(request, str(error))
        return redirect("console:project_robots", name=name)
    return _secret_page(request, access, robot, secret, created=True)


@console_page("POST")
def robot_refresh_page(request: HttpRequest, name: str, robot_id: int) -> HttpResponse:
    """Give a robot a new secret (shown once); the old one stops working at once."""
    access = project_access(request, name, "change_robot")
    robot = _robot(access, robot_id)
    secret = robot_refresh_secret(robot=robot, actor=actor_of(request))
    return _secret_page(request, access, robot, secret, created=False)


@console_page("POST")
def robot_disable_page(request: HttpRequest, name: str, robot_id: int) -> HttpResponse:
    access = project_access(request, name, "change_robot")
    robot = _robot(access, robot_id)
    disabled = flag(request.POST, "disabled")
    robot_set_disabled(robot=robot, disabled=disabled, actor=actor_of(request))
    messages.success(request, f"{robot.name} is {'disabled' if disabled else 'enabled'}.")
    return redirect("console:project_robots", name=name)


@console_page("POST")
def robot_delete_page(request: HttpRequest, name: str, robot_id: int) -> HttpResponse:
    access = project_access(request, name, "delete_robot")
    robot = _robot(access, robot_id)
    robot_delete(robot=robot, actor=actor_of(request))
    messages.success(request, f"{robot.name} was deleted.")
    return redirect("console:project_robots", name=name)


def _robot(access: ProjectAccess, robot_id: int) -> Robot:
    robot = robot_get(project=access.project, robot_id=robot_id)
    if robot is None:
        raise Http404("no such robot in this project")
    return robot


def _secret_page(
    request: HttpRequest, access: ProjectAccess, robot: Robot, secret: str, *, created: bool
) -> HttpResponse:
    context = {
        "access": access,
        "tab": "robots",
        "robot": robot,
        "secret": secret,
        "created": created,
        "host": registry_host(request),
    }
    return render(request, "console/robot_secret.html", context)
