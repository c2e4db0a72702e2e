from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from newsletter.models import Delivery, DeliveryItem, EmailEvent, Feedback, Subscriber, Topic


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
    readonly_fields = ("created", "updated", "consent_at")


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
