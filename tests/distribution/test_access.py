"""Every /v2/ request goes through the one access hook (rbac.policy.authorize)."""

from __future__ import annotations

import pytest
from django.test import Client

from distribution import views
from distribution.access import ROUTE_ACTIONS
from rbac.policy import Action, Resource, authorize, principal_from_request

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


@pytest.mark.django_db
@pytest.mark.parametrize(("method", "path"), WRITES)
def test_read_only_mode_refuses_every_write(settings, method: str, path: str) -> None:
    settings.HARBORPY_READ_ONLY = True
    answer = getattr(Client(), method)(path)
    assert answer.status_code == 403
    assert answer.json()["errors"][0]["code"] == "DENIED"
    assert "read-only" in answer.json()["errors"][0]["message"]


@pytest.mark.django_db
def test_read_only_mode_lets_reads_through(settings) -> None:
    settings.HARBORPY_READ_ONLY = True
    client = Client()
    assert client.get("/v2/").status_code == 200
    assert client.get("/v2/_catalog").status_code == 200
    # Reads reach the registry and fail for their own reasons, not for access.
    assert client.get("/v2/ro/app/tags/list").json()["errors"][0]["code"] == "NAME_UNKNOWN"


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


def test_a_mount_also_needs_pull_on_its_source(rf) -> None:
    from distribution.access import required_access

    request = rf.post("/v2/b/blobs/uploads/?mount=sha256:" + "a" * 64 + "&from=a")
    needs = required_access(request, "upload", "b")
    assert (Resource("repository", "b"), Action.PUSH) in needs
    assert (Resource("repository", "a"), Action.PULL) in needs


def test_authorize_allows_pulls_and_refuses_writes_in_read_only_mode(settings, rf) -> None:
    principal = principal_from_request(rf.get("/v2/"))
    assert principal.is_anonymous
    resource = Resource("repository", "library/app")
    settings.HARBORPY_READ_ONLY = False
    assert authorize(principal, Action.PUSH, resource).allowed
    settings.HARBORPY_READ_ONLY = True
    assert not authorize(principal, Action.PUSH, resource).allowed
    assert not authorize(principal, Action.DELETE, resource).allowed
    assert authorize(principal, Action.PULL, resource).allowed


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
