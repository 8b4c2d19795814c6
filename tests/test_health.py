"""/healthz: what load balancers and the compose healthchecks probe."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthy_when_database_and_storage_answer():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "storage": "ok"}


@pytest.mark.django_db
def test_unhealthy_when_the_blob_store_cannot_be_reached(settings):
    settings.HARBORPY_STORAGE = (
        "s3://nowhere/x?endpoint=http://127.0.0.1:9&access_key=k&secret_key=s&region=us-east-1"
    )
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["storage"].startswith("error:")
