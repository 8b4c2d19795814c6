"""System checks: refuse to start on settings that cannot work."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, register


@register()
def storage_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    url = urlsplit(settings.HARBORPY_STORAGE)
    if url.scheme not in ("file", "s3"):
        errors.append(
            Error(
                "HARBORPY_STORAGE must be a file:// or s3:// URL, "
                f"not {settings.HARBORPY_STORAGE!r}",
                id="harborpy.E001",
            )
        )
    elif url.scheme == "s3" and not url.netloc:
        errors.append(Error("HARBORPY_STORAGE names no S3 bucket", id="harborpy.E002"))
    if settings.HARBORPY_STORAGE_REDIRECT and url.scheme != "s3":
        errors.append(Error("HARBORPY_STORAGE_REDIRECT needs S3 storage", id="harborpy.E003"))
    if settings.HARBORPY_PAGE_MAX < 1:
        errors.append(Error("HARBORPY_PAGE_MAX must be at least 1", id="harborpy.E004"))
    return errors


@register()
def gc_settings(app_configs, **kwargs) -> list[Error]:
    from .celery import cron_schedule

    errors = []
    if settings.HARBORPY_GC_GRACE < 0:
        errors.append(Error("HARBORPY_GC_GRACE cannot be negative", id="harborpy.E005"))
    if settings.HARBORPY_GC_SCHEDULE:
        try:
            cron_schedule(settings.HARBORPY_GC_SCHEDULE)
        except ValueError as error:
            errors.append(
                Error(
                    f"HARBORPY_GC_SCHEDULE is not a cron expression: {error}",
                    hint='five fields, e.g. "0 3 * * 6" (Saturdays at 03:00), or @daily',
                    id="harborpy.E006",
                )
            )
    return errors


@register()
def job_settings(app_configs, **kwargs) -> list[Error]:
    errors = []
    resend, lost = settings.HARBORPY_JOB_RESEND_SECONDS, settings.HARBORPY_JOB_LOST_SECONDS
    if resend < 1:
        errors.append(Error("HARBORPY_JOB_RESEND_SECONDS must be at least 1", id="harborpy.E007"))
    if lost <= resend:
        errors.append(
            Error(
                "HARBORPY_JOB_LOST_SECONDS must be longer than HARBORPY_JOB_RESEND_SECONDS",
                hint="a run is sent again before it is given up on as lost",
                id="harborpy.E008",
            )
        )
    return errors
