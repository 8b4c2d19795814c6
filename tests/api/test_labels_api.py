"""/api/v2.0/labels and labels on artifacts over HTTP."""

from __future__ import annotations

from audit.models import AuditEntry
from projects.models import Project
from tests.api.team import call, errors, team_fixture, team_password_hash_fixture
from tests.distribution.helpers import push_image

__all__ = ["team_fixture", "team_password_hash_fixture"]  # fixtures this module uses

ARTIFACTS = "projects/team/repositories/app/artifacts"


def created_id(response) -> int:
    assert response.status_code == 201, response.text
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_global_labels_are_made_by_the_admin_and_read_by_anybody(registry, team) -> None:
    new = {"name": "prod", "color": "#00ff00", "description": "ready", "scope": "g"}
    label_id = created_id(call(registry, "POST", "labels", json=new))
    refused = call(registry, "POST", "labels", "pat", json={**new, "name": "x"})
    assert refused.status_code == 403 and errors(refused) == ["FORBIDDEN"]
    again = call(registry, "POST", "labels", json=new)
    assert again.status_code == 409 and errors(again) == ["CONFLICT"]
    for bad in ({"name": "c", "color": "green"}, {"color": "#000000"}, {"name": "c", "scope": "x"}):
        assert call(registry, "POST", "labels", json=bad).status_code == 400, bad
    listed = call(registry, "GET", "labels", "anonymous", params={"q": "name=~pro"})
    assert [(x["name"], x["scope"], x["project_id"]) for x in listed.json()] == [("prod", "g", 0)]
    assert call(registry, "GET", f"labels/{label_id}", "out").json()["color"] == "#00ff00"
    change = {"color": "#0000ff", "description": "shipped"}
    assert call(registry, "PUT", f"labels/{label_id}", "pat", json=change).status_code == 403
    assert call(registry, "PUT", f"labels/{label_id}", json=change).status_code == 200
    got = call(registry, "GET", f"labels/{label_id}").json()
    assert (got["name"], got["color"], got["description"]) == ("prod", "#0000ff", "shipped")
    assert call(registry, "DELETE", f"labels/{label_id}", "pat").status_code == 403
    assert call(registry, "DELETE", f"labels/{label_id}").status_code == 200
    assert call(registry, "GET", f"labels/{label_id}").status_code == 404
    trail = AuditEntry.objects.filter(action="label", resource="label:global:prod")
    assert [e.detail["change"] for e in trail.order_by("id")] == ["created", "updated", "deleted"]


def test_project_labels_follow_the_role_table(registry, team) -> None:
    new = {"name": "team-only", "scope": "p", "project_id": team.pk}
    assert call(registry, "POST", "labels", "dev", json=new).status_code == 403
    assert call(registry, "POST", "labels", "out", json=new).status_code == 404
    label_id = created_id(call(registry, "POST", "labels", "max", json=new))
    assert call(registry, "POST", "labels", "max", json=new).status_code == 409
    assert created_id(call(registry, "POST", "labels", json={"name": "team-only"}))  # global
    scoped = {"scope": "p", "project_id": team.pk}
    listed = call(registry, "GET", "labels", "gus", params=scoped)
    assert [x["id"] for x in listed.json()] == [label_id]
    assert listed.json()[0]["project_id"] == team.pk
    assert call(registry, "GET", "labels", "lim", params=scoped).status_code == 403
    assert call(registry, "GET", "labels", "out", params=scoped).status_code == 404
    assert call(registry, "GET", "labels", "anonymous", params=scoped).status_code == 401
    assert call(registry, "GET", "labels", params={"scope": "p"}).status_code == 400
    assert call(registry, "GET", f"labels/{label_id}", "gus").status_code == 200
    assert call(registry, "GET", f"labels/{label_id}", "out").status_code == 404
    assert call(registry, "PUT", f"labels/{label_id}", "dev", json={"name": "x"}).status_code == 403
    assert call(registry, "PUT", f"labels/{label_id}", "max", json={"name": "x"}).status_code == 200


def test_labels_go_on_artifacts_and_filter_them(registry, team) -> None:
    push_image(registry, "team/app", "v1")
    push_image(registry, "team/app", "v2")
    shared = created_id(call(registry, "POST", "labels", json={"name": "approved"}))
    own = created_id(
        call(
            registry,
            "POST",
            "labels",
            "max",
            json={"name": "team-l", "scope": "p", "project_id": team.pk},
        )
    )
    other = Project.objects.create(name="other", public=False)
    foreign = created_id(
        call(
            registry,
            "POST",
            "labels",
            json={"name": "other-l", "scope": "p", "project_id": other.pk},
        )
    )
    url = f"{ARTIFACTS}/v1/labels"
    assert call(registry, "POST", url, "gus", json={"id": shared}).status_code == 403
    assert call(registry, "POST", url, "dev", json={"id": shared}).status_code == 200
    again = call(registry, "POST", url, "dev", json={"id": shared})
    assert again.status_code == 409 and errors(again) == ["CONFLICT"]
    assert call(registry, "POST", url, "dev", json={"id": own}).status_code == 200
    elsewhere = call(registry, "POST", url, "dev", json={"id": foreign})
    assert elsewhere.status_code == 400 and errors(elsewhere) == ["BAD_REQUEST"]
    assert call(registry, "POST", url, "dev", json={"id": 999999}).status_code == 404

    shown = call(registry, "GET", f"{ARTIFACTS}/v1", "gus", params={"with_label": "true"})
    assert [x["name"] for x in shown.json()["labels"]] == ["approved", "team-l"]
    hidden = call(registry, "GET", f"{ARTIFACTS}/v1", "lim", params={"with_label": "true"})
    assert hidden.json()["labels"] is None  # a limited guest does not see labels

    def tagged(q: str) -> list[str]:
        found = call(registry, "GET", ARTIFACTS, params={"q": q}).json()
        return [t["name"] for a in found for t in a["tags"]]

    assert tagged(f"labels=({shared})") == ["v1"]
    assert tagged(f"labels=({shared} {own})") == ["v1"]
    assert tagged(f"labels={{{shared} 999999}}") == ["v1"]
    assert tagged("labels=(999999)") == []

    assert call(registry, "DELETE", f"{url}/{shared}", "gus").status_code == 403
    assert call(registry, "DELETE", f"{url}/{shared}", "dev").status_code == 200
    assert call(registry, "DELETE", f"{url}/{shared}", "dev").status_code == 404
    assert call(registry, "DELETE", f"labels/{own}", "max").status_code == 200  # off everything
    left = call(registry, "GET", f"{ARTIFACTS}/v1", params={"with_label": "true"}).json()
    assert left["labels"] == []
    trail = AuditEntry.objects.filter(action="label", resource__startswith="team/app@")
    assert [e.detail["change"] for e in trail.order_by("id")] == ["added", "added", "removed"]
