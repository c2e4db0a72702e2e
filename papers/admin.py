from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from papers.models import IngestRun, Paper


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = ("arxiv_id", "title", "catalogue_date", "upvotes", "num_comments", "source")
    list_filter = ("source", "catalogue_date")
    search_fields = ("arxiv_id", "title", "abstract")
    date_hierarchy = "catalogue_date"
    ordering = ("-catalogue_date", "-upvotes")
    readonly_fields = ("created", "updated")


STATUS_COLOURS = {"succeeded": "#047857", "failed": "#b91c1c", "running": "#1d4ed8"}


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    list_display = (
        "started_at",
        "source",
        "status_badge",
        "detail",
        "window_start",
        "window_end",
        "fetched",
        "created_count",
        "updated_count",
        "skipped_count",
    )
    list_filter = ("status", "source", "started_at")
    search_fields = ("detail", "error")
    readonly_fields = [
        *(f.name for f in IngestRun._meta.fields if f.name != "skipped"),
        "skipped_list",
    ]
    exclude = ("skipped",)
    date_hierarchy = "started_at"

    @admin.display(description="status", ordering="status")
    def status_badge(self, run: IngestRun) -> str:
        colour = STATUS_COLOURS.get(run.status, "#52525b")
        label = (
            run.get_status_display().upper() if run.status == "failed" else run.get_status_display()
        )
        title = run.error[:300]
        return format_html('<strong style="color:{}" title="{}">{}</strong>', colour, title, label)

    @admin.display(description="skipped records")
    def skipped_list(self, run: IngestRun) -> str:
        if not run.skipped:
            return "none"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((s.get("id", "?"), s.get("reason", "")) for s in run.skipped),
        )

    def has_add_permission(self, request: object) -> bool:
        return False
