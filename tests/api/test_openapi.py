"""The OpenAPI document: complete (every route and method, no stale ones), served, browsable
offline, and true to what the API answers (real responses validated against it)."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema
import pytest
import requests
import yaml
from django.urls import URLPattern, URLResolver, get_resolver

from api.openapi import openapi_document
from tests.api.test_projects_api import api, as_, password_hash, team  # noqa: F401
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


def implemented() -> set[tuple[str, str]]:
    """(OpenAPI path, method) for every view method under /api/v2.0/, from Django's resolver."""
    found = set()
    for route, callback in _routes(get_resolver().url_patterns):
        if not route.startswith(PREFIX):
            continue
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route[len(PREFIX) :])
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


@pytest.mark.usefixtures("team")
def test_real_responses_fit_the_document(registry, document) -> None:
    def call(method: str, path: str, who: str = "admin", **kwargs: Any) -> requests.Response:
        concrete = path.format(**ids)
        response = requests.request(
            method, api(registry, concrete.lstrip("/")), auth=as_(who), **kwargs
        )
        check(document, response, path, method)
        return response

    ids: dict[str, Any] = {"project": "team"}
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
