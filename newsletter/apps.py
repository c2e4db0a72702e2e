from __future__ import annotations

from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Newsletter"

    def ready(self) -> None:
        from newsletter import checks, control, tracking  # noqa: F401  (checks, signal receivers)
