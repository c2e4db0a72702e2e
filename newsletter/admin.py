from __future__ import annotations

from datetime import date

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from newsletter.models import Delivery, DeliveryItem, EmailEvent, Feedback, Subscriber, Topic
from newsletter.planning import digest_preview


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "area", "slug", "description", "subscriber_count")
    list_filter = ("area",)
    search_fields = ("name", "slug", "terms")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return super().get_queryset(request).annotate(n_subscribers=Count("subscribers"))

    @admin.display(description="subscribers", ordering="n_subscribers")
    def subscriber_count(self, obj: Topic) -> int:
        return obj.n_subscribers  # type: ignore[attr-defined]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ("email", "status", "frequency", "send_hour", "timezone", "created")
    list_filter = ("status", "frequency", "topics", "created")
    search_fields = ("email",)
    filter_horizontal = ("topics",)
    date_hierarchy = "created"
    readonly_fields = ("created", "updated", "consent_at", "preview_link")

    def get_urls(self) -> list[URLPattern]:
        preview = self.admin_site.admin_view(self.preview_view)
        return [
            path("<int:pk>/preview/", preview, name="newsletter_subscriber_preview"),
            *super().get_urls(),
        ]

    @admin.display(description="next digest")
    def preview_link(self, subscriber: Subscriber) -> str:
        if subscriber.pk is None:
            return "-"
        url = reverse("admin:newsletter_subscriber_preview", args=[subscriber.pk])
        return format_html('<a href="{}">Preview the next digest</a>', url)

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Exactly what ``preview_digest`` shows: the digest dated D (default: today in
        the reader's zone), with scores and reasons, writing nothing."""
        subscriber = get_object_or_404(Subscriber, pk=pk)
        if not self.has_view_permission(request, subscriber):
            raise PermissionDenied
        raw = request.GET.get("date", "")
        try:
            digest_date = date.fromisoformat(raw) if raw else subscriber.local_date()
        except ValueError:
            messages.error(request, f"{raw!r} is not a date; use YYYY-MM-DD.")
            digest_date = subscriber.local_date()
        preview = digest_preview(subscriber=subscriber, digest_date=digest_date)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Digest preview for {subscriber.email}",
            "subscriber": subscriber,
            "digest_date": digest_date,
            "preview": preview,
            "scheduled": subscriber.receives_on(digest_date),
        }
        return TemplateResponse(request, "admin/newsletter/subscriber/preview.html", context)


class DeliveryItemInline(admin.TabularInline):
    model = DeliveryItem
    fields = ("rank", "paper", "score", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("subscriber", "digest_date", "status", "attempts", "sent_at")
    list_filter = ("status", "digest_date")
    search_fields = ("subscriber__email", "message_id", "provider_id")
    date_hierarchy = "digest_date"
    raw_id_fields = ("subscriber",)
    readonly_fields = ("public_id", "created", "sent_at", "message_id", "provider_id", "error")
    inlines = [DeliveryItemInline]


@admin.register(EmailEvent)
class EmailEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "provider", "event_type", "recipient", "delivery")
    list_filter = ("event_type", "provider")
    search_fields = ("recipient", "event_id")
    raw_id_fields = ("delivery", "subscriber")


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("created", "subscriber", "paper", "vote")
    list_filter = ("vote",)
    raw_id_fields = ("subscriber", "paper")
