"""Suite-wide fixtures: live servers, S3, images and real clients."""

pytest_plugins = [
    "tests.fixtures.server",
    "tests.fixtures.s3",
    "tests.fixtures.clients",
    "tests.fixtures.ldap",
    "tests.fixtures.jobs",
]
