"""Routes of the console.  Repository names contain slashes: their routes anchor on the
fixed suffix after the name, and a digest (with its colon) cannot be part of a name."""

from django.urls import path, re_path

from .views import admin, artifacts, audit_rotation, members, policy, projects, replication, robots

app_name = "console"

PROJECT = "projects/<str:name>/"
REPO = r"^repositories/(?P<name>[a-z0-9][a-z0-9._/-]*?)"
DIGEST = r"(?P<digest>[a-z0-9]+:[a-fA-F0-9]+)"

urlpatterns = [
    path("", projects.home, name="home"),
    path("projects/", projects.project_list, name="projects"),
    path(PROJECT, projects.project_repositories, name="project"),
    path(PROJECT + "logs/", projects.project_logs, name="project_logs"),
    path(PROJECT + "settings/", projects.project_settings, name="project_settings"),
    path(PROJECT + "settings/quota/", projects.project_quota, name="project_quota"),
    path(PROJECT + "members/", members.member_list, name="project_members"),
    path(PROJECT + "members/add/", members.member_add, name="member_add"),
    path(PROJECT + "members/change/", members.member_change, name="member_change"),
    path(PROJECT + "members/remove/", members.member_remove, name="member_remove"),
    path(PROJECT + "policy/", policy.policy_page, name="project_policy"),
    path(PROJECT + "policy/retention/", policy.retention_set_page, name="retention_set"),
    path(PROJECT + "policy/retention/run/", policy.retention_run_page, name="retention_run"),
    path(PROJECT + "policy/immutable/add/", policy.immutable_add_page, name="immutable_add"),
    path(
        PROJECT + "policy/immutable/remove/", policy.immutable_remove_page, name="immutable_remove"
    ),
    path(PROJECT + "robots/", robots.robot_list_page, name="project_robots"),
    path(PROJECT + "robots/create/", robots.robot_create_page, name="robot_create"),
    path(
        PROJECT + "robots/<int:robot_id>/refresh/", robots.robot_refresh_page, name="robot_refresh"
    ),
    path(
        PROJECT + "robots/<int:robot_id>/disable/", robots.robot_disable_page, name="robot_disable"
    ),
    path(PROJECT + "robots/<int:robot_id>/delete/", robots.robot_delete_page, name="robot_delete"),
    re_path(REPO + r"/$", artifacts.repository_page, name="repository"),
    re_path(REPO + rf"/artifacts/{DIGEST}/$", artifacts.artifact_page, name="artifact"),
    re_path(
        REPO + rf"/artifacts/{DIGEST}/delete/$", artifacts.artifact_delete, name="artifact_delete"
    ),
    re_path(REPO + rf"/artifacts/{DIGEST}/tags/$", artifacts.tag_add, name="tag_add"),
    re_path(REPO + rf"/artifacts/{DIGEST}/tags/remove/$", artifacts.tag_remove, name="tag_remove"),
    path("administration/users/", admin.users_page, name="admin_users"),
    path("administration/users/<int:user_id>/admin/", admin.user_admin_page, name="user_admin"),
    path("administration/users/<int:user_id>/active/", admin.user_active_page, name="user_active"),
    path("administration/groups/", admin.groups_page, name="admin_groups"),
    path("administration/settings/", admin.settings_page, name="admin_settings"),
    path("administration/audit/", admin.audit_page, name="admin_audit"),
    path(
        "administration/audit/rotation/",
        audit_rotation.rotation_page,
        name="admin_audit_rotation",
    ),
    path(
        "administration/audit/rotation/schedule/",
        audit_rotation.rotation_schedule_page,
        name="admin_audit_rotation_schedule",
    ),
    path("administration/gc/", admin.gc_page, name="admin_gc"),
    *replication.urlpatterns,
    path("administration/gc/schedule/", admin.gc_schedule_page, name="admin_gc_schedule"),
]
