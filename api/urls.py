"""Routes of the REST API, mounted at /api/v2.0/."""

from django.urls import path, re_path

from . import (
    apply,
    artifacts,
    audit,
    configurations,
    groups,
    labels,
    openapi,
    projects,
    quotas,
    retention,
    robots,
    system,
    users,
)

P = "projects/<str:project>"
# A repository name may hold slashes: raw, or as %2F inside one segment (a%252Fb on the wire).
R = r"^projects/(?P<project>[^/]+)/repositories/(?P<repo>.+?)"
A = rf"{R}/artifacts/(?P<reference>[^/]+)"

urlpatterns = [
    path("projects", projects.ProjectListView.as_view()),
    path(P, projects.ProjectView.as_view()),
    path(f"{P}/summary", projects.ProjectSummaryView.as_view()),
    path(f"{P}/members", projects.MemberListView.as_view()),
    path(f"{P}/members/<int:member_id>", projects.MemberView.as_view()),
    path(f"{P}/robots", robots.ProjectRobotListView.as_view()),
    path(f"{P}/logs", audit.ProjectLogListView.as_view()),
    path(f"{P}/immutabletagrules", retention.ImmutableRuleListView.as_view()),
    path(f"{P}/immutabletagrules/<int:rule_id>", retention.ImmutableRuleView.as_view()),
    path(f"{P}/retention", retention.RetentionPolicyView.as_view()),
    path(f"{P}/retention/executions", retention.RetentionRunListView.as_view()),
    path("robots", robots.RobotListView.as_view()),
    path("robots/<int:robot_id>", robots.RobotView.as_view()),
    path("robots/<int:robot_id>/secret", robots.RobotSecretView.as_view()),
    path("users", users.UserListView.as_view()),
    path(f"{P}/repositories", artifacts.RepositoryListView.as_view()),
    re_path(rf"{A}/tags/(?P<tag>[^/]+)$", artifacts.TagView.as_view()),
    re_path(rf"{A}/tags$", artifacts.TagListView.as_view()),
    re_path(rf"{A}/labels/(?P<label_id>[0-9]+)$", artifacts.ArtifactLabelView.as_view()),
    re_path(rf"{A}/labels$", artifacts.ArtifactLabelsView.as_view()),
    re_path(rf"{A}$", artifacts.ArtifactView.as_view()),
    re_path(rf"{R}/artifacts$", artifacts.ArtifactListView.as_view()),
    re_path(rf"{R}$", artifacts.RepositoryView.as_view()),
    path("labels", labels.LabelListView.as_view()),
    path("labels/<int:label_id>", labels.LabelView.as_view()),
    path("users/current", users.CurrentUserView.as_view()),
    path("users/current/cli_secret", users.CliSecretView.as_view()),
    path("users/search", users.UserSearchView.as_view()),
    path("users/<int:user_id>", users.UserView.as_view()),
    path("users/<int:user_id>/sysadmin", users.UserSysAdminView.as_view()),
    path("users/<int:user_id>/password", users.UserPasswordView.as_view()),
    path("usergroups", groups.UserGroupListView.as_view()),
    path("usergroups/search", groups.UserGroupSearchView.as_view()),
    path("usergroups/<int:group_id>", groups.UserGroupView.as_view()),
    path("audit-logs", audit.AuditLogListView.as_view()),
    path("audit-logs/verify", audit.AuditLogVerifyView.as_view()),
    path("quotas", quotas.QuotaListView.as_view()),
    path("quotas/<int:quota_id>", quotas.QuotaView.as_view()),
    path("statistics", quotas.StatisticView.as_view()),
    path("configurations", configurations.ConfigurationsView.as_view()),
    path("apply", apply.ApplyView.as_view()),
    path("systeminfo", system.SystemInfoView.as_view()),
    path("health", system.HealthView.as_view()),
    # the OpenAPI document, and Swagger UI over it (docs/api.md)
    path("openapi.json", openapi.OpenApiJsonView.as_view()),
    path("openapi.yaml", openapi.OpenApiYamlView.as_view()),
    path("docs/", openapi.DocsView.as_view()),
    path("docs/assets/<path:path>", openapi.docs_asset),
]
