"""WSGI entry point for gunicorn: ``gunicorn config.wsgi``."""

from __future__ import annotations

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
get_resolver().url_patterns  # noqa: B018  import the views now, not on the first request
# Everything loaded so far lives as long as the process: keep it out of the garbage
# collector's full collections, which would otherwise walk all of it every thousand or
# so requests (about 70 ms, a stall that every request queued behind it waits out).
gc.freeze()
