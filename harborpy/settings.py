"""Settings for harborpy, read from the environment.

Every setting is an environment variable with an embedded default that needs
nothing else on the machine: SQLite and blobs under the data folder, Celery
over a filesystem broker.  ``DATABASE_URL``, ``REDIS_URL`` and
``HARBORPY_STORAGE`` switch to Postgres, Redis and S3.  The table of settings
lives in README.md; keep it in step with this module.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


DATA_DIR = Path(os.environ.get("HARBORPY_DATA", "var")).resolve()


def _secret_key() -> str:
    """The signing secret: from the environment, else generated once into the data folder."""
    key = os.environ.get("HARBORPY_SECRET_KEY")
    if key:
        return key
    path = DATA_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # O_EXCL: when two processes start at once, one key wins and both use it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


SECRET_KEY = _secret_key()
DEBUG = _env_bool("HARBORPY_DEBUG", False)
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("HARBORPY_ALLOWED_HOSTS", "*").split(",")]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "audit",
    "projects",
    "rbac",
    "distribution",
    "replication",
    "proxycache",
    "api",
    "console",
    "harborpy.apps.HarborpyConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

# /v2/ names may contain dots and slashes; never append slashes or redirect them.
APPEND_SLASH = False

ROOT_URLCONF = "harborpy.urls"
WSGI_APPLICATION = "harborpy.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Templates live in their apps (harborpy/templates, rbac/templates), so they are
        # packaged with them.
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _databases() -> dict:
    url = os.environ.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'harborpy.sqlite3'}"
    db = dj_database_url.parse(url, conn_max_age=_env_int("HARBORPY_DB_CONN_MAX_AGE", 60))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the one writer; IMMEDIATE makes a writer wait for
        # the lock at BEGIN (bounded by the timeout) instead of failing mid-transaction.
        db["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
        }
        # A file, not memory: test servers run as separate processes on it.
        db["TEST"] = {"NAME": str(Path(db["NAME"]).with_suffix(".test.sqlite3"))}
    # No CONN_HEALTH_CHECKS: it costs a round trip on every request; Django already
    # drops a connection that raised, so a restarted database costs one failed request.
    return {"default": db}


DATABASES = _databases()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Argon2 for new and changed passwords; older hashes still verify and are upgraded at login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"

# Manifests are small documents read whole; blob bodies never go through request.body.
DATA_UPLOAD_MAX_MEMORY_SIZE = 4 * 1024 * 1024 + 1

# --- registry --------------------------------------------------------------------------------

# Where blobs live: file:///path (local disk or an NFS mount) or
# s3://bucket/prefix?endpoint=http://host:port&region=us-east-1
HARBORPY_STORAGE = os.environ.get("HARBORPY_STORAGE", (DATA_DIR / "storage").as_uri())
# Answer blob GETs on S3 with a 307 to a presigned URL (a CDN or the object store serves them).
HARBORPY_STORAGE_REDIRECT = _env_bool("HARBORPY_STORAGE_REDIRECT", False)
HARBORPY_STORAGE_REDIRECT_TTL = _env_int("HARBORPY_STORAGE_REDIRECT_TTL", 1200)
# fsync blobs before they are committed under their digest (survives a power cut).
HARBORPY_STORAGE_FSYNC = _env_bool("HARBORPY_STORAGE_FSYNC", True)
# Largest manifest accepted on PUT, in bytes (the OCI spec suggests 4 MiB).
HARBORPY_MANIFEST_MAX_BYTES = _env_int("HARBORPY_MANIFEST_MAX_BYTES", 4 * 1024 * 1024)
# Upper bound of `n` on tags/list and _catalog; a larger `n` is served in pages of this size.
HARBORPY_PAGE_MAX = _env_int("HARBORPY_PAGE_MAX", 1000)
# Seconds a client may pause while sending a request body before it is cut off.
HARBORPY_BODY_TIMEOUT = _env_int("HARBORPY_BODY_TIMEOUT", 120)
# Refuse every push and delete (maintenance window); pulls keep working.
HARBORPY_READ_ONLY = _env_bool("HARBORPY_READ_ONLY", False)
# Upload sessions untouched for this long may be reclaimed by garbage collection.
HARBORPY_UPLOAD_EXPIRY = _env_int("HARBORPY_UPLOAD_EXPIRY", 24 * 3600)

# --- garbage collection (docs/gc.md) -----------------------------------------------------------

# Seconds a blob stays safe from GC after a push last used it (Harbor's two hours).
HARBORPY_GC_GRACE = _env_int("HARBORPY_GC_GRACE", 2 * 3600)
# Cron expression (minute hour day-of-month month day-of-week) for scheduled GC; empty: off.
# The default only: once an admin sets a schedule (API, console), the stored one is used.
HARBORPY_GC_SCHEDULE = os.environ.get("HARBORPY_GC_SCHEDULE", "").strip()
# Runs of HARBORPY_GC_SCHEDULE also delete untagged manifests.
HARBORPY_GC_SCHEDULE_UNTAGGED = _env_bool("HARBORPY_GC_SCHEDULE_UNTAGGED", False)
# Celery beat checks every minute for retention policies whose schedule is due (docs/retention.md).
HARBORPY_RETENTION_SCHEDULER = _env_bool("HARBORPY_RETENTION_SCHEDULER", True)
# Celery beat, each minute: scheduled replication policies, stalled executions (replication.md).
HARBORPY_REPLICATION_SCHEDULER = _env_bool("HARBORPY_REPLICATION_SCHEDULER", True)
# A running replication execution without a heartbeat from its worker this long is failed.
HARBORPY_REPLICATION_STALL_SECONDS = _env_int("HARBORPY_REPLICATION_STALL_SECONDS", 900)

# --- proxy cache (docs/proxy-cache.md) ---------------------------------------------------------

# Seconds a cached tag of a proxy-cache project is served without asking the upstream again.
HARBORPY_PROXY_MANIFEST_TTL = _env_int("HARBORPY_PROXY_MANIFEST_TTL", 300)

# --- background jobs ---------------------------------------------------------------------------

REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "filesystem://"
# A run (GC, retention, replication) still pending this many seconds after it was sent to a
# worker is sent again by the per-minute beat checks: its message may have been lost.
HARBORPY_JOB_RESEND_SECONDS = _env_int("HARBORPY_JOB_RESEND_SECONDS", 120)
# A run no worker took this many seconds after it was recorded is failed as lost.
HARBORPY_JOB_LOST_SECONDS = _env_int("HARBORPY_JOB_LOST_SECONDS", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {}
    if REDIS_URL
    else {
        "data_folder_in": str(DATA_DIR / "queue"),
        "data_folder_out": str(DATA_DIR / "queue"),
        "processed_folder": str(DATA_DIR / "queue-done"),
        # kombu's exchange files: its default is ./control, wherever the process started
        "control_folder": str(DATA_DIR / "queue-control"),
        "store_processed": False,
    }
)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# Redis when configured (shared by every node); otherwise files under the data folder,
# shared by the processes of the one node (login throttling must count across them).
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    )
}

# --- identity ------------------------------------------------------------------------------

# Password of the system admin "admin", created at first start; generated (and printed
# once) when unset.
HARBORPY_ADMIN_PASSWORD = os.environ.get("HARBORPY_ADMIN_PASSWORD", "")
# Failed logins allowed per account and client address before logins are refused...
HARBORPY_LOGIN_MAX_FAILURES = _env_int("HARBORPY_LOGIN_MAX_FAILURES", 5)
# ...for this many seconds after the last failure.
HARBORPY_LOGIN_LOCKOUT = _env_int("HARBORPY_LOGIN_LOCKOUT", 300)

# Proxies in front of the service that append the client's address to X-Forwarded-For
# (1 behind one nginx); 0 trusts no such header.  Login throttling and the audit log
# use the address found this way.
HARBORPY_TRUSTED_PROXY_HOPS = _env_int("HARBORPY_TRUSTED_PROXY_HOPS", 0)

# --- LDAP logins (docs/ldap.md) ------------------------------------------------------------------

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
LDAP_BACKEND = "rbac.ldap.DirectoryBackend"


def ldap_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """Django settings for LDAP logins, from the HARBORPY_LDAP_* variables in ``env``.

    Empty when HARBORPY_LDAP_URI is unset.  Otherwise AUTHENTICATION_BACKENDS
    (the directory first, then local accounts such as ``admin``) and
    django-auth-ldap's AUTH_LDAP_* values.  The tests build their settings with
    it too, pointed at their own slapd.
    """
    uri = env.get("HARBORPY_LDAP_URI", "").strip()
    if not uri:
        return {}
    import ldap
    from django_auth_ldap.config import (
        GroupOfNamesType,
        GroupOfUniqueNamesType,
        LDAPSearch,
        PosixGroupType,
    )

    def value(name: str, default: str = "") -> str:
        return env.get(f"HARBORPY_LDAP_{name}", "").strip() or default

    user_base = value("USER_BASE")
    if not user_base:
        raise ImproperlyConfigured("HARBORPY_LDAP_USER_BASE must be set with HARBORPY_LDAP_URI")
    try:
        timeout = float(value("TIMEOUT", "5"))
    except ValueError:
        timeout = 0
    if timeout <= 0:
        raise ImproperlyConfigured("HARBORPY_LDAP_TIMEOUT must be a positive number of seconds")
    result: dict[str, Any] = {
        "AUTHENTICATION_BACKENDS": [LDAP_BACKEND, MODEL_BACKEND],
        "AUTH_LDAP_SERVER_URI": uri,
        "AUTH_LDAP_BIND_DN": value("BIND_DN"),
        "AUTH_LDAP_BIND_PASSWORD": env.get("HARBORPY_LDAP_BIND_PASSWORD", ""),
        "AUTH_LDAP_START_TLS": value("START_TLS").lower() in {"1", "true", "yes", "on"},
        # Connecting and each operation give up after the timeout: a login fails, never hangs.
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_NETWORK_TIMEOUT: timeout,
            ldap.OPT_TIMEOUT: timeout,
        },
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            user_base, ldap.SCOPE_SUBTREE, value("USER_FILTER", "(uid=%(user)s)")
        ),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
    }
    group_base, admin_group = value("GROUP_BASE"), value("ADMIN_GROUP")
    if group_base:
        group_type = value("GROUP_TYPE", "groupOfNames")
        types = {
            "groupOfNames": GroupOfNamesType,
            "groupOfUniqueNames": GroupOfUniqueNamesType,
            "posixGroup": PosixGroupType,
        }
        if group_type not in types:
            raise ImproperlyConfigured(
                f"HARBORPY_LDAP_GROUP_TYPE is {group_type!r}; use one of {', '.join(types)}"
            )
        group_filter = value("GROUP_FILTER", f"(objectClass={group_type})")
        result |= {
            "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(group_base, ldap.SCOPE_SUBTREE, group_filter),
            "AUTH_LDAP_GROUP_TYPE": types[group_type](name_attr="cn"),
            # The user's Django groups become exactly their directory groups, by cn, at each login.
            "AUTH_LDAP_MIRROR_GROUPS": True,
        }
    if admin_group:
        if not group_base:
            raise ImproperlyConfigured("HARBORPY_LDAP_ADMIN_GROUP needs HARBORPY_LDAP_GROUP_BASE")
        # Set (or cleared) at each login: leaving the group takes system admin away.
        flags = {"is_superuser": admin_group, "is_staff": admin_group}
        result["AUTH_LDAP_USER_FLAGS_BY_GROUP"] = flags
    return result


AUTHENTICATION_BACKENDS = [MODEL_BACKEND]
globals().update(ldap_settings(os.environ))

# --- token service -------------------------------------------------------------------------

# The registry's address as clients see it (scheme://host[:port]); the token realm in
# 401 challenges is built from it.  Unset: taken from each request's Host header.
HARBORPY_EXTERNAL_URL = os.environ.get("HARBORPY_EXTERNAL_URL", "").rstrip("/")
# The RSA key that signs tokens (PEM), generated at first start; every node of one
# registry must read the same file.
HARBORPY_TOKEN_KEY = os.environ.get("HARBORPY_TOKEN_KEY", str(DATA_DIR / "token_signing_key.pem"))
# Seconds a token is valid.
HARBORPY_TOKEN_EXPIRY = _env_int("HARBORPY_TOKEN_EXPIRY", 1800)
# The service name clients ask tokens for (the token's audience) and the issuer.
HARBORPY_TOKEN_SERVICE = os.environ.get("HARBORPY_TOKEN_SERVICE", "harborpy")
HARBORPY_TOKEN_ISSUER = os.environ.get("HARBORPY_TOKEN_ISSUER", "harborpy-token-service")

# --- REST API (/api/v2.0/) -------------------------------------------------------------------

# Errors of every API view in one shape, from one handler.
REST_FRAMEWORK = {
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI document of /api/v2.0/ (api/openapi.py; docs/api.md). Paths are written as
# Harbor writes them, under a server URL of /api/v2.0; Swagger UI's files come from the
# drf-spectacular-sidecar package, served by the API itself (no CDN).
INSTALLED_APPS += ["drf_spectacular"]
SPECTACULAR_SETTINGS = {
    "TITLE": "harborpy API",
    "DESCRIPTION": "Harbor's v2.0 REST API, as far as harborpy implements it.",
    "VERSION": "2.0",
    "OAS_VERSION": "3.1.0",
    "SERVERS": [{"url": "/api/v2.0"}],
    "SCHEMA_PATH_PREFIX": r"/api/v2\.0",
    "SCHEMA_PATH_PREFIX_TRIM": True,
    "PREPROCESSING_HOOKS": ["api.openapi.api_paths_only"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "APPEND_COMPONENTS": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    "SECURITY": [{"basic": []}],
    "SWAGGER_UI_DIST": "/api/v2.0/docs/assets/swagger-ui-dist",
    "SWAGGER_UI_FAVICON_HREF": "/api/v2.0/docs/assets/swagger-ui-dist/favicon-32x32.png",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "persistAuthorization": False},
}

# --- console logins and OIDC single sign-on (docs/oidc.md) -----------------------------------

# social_django is always installed, so its tables exist before OIDC is switched on.
INSTALLED_APPS += ["social_django"]
# Renders SSO failures (refused, cancelled, expired) as a page with a clear status.
MIDDLEWARE += ["social_django.middleware.SocialAuthExceptionMiddleware"]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/profile/"

# The issuer URL (discovery at <issuer>/.well-known/openid-configuration); unset: no SSO.
HARBORPY_OIDC_ENDPOINT = os.environ.get("HARBORPY_OIDC_ENDPOINT", "").strip().rstrip("/")
HARBORPY_OIDC_NAME = os.environ.get("HARBORPY_OIDC_NAME", "").strip() or "SSO"
HARBORPY_OIDC_GROUPS_CLAIM = os.environ.get("HARBORPY_OIDC_GROUPS_CLAIM", "groups").strip()
HARBORPY_OIDC_ADMIN_GROUP = os.environ.get("HARBORPY_OIDC_ADMIN_GROUP", "").strip()
# Off: only accounts that exist already may log in by SSO; nobody new is created.
HARBORPY_OIDC_AUTO_ONBOARD = _env_bool("HARBORPY_OIDC_AUTO_ONBOARD", True)
if HARBORPY_OIDC_ENDPOINT:
    from django.core.exceptions import ImproperlyConfigured

    if not os.environ.get("HARBORPY_OIDC_CLIENT_ID", "").strip():
        raise ImproperlyConfigured("HARBORPY_OIDC_ENDPOINT is set, HARBORPY_OIDC_CLIENT_ID not")
    # Appended, so that backends another block (LDAP) put first keep their order.
    AUTHENTICATION_BACKENDS = [
        *globals().get("AUTHENTICATION_BACKENDS", ["django.contrib.auth.backends.ModelBackend"]),
        "social_core.backends.open_id_connect.OpenIdConnectAuth",
    ]
    SOCIAL_AUTH_OIDC_OIDC_ENDPOINT = HARBORPY_OIDC_ENDPOINT
    SOCIAL_AUTH_OIDC_KEY = os.environ["HARBORPY_OIDC_CLIENT_ID"].strip()
    SOCIAL_AUTH_OIDC_SECRET = os.environ.get("HARBORPY_OIDC_CLIENT_SECRET", "")
    _scope = os.environ.get("HARBORPY_OIDC_SCOPE", "openid profile email groups").split()
    SOCIAL_AUTH_OIDC_SCOPE = _scope if "openid" in _scope else ["openid", *_scope]
    SOCIAL_AUTH_OIDC_IGNORE_DEFAULT_SCOPE = True
    SOCIAL_AUTH_OIDC_USE_PKCE = True  # S256; providers without PKCE ignore it
    SOCIAL_AUTH_OIDC_USERNAME_KEY = (
        os.environ.get("HARBORPY_OIDC_USERNAME_CLAIM", "").strip() or "preferred_username"
    )
    if HARBORPY_OIDC_GROUPS_CLAIM:
        SOCIAL_AUTH_OIDC_GROUPS_KEY = HARBORPY_OIDC_GROUPS_CLAIM
        # Providers leave the claim out for users in no group: that means no groups.
        SOCIAL_AUTH_OIDC_GROUPS_MISSING_AS_EMPTY = True
    # Behind a TLS proxy the request looks like plain HTTP; the callback URL must not.
    SOCIAL_AUTH_REDIRECT_IS_HTTPS = HARBORPY_EXTERNAL_URL.startswith("https://")
    SOCIAL_AUTH_URL_NAMESPACE = "social"
    SOCIAL_AUTH_PIPELINE = (
        "social_core.pipeline.social_auth.social_details",
        "social_core.pipeline.social_auth.social_names",
        "social_core.pipeline.social_auth.social_uid",
        "social_core.pipeline.social_auth.auth_allowed",
        "social_core.pipeline.social_auth.social_user",
        "rbac.pipeline.account_resolve",  # existing account, new one, or refusal
        "social_core.pipeline.user.create_user",
        "social_core.pipeline.social_auth.associate_user",
        # no load_extra_data: harborpy never calls the provider later, so it keeps no tokens
        "social_core.pipeline.user.user_details",
        "rbac.pipeline.groups_apply",  # the groups claim and the admin group
        "rbac.pipeline.login_record",
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HARBORPY_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
