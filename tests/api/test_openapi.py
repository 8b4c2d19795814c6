"""The OpenAPI document: complete (every route and method, no stale ones), served, browsable
offline, and true to what the API answers (real responses validated against it)."""

from __future__ import annotations

import copy
import re
from typing import Any, Protocol

import jsonschema
import pytest
import requests
import yaml
from django.urls import URLPattern, URLResolver, get_resolver

from api.openapi import openapi_document
from distribution.models import Label
from tests.api.test_gc_api import gc_worker_fixture  # noqa: F401
from tests.api.test_projects_api import api, as_, password_hash, team  # noqa: F401
from tests.api.test_purgeaudit_api import audit_worker_fixture  # noqa: F401
from tests.distribution.helpers import push_artifact, push_image, push_index
from tests.fixtures.server import ADMIN

PREFIX = "api/v2.0/"
# Routes under /api/v2.0/ that serve the document itself, not the API.
DOCUMENTATION_ROUTES = {"/openapi.json", "/openapi.yaml", "/docs/", "/docs/assets/{path}"}
METHODS = ("get", "post", "put", "patch", "delete")


def _routes(patterns: list[Any], prefix: str = ""):
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern):
            yield route, pattern.callback


def _openapi_route(route: str) -> str:
    """A ``re_path`` route as a plain one: anchors dropped, each named group its ``<name>``."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"<\1>", route.removeprefix("^").removesuffix("$"))


def implemented() -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every view method under /api/v2.0/, from Django's resolver."""
    found = set()
    for route, callback in _routes(get_resolver().url_patterns):
        if not route.startswith(PREFIX):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", _openapi_route(route[len(PREFIX) :]))
        if path in DOCUMENTATION_ROUTES:
            continue
        view = getattr(callback, "cls", None)
        assert view is not None, f"{path} is not a REST framework view: the document misses it"
        allowed = set(view.http_method_names)
        found |= {(path, m) for m in METHODS if m in allowed and hasattr(view, m)}
    return found


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p, m) for p, item in document["paths"].items() for m in item if m in METHODS}


def test_every_route_and_method_is_documented_and_nothing_else() -> None:
    document = openapi_document()
    assert document["servers"] == [{"url": "/api/v2.0"}]
    routes, paths = implemented(), documented(document)
    assert len(routes) > 40
    assert routes - paths == set(), "implemented but not in the document"
    assert paths - routes == set(), "in the document but not implemented"
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_every_operation_says_what_it_answers() -> None:
    """Each operation documents a success and, behind authentication, its 401."""
    for path, item in openapi_document()["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert codes & {"200", "201"}, (path, method)
            anonymous = path in ("/systeminfo", "/health")
            assert anonymous or "401" in codes, (path, method)


def test_the_document_is_served_as_json_and_yaml(registry) -> None:
    as_json = requests.get(api(registry, "openapi.json"))
    assert as_json.status_code == 200
    assert as_json.headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    document = as_json.json()
    assert document["openapi"].startswith("3.1") and "/robots/{robot_id}" in document["paths"]
    as_yaml = requests.get(api(registry, "openapi.yaml"))
    assert as_yaml.status_code == 200 and yaml.safe_load(as_yaml.text) == document
    # anyone may read it, with or without (even wrong) credentials
    assert requests.get(api(registry, "openapi.json"), auth=("x", "y")).json() == document


def test_the_docs_page_loads_everything_from_the_registry_itself(registry) -> None:
    page = requests.get(api(registry, "docs/"))
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    html = page.text
    assert "/api/v2.0/openapi.json" in html
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert loaded and not [u for u in loaded if "//" in u], loaded  # nothing from elsewhere
    for url in loaded:
        asset = requests.get(f"{registry.url}{url}")
        assert asset.status_code == 200 and len(asset.content) > 500, url
    bundle = requests.get(api(registry, "docs/assets/swagger-ui-dist/swagger-ui-bundle.js"))
    assert "javascript" in bundle.headers["Content-Type"]
    for other in ("swagger-ui-dist/LICENSE", "../../../../etc/passwd", "redoc/bundles/x.js"):
        assert requests.get(api(registry, f"docs/assets/{other}")).status_code == 404


# --- real responses against the document ----------------------------------------------------


def _strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` on objects: no undocumented fields."""
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return copy.deepcopy(openapi_document())


def check(document: dict[str, Any], response: requests.Response, path: str, method: str) -> None:
    """The response's status is documented for the operation, and its body fits the schema."""
    operation = document["paths"][path][method]
    status = str(response.status_code)
    assert status in operation["responses"], (path, method, status, response.text)
    content = operation["responses"][status].get("content")
    if content is None:
        assert not response.content or response.content in (b"null", b""), response.text
        return
    schema = _strict(content["application/json"]["schema"])
    schema["components"] = {"schemas": _strict(document["components"]["schemas"])}
    jsonschema.validate(response.json(), schema, cls=jsonschema.Draft202012Validator)


class Caller(Protocol):
    def __call__(
        self, method: str, path: str, who: str = ..., status: int | None = ..., **kwargs: Any
    ) -> requests.Response: ...


def caller(registry, document: dict[str, Any], ids: dict[str, Any]) -> Caller:
    """``call(method, path, who)``: the documented ``path`` with ``ids`` filled in, requested
    as ``who`` (or anonymously) and checked against the document (and for ``status``)."""

    def call(
        method: str, path: str, who: str = "admin", status: int | None = None, **kwargs: Any
    ) -> requests.Response:
        concrete = path.format(**ids)
        auth = None if who == "anonymous" else as_(who)
        response = requests.request(
            method, api(registry, concrete.lstrip("/")), auth=auth, timeout=60, **kwargs
        )
        assert status is None or response.status_code == status, (path, who, response.text)
        check(document, response, path, method)
        return response

    return call


@pytest.mark.usefixtures("team")
def test_real_responses_fit_the_document(registry, document) -> None:
    ids: dict[str, Any] = {"project": "team"}
    call = caller(registry, document, ids)
    robot = {
        "name": "ci",
        "level": "project",
        "duration": 7,
        "permissions": [
            {
                "kind": "project",
                "namespace": "team",
                "access": [{"resource": "repository", "action": "pull"}],
            }
        ],
    }
    created = call("post", "/robots", "pat", json=robot)
    ids["robot_id"] = created.json()["id"]
    call("get", "/robots/{robot_id}", "pat")
    call("get", "/robots")
    call("get", "/projects/{project}/robots", "pat")
    call("patch", "/robots/{robot_id}", "pat", json={"secret": ""})
    call("put", "/robots/{robot_id}", "pat", json={"disable": True})
    call("get", "/robots/{robot_id}", "lim")  # 403
    call("post", "/robots", "pat", json={"name": "x"})  # 400

    ids["user_id"] = requests.get(api(registry, "users/current"), auth=as_("gus")).json()["user_id"]
    call("get", "/users")
    call("get", "/users/{user_id}")
    call("get", "/users/current", "gus")
    call("get", "/users/search", "gus", params={"username": "g"})
    call("post", "/users", json={"username": "neo", "password": "Correct-Horse-Battery-9"})
    call("post", "/usergroups", json={"group_name": "ops"})
    call("get", "/usergroups")
    call("get", "/usergroups/search", "dev", params={"groupname": "o"})

    call("get", "/audit-logs", params={"q": "operation=user"})
    call("get", "/audit-logs/verify")
    call("get", "/projects/{project}/logs", "pat")
    call("get", "/audit-logs", "pat")  # 403
    call("get", "/audit-logs", params={"q": "op_time=[nope~]"})  # 400

    ids["quota_id"] = ids["project_id"] = requests.get(
        api(registry, "projects/team"), auth=ADMIN
    ).json()["project_id"]
    call("get", "/quotas")
    call("get", "/quotas/{quota_id}")
    call("get", "/statistics")
    call("get", "/statistics", "out")
    call("get", "/configurations")
    call("put", "/configurations", json={"project_creation_restriction": "everyone"})

    call("get", "/projects")
    call("get", "/projects/{project}", "gus")
    call("get", "/projects/{project}/summary", "pat")
    call("get", "/projects/{project}/members", "pat")
    call("get", "/systeminfo")
    call("get", "/health")
    call("get", "/users/current/cli_secret", "dev")


COSIGN = "application/vnd.dev.cosign.artifact.sig.v1+json"
HELM = "application/vnd.cncf.helm.config.v1+json"
REPOSITORIES = "/projects/{project}/repositories"
REPOSITORY = REPOSITORIES + "/{repo}"
ARTIFACTS = REPOSITORY + "/artifacts"
ARTIFACT = ARTIFACTS + "/{reference}"


@pytest.mark.usefixtures("team")
def test_real_repository_artifact_tag_and_label_responses_fit_the_document(
    registry, document
) -> None:
    """Every field these answer is documented, with its type: an image with annotations and
    a signature, an index with platforms and references, a chart, tags and labels."""
    ids: dict[str, Any] = {"project": "team", "repo": "app", "reference": "v1"}
    call = caller(registry, document, ids)
    image = push_image(
        registry, "team/app", "v1", annotations={"org.opencontainers.image.title": "app"}
    )
    push_artifact(registry, "team/app", "v1-sig", artifact_type=COSIGN, subject=image)
    push_artifact(registry, "team/app", "chart-1", artifact_type=HELM)
    _, children = push_index(registry, "team/tools/multi", "latest")
    ids["project_id"] = requests.get(api(registry, "projects/team"), auth=ADMIN).json()[
        "project_id"
    ]

    # labels: a global one and the project's, read and changed
    new = {"name": "ok", "color": "#00ff00", "description": "x"}
    made = call("post", "/labels", json=new, status=201)
    ids["label_id"] = int(made.headers["Location"].rsplit("/", 1)[1])
    own = {"name": "team-l", "scope": "p", "project_id": ids["project_id"]}
    own_made = call("post", "/labels", "pat", json=own, status=201)
    own_id = int(own_made.headers["Location"].rsplit("/", 1)[1])
    call("post", "/labels", "pat", json=own, status=409)
    call("post", "/labels", json={"name": "c", "color": "green"}, status=400)
    call("post", "/labels", "pat", json={"name": "g"}, status=403)  # global ones are the admin's
    call("post", "/labels", "out", json={**own, "name": "x"}, status=404)
    call("post", "/labels", "anonymous", json={"name": "g"}, status=401)
    listed = call("get", "/labels", "anonymous", params={"q": "name=~o"}, status=200)
    assert [x["name"] for x in listed.json()] == ["ok"]
    scoped = {"scope": "p", "project_id": ids["project_id"]}
    listed = call("get", "/labels", "gus", params=scoped, status=200)
    assert [x["id"] for x in listed.json()] == [own_id]
    call("get", "/labels", "lim", params=scoped, status=403)
    call("get", "/labels", "anonymous", params=scoped, status=401)
    call("get", "/labels", "out", params=scoped, status=404)
    call("get", "/labels", params={"scope": "p"}, status=400)
    call("get", "/labels/{label_id}", "out", status=200)
    call("put", "/labels/{label_id}", json={"description": "shipped"}, status=200)
    call("put", "/labels/{label_id}", json={"name": "team-l"}, status=200)  # another scope
    call("put", "/labels/{label_id}", json={"color": "red"}, status=400)
    call("put", "/labels/{label_id}", "pat", json={"color": "#000000"}, status=403)

    # labels on the artifact
    labels = ARTIFACT + "/labels"
    call("post", labels, "dev", json={"id": ids["label_id"]}, status=200)
    call("post", labels, "dev", json={"id": own_id}, status=200)
    call("post", labels, "dev", json={"id": own_id}, status=409)
    call("post", labels, "dev", json={"id": 999999}, status=404)
    call("post", labels, "dev", json={"id": "x"}, status=400)
    call("post", labels, "lim", json={"id": own_id}, status=403)

    # repositories
    repositories = call("get", REPOSITORIES, "lim", status=200)
    assert [r["name"] for r in repositories.json()] == ["team/app", "team/tools/multi"]
    call("get", REPOSITORIES, params={"q": "name=~multi"}, status=200)
    call("get", REPOSITORIES, params={"q": "colour=red"}, status=400)
    call("get", REPOSITORIES, "anonymous", status=401)
    call("get", REPOSITORIES, "out", status=404)
    call("get", REPOSITORY, "gus", status=200)
    ids["repo"] = "tools%252Fmulti"
    assert call("get", REPOSITORY, status=200).json()["name"] == "team/tools/multi"
    ids["repo"] = "nothere"
    call("get", REPOSITORY, status=404)
    ids["repo"] = "Not_A_Name"
    call("get", REPOSITORY, status=400)

    # artifacts: an image with its signature and labels, the signature itself, a chart
    ids["repo"] = "app"
    every = {"with_label": "true", "with_accessory": "true"}
    listed = call("get", ARTIFACTS, "gus", params=every, status=200).json()
    assert {a["type"] for a in listed} == {"IMAGE", "SIGNATURE", "CHART"}
    image_out = next(a for a in listed if a["digest"] == image.digest)
    assert image_out["annotations"] and image_out["extra_attrs"]["config"]["Labels"]
    assert len(image_out["labels"]) == 2 and len(image_out["accessories"]) == 1
    call("get", ARTIFACTS, params={"q": "tags=~v,labels={1 2}", "with_tag": "false"}, status=200)
    call("get", ARTIFACTS, params={"q": "labels=red"}, status=400)
    call("get", ARTIFACTS, "out", status=404)
    call("get", ARTIFACT, "lim", status=200)
    ids["reference"] = image.digest
    call("get", ARTIFACT, params=every, status=200)
    ids["reference"] = "chart-1"
    assert call("get", ARTIFACT, status=200).json()["extra_attrs"] == {}
    ids["reference"] = "nope"
    call("get", ARTIFACT, status=404)
    ids["reference"] = "sha256:zz"
    call("get", ARTIFACT, status=400)

    # an index: platforms, references; a child cannot go alone
    ids.update(repo="tools/multi", reference="latest")
    multi = call("get", ARTIFACT, params=every, status=200).json()
    assert len(multi["platforms"]) == 2 and len(multi["references"]) == 2
    ids["reference"] = children[0].digest
    call("get", ARTIFACT, status=200)
    call("delete", ARTIFACT, status=412)

    # tags
    ids.update(repo="app", reference="v1")
    tags = ARTIFACT + "/tags"
    call("post", tags, "dev", json={"name": "v2"}, status=201)
    call("post", tags, "dev", json={"name": "v2"}, status=409)
    call("post", tags, "dev", json={"name": "-bad"}, status=400)
    call("post", tags, "gus", json={"name": "v3"}, status=403)
    call("post", tags, "anonymous", json={"name": "v3"}, status=401)
    assert [t["name"] for t in call("get", tags, "lim", status=200).json()] == ["v1", "v2"]
    call("get", tags, params={"q": "name=v2", "page_size": 1}, status=200)
    ids["tag"] = "v2"
    call("delete", tags + "/{tag}", "dev", status=403)
    call("delete", tags + "/{tag}", "pat", status=200)
    call("delete", tags + "/{tag}", "pat", status=404)

    # and away with them
    ids["label_id"] = own_id
    call("get", "/labels/{label_id}", "anonymous", status=401)
    call("get", "/labels/{label_id}", "lim", status=403)
    call("delete", labels + "/{label_id}", "dev", status=200)
    call("delete", labels + "/{label_id}", "dev", status=404)
    call("delete", "/labels/{label_id}", "dev", status=403)
    call("delete", "/labels/{label_id}", "pat", status=200)
    call("get", "/labels/{label_id}", "pat", status=404)
    call("delete", ARTIFACT, "dev", status=403)
    call("delete", ARTIFACT, "pat", status=200)
    call("delete", REPOSITORY, "anonymous", status=401)
    call("delete", REPOSITORY, "pat", status=200)
    ids["repo"] = "tools/multi"
    call("delete", REPOSITORY, status=200)
    call("delete", REPOSITORY, status=404)


@pytest.mark.usefixtures("team")
def test_real_replication_responses_fit_the_document(registry, document) -> None:
    ids: dict[str, Any] = {}
    call = caller(registry, document, ids)
    credential = {"type": "basic", "access_key": ADMIN[0], "access_secret": ADMIN[1]}
    endpoint = {"name": "self", "url": registry.url, "credential": credential}
    ids["registry_id"] = call("post", "/registries", json=endpoint, status=201).json()["id"]
    call("get", "/registries")
    call("get", "/registries/{registry_id}")
    call("put", "/registries/{registry_id}", json={"insecure": True}, status=200)
    call("post", "/registries/ping", json={"id": ids["registry_id"]}, status=200)
    wrong = {**endpoint, "credential": {**credential, "access_secret": "nope"}}
    call("post", "/registries/ping", json=wrong, status=400)
    call("get", "/registries", "pat", status=403)
    call("get", "/registries", "anonymous", status=401)

    policy = {
        "name": "mirror",
        "src_registry": {"id": ids["registry_id"]},
        "filters": [{"type": "name", "value": "nothing/**"}],
    }
    ids["policy_id"] = call("post", "/replication/policies", json=policy, status=201).json()["id"]
    call("get", "/replication/policies")
    call("get", "/replication/policies/{policy_id}")
    call("put", "/replication/policies/{policy_id}", json={"override": False}, status=200)
    call("post", "/replication/policies", json=policy, status=409)
    call("post", "/registries", json=endpoint, status=409)
    call("delete", "/registries/{registry_id}", status=412)
    Label.objects.create(name="openapi-approved", scope=Label.GLOBAL)
    pushing = {
        "name": "pushing",
        "dest_registry": {"id": ids["registry_id"]},
        "filters": [
            {"type": "name", "value": "nothing/**"},
            {"type": "label", "value": ["openapi-approved"]},
        ],
        "trigger": {"type": "scheduled", "trigger_settings": {"cron": "@daily"}},
        "deletion": True,
    }
    mirror_id = ids["policy_id"]
    ids["policy_id"] = call("post", "/replication/policies", json=pushing, status=201).json()["id"]
    call("get", "/replication/policies")
    call("get", "/replication/policies/{policy_id}")
    bad = {"trigger": {"type": "scheduled", "trigger_settings": {"cron": "nope"}}}
    call("put", "/replication/policies/{policy_id}", json=bad, status=400)
    call("delete", "/replication/policies/{policy_id}", status=200)
    ids["policy_id"] = mirror_id

    started = call("post", "/replication/executions", json={"policy_id": ids["policy_id"]})
    ids["execution_id"] = started.json()["id"]
    call("get", "/replication/executions", params={"policy_id": ids["policy_id"]})
    call("get", "/replication/executions/{execution_id}")
    call("get", "/replication/executions/{execution_id}/tasks")
    call("put", "/replication/executions/{execution_id}", status=200)
    call("get", "/replication/executions/{execution_id}", status=200)
    call("delete", "/replication/policies/{policy_id}", status=200)
    call("delete", "/registries/{registry_id}", status=200)


@pytest.mark.usefixtures("team")
def test_real_gc_and_retention_responses_fit_the_document(registry, document, gc_worker) -> None:
    push_image(registry, "team/app", "v1")
    ids: dict[str, Any] = {"project": "team"}
    call = caller(registry, document, ids)

    call("get", "/system/gc/schedule", status=200)
    daily = {"schedule": {"type": "Daily"}, "parameters": {"delete_untagged": True}}
    call("put", "/system/gc/schedule", json=daily, status=200)
    call("get", "/system/gc/schedule", status=200)
    call("put", "/system/gc/schedule", json={"schedule": {"type": "Custom"}}, status=400)
    call("put", "/system/gc/schedule", "pat", json=daily, status=403)
    call("put", "/system/gc/schedule", "anonymous", json=daily, status=401)
    call("put", "/system/gc/schedule", json={"schedule": {"type": "None"}}, status=200)
    manual = {"schedule": {"type": "Manual"}, "parameters": {"dry_run": True}}
    ids["gc_id"] = call("post", "/system/gc/schedule", json=manual, status=201).json()["id"]
    call("get", "/system/gc/{gc_id}", status=200)
    call("get", "/system/gc", status=200)

    rules = {"rules": [{"latestPushedK": 1}], "schedule": "0 3 * * *"}
    call("put", "/projects/{project}/retention", "pat", json=rules, status=200)
    call("get", "/projects/{project}/retention", "dev", status=200)
    run = call("post", "/projects/{project}/retention/executions", "dev", json={}, status=201)
    ids["run_id"] = run.json()["id"]
    call("get", "/projects/{project}/retention/executions/{run_id}", "dev", status=200)
    call("get", "/projects/{project}/retention/executions/{run_id}", "gus", status=403)
    call("get", "/projects/{project}/retention/executions", "dev", status=200)
    rule = {"tag_pattern": "v*"}
    created = call("post", "/projects/{project}/immutabletagrules", "pat", json=rule, status=201)
    ids["rule_id"] = created.json()["id"]
    call("get", "/projects/{project}/immutabletagrules", "pat", status=200)
    call("delete", "/projects/{project}/immutabletagrules/{rule_id}", "pat", status=200)


@pytest.mark.usefixtures("team")
def test_real_purge_audit_responses_fit_the_document(registry, document, audit_worker) -> None:
    ids: dict[str, Any] = {}
    call = caller(registry, document, ids)
    call("get", "/system/purgeaudit/schedule", status=200)
    daily = {"schedule": {"type": "Daily"}, "parameters": {"audit_retention_hour": 48}}
    call("put", "/system/purgeaudit/schedule", json=daily, status=200)
    call("get", "/system/purgeaudit/schedule", status=200)
    call("put", "/system/purgeaudit/schedule", json={"schedule": {"type": "Custom"}}, status=400)
    call("put", "/system/purgeaudit/schedule", "pat", json=daily, status=403)
    call("put", "/system/purgeaudit/schedule", "anonymous", json=daily, status=401)
    manual = {"schedule": {"type": "Manual"}, "parameters": {"audit_retention_hour": 0}}
    ids["purge_id"] = call("post", "/system/purgeaudit/schedule", json=manual, status=201).json()[
        "id"
    ]
    call("post", "/system/purgeaudit/schedule", json={"schedule": {"type": "Manual"}}, status=400)
    call("get", "/system/purgeaudit/{purge_id}", status=200)
    call("get", "/system/purgeaudit/{purge_id}", "out", status=403)
    call("get", "/system/purgeaudit", status=200)
