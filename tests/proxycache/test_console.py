"""Proxy-cache projects in the console: created by administrators, marked as such."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from projects.models import Project
from replication.models import RegistryEndpoint


@pytest.fixture
def admin_client(db) -> Client:
    admin = get_user_model().objects.create_superuser("root-admin", password="root-pw-1")
    client = Client()
    client.force_login(admin)
    return client


def test_an_admin_creates_a_proxy_cache_project_in_the_console(admin_client) -> None:
    endpoint = RegistryEndpoint.objects.create(name="hub-mirror", url="http://127.0.0.1:9")
    page = admin_client.get("/projects/")
    assert b'name="registry_id"' in page.content and b"hub-mirror" in page.content

    created = admin_client.post(
        "/projects/", {"name": "hubcache", "registry_id": str(endpoint.pk), "public": "1"}
    )
    assert created.status_code == 302 and created["Location"] == "/projects/hubcache/"
    project = Project.objects.get(name="hubcache")
    assert project.registry_id == endpoint.pk and project.public

    listing = admin_client.get("/projects/").content.decode()
    assert 'badge proxy">proxy cache' in listing
    settings = admin_client.get("/projects/hubcache/settings/").content.decode()
    assert "This project caches <strong>hub-mirror</strong>" in settings
    registries = admin_client.get("/administration/registries/").content.decode()
    row = registries.split('data-endpoint="hub-mirror"')[1].split("</tr>")[0]
    assert '0 policies, <span class="cache-count">1 proxy cache</span>' in row

    unknown = admin_client.post("/projects/", {"name": "other", "registry_id": "999999"})
    assert unknown.status_code == 302
    assert not Project.objects.filter(name="other").exists()
    messages = admin_client.get("/projects/").content.decode()
    assert "registry endpoint 999999 does not exist" in messages


def test_a_user_sees_no_proxy_option_and_cannot_post_one(db) -> None:
    endpoint = RegistryEndpoint.objects.create(name="hub-mirror", url="http://127.0.0.1:9")
    client = Client()
    client.force_login(get_user_model().objects.create_user("dana", password="dana-pw-1"))
    page = client.get("/projects/")
    assert page.status_code == 200 and b'name="registry_id"' not in page.content
    refused = client.post("/projects/", {"name": "sneaky", "registry_id": str(endpoint.pk)})
    assert refused.status_code == 403
    assert not Project.objects.filter(name="sneaky").exists()
