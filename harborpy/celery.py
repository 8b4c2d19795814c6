"""The Celery application: Redis broker in production, a filesystem queue when embedded."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")

app = Celery("harborpy")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
