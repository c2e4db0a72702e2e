from __future__ import annotations

from django.contrib import admin

from papers.models import IngestRun, Paper


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = ("arxiv_id", "title", "catalogue_date", "upvotes", "num_comments", "source")
    list_filter = ("source", "catalogue_date")
    search_fields = ("arxiv_id", "title", "abstract")
    date_hierarchy = "catalogue_date"
    ordering = ("-catalogue_date", "-upvotes")
    readonly_fields = ("created", "updated")


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "source",
        "status",
        "window_start",
        "window_end",
        "fetched",
        "created_count",
        "updated_count",
        "skipped_count",
    )
    list_filter = ("status", "source")
    readonly_fields = [f.name for f in IngestRun._meta.fields]
    date_hierarchy = "started_at"

    def has_add_permission(self, request: object) -> bool:
        return False
