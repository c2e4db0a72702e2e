from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class PaperboyAdminConfig(AdminConfig):
    """django.contrib.admin with Paperboy's site (dashboard, rate-limited login)."""

    default_site = "config.admin.PaperboyAdminSite"
