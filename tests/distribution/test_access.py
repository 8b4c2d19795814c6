"""Every /v2/ request goes through the one access hook (rbac.policy.authorize)."""

from __future__ import annotations

import pytest
from django.test import Client

from distribution import views
from distribution.access import ROUTE_ACTIONS
from rbac.policy import ANONYMOUS, Action, Principal, Resource, authorize_scope
from rbac.policy import Kind as PrincipalKind

WRITES = [
    ("post", "/v2/ro/app/blobs/uploads/"),
    ("patch", "/v2/ro/app/blobs/uploads/0f1e2d3c-0000-4000-8000-000000000000"),
    (
        "put",
        "/v2/ro/app/blobs/uploads/0f1e2d3c-0000-4000-8000-000000000000?digest=sha256:" + "a" * 64,
    ),
    ("delete", "/v2/ro/app/blobs/uploads/0f1e2d3c-0000-4000-8000-000000000000"),
    ("put", "/v2/ro/app/manifests/latest"),
    ("delete", "/v2/ro/app/manifests/latest"),
    ("delete", "/v2/ro/app/blobs/sha256:" + "a" * 64),
]


@pytest.mark.parametrize("who", ["admin", "anonymous"])
@pytest.mark.parametrize(("method", "path"), WRITES)
def test_read_only_mode_refuses_every_write(
    settings, admin_client: Client, who: str, method: str, path: str
) -> None:
    settings.HARBORPY_READ_ONLY = True
    client = admin_client if who == "admin" else Client()
    answer = getattr(client, method)(path)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "DENIED"
    assert "read-only" in answer.json()["errors"][0]["message"]


def test_read_only_mode_lets_reads_through(settings, admin_client: Client) -> None:
    settings.HARBORPY_READ_ONLY = True
    assert admin_client.get("/v2/").status_code == 200
    assert admin_client.get("/v2/_catalog").status_code == 200
    # Reads reach the registry and fail for their own reasons, not for access.
    answer = admin_client.get("/v2/ro/app/tags/list")
    assert answer.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_the_route_table_covers_every_method_each_view_serves() -> None:
    for view in (
        views.CatalogView,
        views.TagsView,
        views.ManifestView,
        views.BlobView,
        views.UploadStartView,
        views.UploadView,
        views.ReferrersView,
    ):
        served = {m.upper() for m in view.http_method_names if hasattr(view, m) and m != "options"}
        assert served, view
        for method in served:
            assert (view.route, method) in ROUTE_ACTIONS, (view.__name__, method)


@pytest.mark.django_db
def test_read_only_mode_refuses_writes_even_to_the_admin(settings) -> None:
    admin = Principal(kind=PrincipalKind.USER, name="admin", user_id=1, is_admin=True)
    resource = Resource("repository", "library/app")
    settings.HARBORPY_READ_ONLY = False
    assert authorize_scope(admin, resource, Action.PUSH).allowed
    settings.HARBORPY_READ_ONLY = True
    assert not authorize_scope(admin, resource, Action.PUSH).allowed
    assert not authorize_scope(admin, resource, Action.DELETE).allowed
    assert authorize_scope(admin, resource, Action.PULL).allowed
    assert not authorize_scope(ANONYMOUS, resource, Action.PUSH).allowed


@pytest.mark.parametrize(
    "path",
    [
        "/v2/_catalog",
        "/v2/lib/app/tags/list",
        "/v2/lib/app/referrers/sha256:" + "a" * 64,
        "/v2/lib/app/manifests/v1",
        "/v2/lib/app/blobs/sha256:" + "a" * 64,
    ],
)
def test_head_needs_what_get_needs(rf, path) -> None:
    from django.urls import resolve

    from distribution.access import required_access

    route = resolve(path).func.view_class.route
    name = resolve(path).kwargs.get("name")
    head = required_access(rf.head(path), route, name)
    assert head and head == required_access(rf.get(path), route, name)
