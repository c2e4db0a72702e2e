from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from newsletter.tracking import webhook_urlpatterns

admin.site.site_header = "Paperboy administration"
admin.site.site_title = "Paperboy admin"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Provider tracking webhooks: /anymail/<esp>/tracking/, basic auth ANYMAIL_WEBHOOK_SECRET.
    path("anymail/", include(webhook_urlpatterns())),
    path("", include("newsletter.urls")),
]
