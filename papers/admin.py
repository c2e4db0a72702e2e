"""The admin of the catalogue: papers (search, filters) and ingest runs (read-only)."""

from __future__ import annotations

from collections import Counter

from django.contrib import admin
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from papers.models import IngestRun, Paper


class YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on one condition (``present``)."""

    present: Q

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Paper]) -> QuerySet[Paper]:
        if self.value() == "yes":
            return queryset.filter(self.present)
        if self.value() == "no":
            return queryset.exclude(self.present)
        return queryset


class HasCodeFilter(YesNoFilter):
    title = "has code"
    parameter_name = "code"
    present = ~Q(github_repo="")


class OnHuggingFaceFilter(YesNoFilter):
    title = "on Hugging Face daily papers"
    parameter_name = "hf"
    present = Q(featured_on__isnull=False)


class HasProjectPageFilter(YesNoFilter):
    title = "has a project page"
    parameter_name = "project"
    present = ~Q(project_page="")


@admin.register(Paper)
class PaperAdmin(admin.ModelAdmin):
    list_display = (
        "arxiv_id",
        "title",
        "first_authors",
        "catalogue_date",
        "upvotes",
        "num_comments",
        "has_code",
        "source",
    )
    list_filter = (
        "source",
        HasCodeFilter,
        OnHuggingFaceFilter,
        HasProjectPageFilter,
        "catalogue_date",
    )
    # Authors are a JSON list: the search matches inside its text, so any part of a
    # name finds the paper.
    search_fields = ("arxiv_id", "title", "authors", "abstract")
    search_help_text = "Search by title, arXiv id (2501.19393), author name or abstract."
    date_hierarchy = "catalogue_date"
    ordering = ("-catalogue_date", "-upvotes")
    readonly_fields = ("created", "updated")

    @admin.display(description="authors")
    def first_authors(self, paper: Paper) -> str:
        names = paper.authors[:3]
        return ", ".join(names) + (" et al." if len(paper.authors) > 3 else "")

    @admin.display(description="code", boolean=True, ordering="github_repo")
    def has_code(self, paper: Paper) -> bool:
        return bool(paper.github_repo)


STATUS_COLOURS = {"succeeded": "#047857", "failed": "#b91c1c", "running": "#1d4ed8"}


@admin.register(IngestRun)
class IngestRunAdmin(admin.ModelAdmin):
    """A record of what each run did: read-only (runs are made by the ingest tasks and
    commands, never by hand)."""

    # Compact columns, so that the list fits a 1280-pixel screen beside its filters.
    list_display = ("started", "source", "status_badge", "detail", "window", "counts", "duration")
    list_filter = ("status", "source", "started_at")
    search_fields = ("detail", "error")
    readonly_fields = [
        *(f.name for f in IngestRun._meta.fields if f.name != "skipped"),
        "skipped_reasons",
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

    @admin.display(description="why records were skipped")
    def skipped_reasons(self, run: IngestRun) -> str:
        reasons = Counter(str(s.get("reason", "")) for s in run.skipped)
        if not reasons:
            return "none"
        return format_html_join(
            mark_safe("<br>"), "{} × {}", ((n, reason) for reason, n in reasons.most_common())
        )

    @admin.display(description="skipped records")
    def skipped_list(self, run: IngestRun) -> str:
        if not run.skipped:
            return "none"
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((s.get("id", "?"), s.get("reason", "")) for s in run.skipped),
        )

    @admin.display(description="started", ordering="started_at")
    def started(self, run: IngestRun) -> str:
        return localtime(run.started_at).strftime("%Y-%m-%d %H:%M")

    @admin.display(description="window", ordering="window_start")
    def window(self, run: IngestRun) -> str:
        start, end = run.window_start, run.window_end
        if start is None:
            return "-"
        return start.isoformat() if end in (None, start) else f"{start} to {end}"

    @admin.display(description="fetched / new / updated / skipped")
    def counts(self, run: IngestRun) -> str:
        return f"{run.fetched} / {run.created_count} / {run.updated_count} / {run.skipped_count}"

    @admin.display(description="took")
    def duration(self, run: IngestRun) -> str:
        if run.finished_at is None:
            return "-"
        seconds = round((run.finished_at - run.started_at).total_seconds())
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: IngestRun | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: IngestRun | None = None) -> bool:
        return False
