"""System checks: misconfiguration fails fast with a message that says what to set."""

from __future__ import annotations

import importlib
from typing import Any

from django.conf import settings
from django.core.checks import Error, register

from config.env import is_set
from newsletter.tracking import TRACKING_VIEWS, webhook_problems

LOCAL_PROVIDERS = ("file", "console", "smtp")


def _missing(name: str, check_id: str, why: str) -> Error:
    return Error(f"{name} is not set: {why}", hint=f"Set {name} in the environment.", id=check_id)


def _provider_errors() -> list[Error]:
    provider = settings.EMAIL_PROVIDER
    if provider in LOCAL_PROVIDERS:
        return []
    try:
        importlib.import_module(f"anymail.backends.{provider}")
    except ImportError:
        return [
            Error(
                f"EMAIL_PROVIDER={provider!r} is not a known provider.",
                hint="Use file, console, smtp, or an anymail ESP name such as postmark, "
                "mailgun, amazon_ses, brevo or resend.",
                id="paperboy.E009",
            )
        ]
    return []


@register()
def check_email_provider(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    return _provider_errors()


@register()
def check_production_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """With DEBUG off, every production variable must be set."""
    if settings.DEBUG:
        return []
    errors = []
    required = [
        ("DJANGO_SECRET_KEY", "paperboy.E001", "signed links and sessions need a secret key"),
        ("DJANGO_ALLOWED_HOSTS", "paperboy.E002", "list the host names the site answers to"),
        ("SITE_URL", "paperboy.E003", "links in emails are built from it"),
        ("DATABASE_URL", "paperboy.E004", "production runs on PostgreSQL"),
        ("REDIS_URL", "paperboy.E005", "Celery and the rate limits need Redis"),
        ("DEFAULT_FROM_EMAIL", "paperboy.E006", "digests need a sender address"),
        ("EMAIL_PROVIDER", "paperboy.E007", "choose smtp or an email service provider"),
    ]
    errors = [_missing(name, cid, why) for name, cid, why in required if not is_set(name)]
    if is_set("SITE_URL") and not settings.SITE_URL.startswith("https://"):
        errors.append(Error("SITE_URL must start with https:// in production.", id="paperboy.E003"))
    if settings.EMAIL_PROVIDER in ("file", "console") and is_set("EMAIL_PROVIDER"):
        errors.append(
            Error(
                f"EMAIL_PROVIDER={settings.EMAIL_PROVIDER} only writes mail locally.",
                hint="Set EMAIL_PROVIDER to smtp or an email service provider.",
                id="paperboy.E007",
            )
        )
    if settings.EMAIL_PROVIDER == "smtp" and not is_set("EMAIL_URL"):
        errors.append(_missing("EMAIL_URL", "paperboy.E008", "smtp needs a server address"))
    return errors


@register()
def check_webhook(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """The mounted tracking webhook (PAPERBOY_WEBHOOK_PROVIDER: the ESP, or the ESP behind
    an smtp relay) refuses every request until its secrets are set: say which, in every
    environment, so bounces are never silently lost."""
    provider = settings.PAPERBOY_WEBHOOK_PROVIDER
    if not provider:
        return []
    if provider not in TRACKING_VIEWS:
        return [
            Error(
                f"PAPERBOY_WEBHOOK_PROVIDER={provider!r} has no tracking webhook.",
                hint="Use one of: " + ", ".join(sorted(TRACKING_VIEWS)) + ", or leave it empty.",
                id="paperboy.E011",
            )
        ]
    why = f"the {provider} tracking webhook refuses every request without it"
    return [_missing(name, "paperboy.E010", why) for name in webhook_problems(provider)]
