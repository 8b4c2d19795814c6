"""WSGI entry point (gunicorn harborpy.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harborpy.settings")

application = get_wsgi_application()
