"""Environment settings switch harborpy between its embedded and production components."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis

PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.core.cache import cache
from harborpy.celery import app
cache.set(%r, "from-harborpy", 60)
print(json.dumps({
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": app.conf.broker_url,
    "transport": app.conf.broker_transport_options,
    "database": settings.DATABASES["default"]["ENGINE"],
    "storage": settings.HARBORPY_STORAGE,
}))
"""


def probe(tmp_path: Path, key: str, **env: str) -> dict:
    child = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    child.update(HARBORPY_DATA=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="harborpy.settings")
    child.update(env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE % key], env=child, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def test_embedded_defaults_need_nothing_else(tmp_path: Path) -> None:
    seen = probe(tmp_path, "unused")
    assert seen["database"] == "django.db.backends.sqlite3"
    assert seen["cache"].endswith("FileBasedCache")  # shared by the node's processes
    assert seen["broker"].startswith("filesystem://")
    assert seen["transport"]["data_folder_in"] == str(tmp_path / "var" / "queue")
    assert seen["storage"] == (tmp_path / "var" / "storage").as_uri()


def test_redis_url_moves_the_cache_and_the_job_queue_to_redis(tmp_path: Path) -> None:
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    key = f"harborpy-test-{uuid.uuid4().hex}"
    seen = probe(tmp_path, key, REDIS_URL=url)
    assert seen["cache"].endswith("RedisCache")
    assert seen["broker"] == url
    client = redis.Redis.from_url(url)
    try:
        stored = list(client.scan_iter(f"*{key}*"))
        assert stored, "the value set through Django's cache is not in Redis"
    finally:
        for k in client.scan_iter(f"*{key}*"):
            client.delete(k)


def test_console_templates_are_packaged_with_their_apps() -> None:
    """A plain `pip install .` (the Dockerfile's) carries the templates: they live in packages."""
    from pathlib import Path

    from django.template.loader import get_template

    import harborpy
    import rbac

    for name, package in (
        ("base.html", harborpy),
        ("rbac/login.html", rbac),
        ("rbac/profile.html", rbac),
        ("social_django/error.html", harborpy),
    ):
        origin = Path(get_template(name).origin.name)
        assert origin.is_relative_to(Path(package.__file__).parent / "templates"), origin


def test_every_setting_is_documented() -> None:
    """Each HARBORPY_* variable the settings read appears in the README or docs/."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    source = (root / "harborpy" / "settings.py").read_text()
    read = set(re.findall(r"HARBORPY_[A-Z0-9_]*[A-Z0-9]\b", source))
    text = (root / "README.md").read_text() + "".join(
        page.read_text() for page in (root / "docs").glob("*.md")
    )
    missing = sorted(name for name in read if f"`{name}`" not in text)
    assert not missing, f"undocumented settings: {missing}"


def test_the_image_copies_every_package_the_project_installs() -> None:
    """The Dockerfile copies the apps one by one: a new app must be among them."""
    import re
    import tomllib

    root = Path(__file__).resolve().parents[2]
    packages = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (root / "Dockerfile").read_text(), re.M))
    assert {p.rstrip("*") for p in packages} <= copied
