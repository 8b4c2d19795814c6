"""Registry endpoint passwords are sealed at rest and opened only to talk to the registry."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection

from audit.services import SYSTEM
from replication.client import AuthError
from replication.models import RegistryEndpoint
from replication.policies import endpoint_create, endpoint_update
from replication.services import client_for, endpoint_test
from tests.fixtures.server import ADMIN, ADMIN_PASSWORD, LiveServer


def stored(endpoint: RegistryEndpoint) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT password FROM {RegistryEndpoint._meta.db_table} WHERE id = %s",
            [endpoint.pk],
        )
        return cursor.fetchone()[0]


def test_a_password_is_sealed_in_the_database_and_works(
    client_registry: LiveServer, transactional_db
) -> None:
    endpoint = endpoint_create(
        name="sealed",
        url=client_registry.url,
        username=ADMIN[0],
        password=ADMIN_PASSWORD,
        actor=SYSTEM,
    )
    raw = stored(endpoint)
    assert raw.startswith("sealed:") and ADMIN_PASSWORD not in raw
    fresh = RegistryEndpoint.objects.get(pk=endpoint.pk)
    assert fresh.secret == ADMIN_PASSWORD
    endpoint_test(endpoint=fresh)  # the registry accepts the opened password

    endpoint_update(endpoint=fresh, username="nobody", password=None, actor=SYSTEM)
    assert stored(fresh) == raw, "a None password keeps the sealed one as it is"
    endpoint_update(endpoint=fresh, password="another-one", actor=SYSTEM)
    assert "another-one" not in stored(fresh)
    assert RegistryEndpoint.objects.get(pk=endpoint.pk).secret == "another-one"


def test_a_plain_password_given_to_the_orm_is_sealed_on_save(db) -> None:
    endpoint = RegistryEndpoint.objects.create(name="orm", url="http://127.0.0.1:9", password="pw")
    assert stored(endpoint).startswith("sealed:") and endpoint.secret == "pw"
    empty = RegistryEndpoint.objects.create(name="anonymous", url="http://127.0.0.1:9")
    assert stored(empty) == "" and empty.secret == ""


def test_another_secret_key_cannot_open_it(db, settings) -> None:
    endpoint = RegistryEndpoint.objects.create(name="k", url="http://127.0.0.1:9", password="pw")
    settings.SECRET_KEY = "a-different-key-" * 4
    with pytest.raises(AuthError, match=r"cannot be opened .*set it again"):
        client_for(RegistryEndpoint.objects.get(pk=endpoint.pk))


def test_the_migration_seals_passwords_stored_as_given(db) -> None:
    endpoint = RegistryEndpoint.objects.create(name="old", url="http://127.0.0.1:9")
    RegistryEndpoint.objects.filter(pk=endpoint.pk).update(password="plain-old")  # as before
    migration = importlib.import_module("replication.migrations.0003_seal_endpoint_passwords")
    migration.seal_passwords(apps, None)
    raw = stored(endpoint)
    assert raw.startswith("sealed:") and "plain-old" not in raw
    assert RegistryEndpoint.objects.get(pk=endpoint.pk).secret == "plain-old"
    migration.seal_passwords(apps, None)  # a second run leaves sealed ones alone
    assert stored(endpoint) == raw


def test_an_execution_whose_password_cannot_be_opened_fails(db, settings) -> None:
    from replication.models import ReplicationPolicy
    from replication.services import execution_create, execution_run

    endpoint = RegistryEndpoint.objects.create(name="k2", url="http://127.0.0.1:9", password="pw")
    policy = ReplicationPolicy.objects.create(name="p", endpoint=endpoint, direction="push")
    execution = execution_create(policy=policy)
    settings.SECRET_KEY = "another-key-entirely-" * 3
    done = execution_run(execution_id=execution.pk)
    assert done.status == "failed" and "set it again" in done.error


def test_a_long_password_fits_once_sealed(db) -> None:
    endpoint = endpoint_create(
        name="long", url="http://127.0.0.1:9", username="u", password="p" * 1000, actor=SYSTEM
    )
    assert len(stored(endpoint)) > 1024
    assert RegistryEndpoint.objects.get(pk=endpoint.pk).secret == "p" * 1000
