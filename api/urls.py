"""Routes of the REST API, mounted at /api/v2.0/."""

from django.urls import path

from . import apply, projects, system, users

P = "projects/<str:project>"

urlpatterns = [
    path("projects", projects.ProjectListView.as_view()),
    path(P, projects.ProjectView.as_view()),
    path(f"{P}/summary", projects.ProjectSummaryView.as_view()),
    path(f"{P}/members", projects.MemberListView.as_view()),
    path(f"{P}/members/<int:member_id>", projects.MemberView.as_view()),
    path("users/current", users.CurrentUserView.as_view()),
    path("users/current/cli_secret", users.CliSecretView.as_view()),
    path("apply", apply.ApplyView.as_view()),
    path("systeminfo", system.SystemInfoView.as_view()),
    path("health", system.HealthView.as_view()),
]
