"""The admin: subscribers (actions, CSV export and import, their history, a preview and
a test send of their next digest), topics, deliveries (retry, resend, counts per day),
provider events, feedback, and the dashboard; the control room is in admin_control."""

from __future__ import annotations

import calendar
import logging
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString
from django.utils.text import Truncator
from django.utils.timezone import get_current_timezone_name, localtime

from newsletter import admin_control  # noqa: F401  (registers the control room's runs)
from newsletter.charts import daily_bars, ranking_bars
from newsletter.forms import HOUR_CHOICES, WEEKDAY_CHOICES, ZoneSelect
from newsletter.models import Delivery, DeliveryItem, EmailEvent, Feedback, Subscriber, Topic
from newsletter.planning import digest_preview
from newsletter.proofs import digest_proof_send
from newsletter.queueing import enqueue_sends
from newsletter.sending import RESENDABLE, RETRYABLE, deliveries_requeue
from newsletter.stats import (
    PIPELINE,
    RequeueSplit,
    daily_counts,
    dashboard_counts,
    requeue_split,
)
from newsletter.subscriber_csv import (
    IMPORT_MAX_BYTES,
    ImportProblem,
    ImportReport,
    export_lines,
    subscribers_import,
)
from newsletter.subscriptions import confirmations_request
from papers.models import Paper

log = logging.getLogger(__name__)

Status = Subscriber.Status
ACTIVE_FILTER = Q(subscribers__status=Status.ACTIVE)


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ("name", "area", "slug", "description", "active_count", "subscriber_count")
    list_filter = ("area",)
    search_fields = ("name", "slug", "terms")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Topic]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_subscribers=Count("subscribers"),
                n_active=Count("subscribers", filter=ACTIVE_FILTER),
            )
        )

    def _readers_link(self, topic: Topic, n: int, status: str = "") -> str:
        query: dict[str, str | int] = {"topics__id__exact": topic.pk}
        if status:
            query["status__exact"] = status
        url = reverse("admin:newsletter_subscriber_changelist") + "?" + urlencode(query)
        return format_html('<a href="{}">{}</a>', url, n)

    @admin.display(description="active subscribers", ordering="n_active")
    def active_count(self, topic: Topic) -> str:
        return self._readers_link(topic, topic.n_active, Status.ACTIVE)  # type: ignore[attr-defined]

    @admin.display(description="all subscribers", ordering="n_subscribers")
    def subscriber_count(self, topic: Topic) -> str:
        return self._readers_link(topic, topic.n_subscribers)  # type: ignore[attr-defined]


# The subscriber actions move readers from Subscriber.REACHABLE (suppress) and
# Subscriber.REACTIVATABLE (reactivate). Deleted rows (personal data erased) are never
# touched; bounced and complained readers come back only through a fresh opt-in of their own.
RECENT = 10  # deliveries, events and votes shown on a subscriber's page
IMPORT_SHOWN = 1000  # rows listed on the import report
FIELDSETS: tuple[tuple[str | None, dict[str, Any]], ...] = (
    (None, {"fields": ("email", "status", "consent_at", "created", "updated")}),
    ("Interests", {"fields": ("topics", "keywords", "authors", "liked_papers")}),
    ("Schedule", {"fields": ("frequency", "weekly_day", "send_hour", "timezone", "max_papers")}),
    ("Links", {"fields": ("token_version",)}),
)
HISTORY: tuple[tuple[str | None, dict[str, Any]], ...] = (
    ("Next digest", {"fields": ("preview_link",)}),
    ("Deliveries", {"fields": ("recent_deliveries",)}),
    ("Email events", {"fields": ("recent_events",)}),
    ("Feedback", {"fields": ("recent_feedback",)}),
)


def _subscribers(n: int) -> str:
    return f"{n} subscriber{'' if n == 1 else 's'}"


def _status_breakdown(queryset: QuerySet[Subscriber]) -> str:
    """ "2 active, 1 bounced": the selection by status, in one query."""
    groups = queryset.order_by().values("status").annotate(n=Count("pk")).order_by("status")
    return ", ".join(f"{g['n']} {Status(g['status']).label.lower()}" for g in groups)


def _history_table(headings: tuple[str, ...], rows: list[tuple[Any, ...]], more: str) -> str:
    cells = "".join("<td>{}</td>" for _ in headings)
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headings))
    body = format_html_join("", "<tr>" + cells + "</tr>", rows)
    return format_html(
        "<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table><p>{}</p>", head, body, more
    )


def _all_link(changelist: str, subscriber: Subscriber, n: int, noun: str) -> str:
    url = reverse(changelist) + "?" + urlencode({"subscriber__id__exact": subscriber.pk})
    return format_html('<a href="{}">All {} {}</a>', url, n, noun)


class ImportForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="CSV file",
        help_text=f"UTF-8, comma-separated, at most {IMPORT_MAX_BYTES // 1024 // 1024} MB.",
    )
    # The text of the file checked in a dry run, carried to the real run.
    checked = forms.CharField(required=False, widget=forms.HiddenInput)
    consented = forms.BooleanField(
        required=False,
        label="Everyone in this file has already consented to receive these digests",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        upload = cleaned.get("file")
        if upload is not None:
            if upload.size > IMPORT_MAX_BYTES:
                raise forms.ValidationError("The file is too large; split it.")
            cleaned["bytes"] = upload.read()
        elif cleaned.get("checked"):
            cleaned["bytes"] = cleaned["checked"].encode()
        else:
            raise forms.ValidationError("Choose a CSV file.")
        return cleaned


class LinesField(forms.CharField):
    """A list of names edited as one per line (stored as a JSON list)."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list):
            return value
        lines = (" ".join(line.split()) for line in str(value or "").splitlines())
        return list(dict.fromkeys(line for line in lines if line))


class SubscriberAdminForm(forms.ModelForm):
    """The reader's fields as a reader sees them: names one per line, weekdays and hours
    by name, the time zone from the list; the model's validators still apply."""

    authors = LinesField(required=False, help_text="One name per line, as written on arXiv.")
    liked_papers = LinesField(
        required=False, label="Liked papers", help_text="arXiv ids, one per line."
    )

    class Meta:
        model = Subscriber
        fields = [
            *FIELDSETS[0][1]["fields"],
            *FIELDSETS[1][1]["fields"],
            *FIELDSETS[2][1]["fields"],
        ]
        widgets = {
            "weekly_day": forms.Select(choices=WEEKDAY_CHOICES),
            "send_hour": forms.Select(choices=HOUR_CHOICES),
            "timezone": ZoneSelect(),
        }
        help_texts = {"weekly_day": "For weekly readers.", "send_hour": "In the reader's zone."}


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    form = SubscriberAdminForm
    # Compact columns, so that the list fits a 1280-pixel screen beside its filters.
    list_display = ("email", "status", "schedule", "topic_list", "joined")
    list_filter = ("status", "frequency", "topics", "created")
    search_fields = ("email",)
    filter_horizontal = ("topics",)
    date_hierarchy = "created"
    readonly_fields = (
        "created",
        "updated",
        "consent_at",
        "token_version",
        "preview_link",
        "recent_deliveries",
        "recent_events",
        "recent_feedback",
    )
    actions = ["suppress", "reactivate", "resend_confirmation", "export_csv"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscriber]:
        return super().get_queryset(request).prefetch_related("topics")

    def get_fieldsets(self, request: HttpRequest, obj: Subscriber | None = None) -> Any:
        """The fields in groups, any field not named in FIELDSETS in a last group, and
        on an existing subscriber's page their history."""
        named = {name for _, options in FIELDSETS + HISTORY for name in options["fields"]}
        rest = [name for name in self.get_fields(request, obj) if name not in named]
        fieldsets = [*FIELDSETS, *([("More", {"fields": rest})] if rest else [])]
        return fieldsets + (list(HISTORY) if obj is not None else [])

    @admin.display(description="topics")
    def topic_list(self, subscriber: Subscriber) -> str:
        return Truncator(", ".join(t.name for t in subscriber.topics.all())).chars(40)

    @admin.display(description="schedule", ordering="send_hour")
    def schedule(self, subscriber: Subscriber) -> str:
        """ "Daily 07:00 UTC", "Wed 06:00 Europe/Paris": frequency, hour and zone."""
        day = "Daily"
        if subscriber.frequency == Subscriber.Frequency.WEEKLY:
            day = calendar.day_abbr[subscriber.weekly_day]
        return f"{day} {subscriber.send_hour:02d}:00 {subscriber.timezone}"

    @admin.display(description="joined / confirmed", ordering="created")
    def joined(self, subscriber: Subscriber) -> str:
        """When they signed up and, beneath, when they confirmed (consent)."""
        consent = subscriber.consent_at
        return format_html(
            "{}<br>{}",
            localtime(subscriber.created).date().isoformat(),
            localtime(consent).date().isoformat() if consent else "not confirmed",
        )

    # Actions -------------------------------------------------------------------------

    def _move(
        self,
        request: HttpRequest,
        queryset: QuerySet[Subscriber],
        moves: Q,
        to: str,
        note: str,
    ) -> list[int]:
        """Set ``to`` on the selected subscribers that match ``moves`` (checked again
        under a row lock, so a bounce or an unsubscribe arriving meanwhile wins), and
        write each one's admin history; the ids moved."""
        with transaction.atomic():
            candidates = list(queryset.filter(moves).values_list("pk", flat=True))
            locked = Subscriber.objects.select_for_update().filter(moves, pk__in=candidates)
            ids = list(locked.values_list("pk", flat=True))
            Subscriber.objects.filter(pk__in=ids).update(status=to, updated=timezone.now())
            user_id = request.user.pk
            assert user_id is not None  # admin_view lets only staff in
            moved = Subscriber.objects.filter(pk__in=ids)
            LogEntry.objects.log_actions(user_id, moved, CHANGE, note)
        return ids

    def _report(
        self, request: HttpRequest, done: str, queryset: QuerySet[Subscriber], ids: list[int]
    ) -> None:
        left = queryset.exclude(pk__in=ids)
        text = done
        breakdown = _status_breakdown(left)
        if breakdown:
            text += f" Left alone: {breakdown}."
        level = messages.SUCCESS if ids and not breakdown else messages.WARNING
        self.message_user(request, text, level)

    @admin.action(
        description="Suppress: stop all email (mark unsubscribed)", permissions=["change"]
    )
    def suppress(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        """Active, pending and paused readers become unsubscribed (they may come back
        through their own manage link); an event records it on their timeline and in
        the unsubscribes per day."""
        note = f"Suppressed (unsubscribed) by {request.user.get_username()} in the admin."
        ids = self._move(
            request, queryset, Q(status__in=Subscriber.REACHABLE), Status.UNSUBSCRIBED, note
        )
        now = timezone.now()
        EmailEvent.objects.bulk_create(
            EmailEvent(
                provider="admin",
                event_type="unsubscribed",
                subscriber_id=pk,
                timestamp=now,
                description=note,
            )
            for pk in ids
        )
        self._report(request, f"Suppressed {_subscribers(len(ids))}.", queryset, ids)

    @admin.action(description="Reactivate: send digests again", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        """Unsubscribed and paused readers who once confirmed become active. Bounced and
        complained ones need a fresh opt-in of their own (their manage page offers it);
        those who never confirmed need the confirmation email instead."""
        moves = Q(status__in=Subscriber.REACTIVATABLE, consent_at__isnull=False)
        note = f"Reactivated by {request.user.get_username()} in the admin."
        ids = self._move(request, queryset, moves, Status.ACTIVE, note)
        done = f"Reactivated {_subscribers(len(ids))}."
        never = queryset.filter(
            status__in=Subscriber.REACTIVATABLE, consent_at__isnull=True
        ).count()
        if never:
            done += (
                f" {_subscribers(never)} never confirmed: "
                '"Resend confirmation email" would ask them first.'
            )
        self._report(request, done, queryset, ids)

    @admin.action(description="Resend confirmation email (pending only)", permissions=["change"])
    def resend_confirmation(self, request: HttpRequest, queryset: QuerySet[Subscriber]) -> None:
        """A fresh confirmation link for each pending subscriber, sent by the workers
        (at most the daily cap per address). Their unconfirmed-signup clock restarts, so
        the daily clean-up does not delete them while the new link works."""
        with transaction.atomic():
            pending = queryset.filter(status=Status.PENDING)
            ids = list(pending.values_list("pk", flat=True))
            confirmations_request(Subscriber.objects.filter(pk__in=ids))
            note = f"Confirmation email resent by {request.user.get_username()}."
            user_id = request.user.pk
            assert user_id is not None
            LogEntry.objects.log_actions(
                user_id, Subscriber.objects.filter(pk__in=ids), CHANGE, note
            )
        done = f"Queued a confirmation email to {_subscribers(len(ids))}."
        self._report(request, done, queryset, ids)

    @admin.action(description="Export selected as CSV", permissions=["view"])
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[Subscriber]
    ) -> StreamingHttpResponse:
        """Every selected subscriber's data, streamed; the export itself goes into the
        admin's history (who, when, how many), as any other action does."""
        count = queryset.count()
        user_id = request.user.pk
        assert user_id is not None
        LogEntry.objects.create(
            user_id=user_id,
            content_type=ContentType.objects.get_for_model(Subscriber),
            object_id=None,
            object_repr=f"CSV export of {_subscribers(count)}",
            action_flag=CHANGE,
            change_message=f"Exported {_subscribers(count)} as CSV.",
        )
        log.info("admin %s exported %d subscribers as CSV", request.user.get_username(), count)
        response = StreamingHttpResponse(
            export_lines(queryset.prefetch_related(None)), content_type="text/csv; charset=utf-8"
        )
        name = f"subscribers-{timezone.localdate().isoformat()}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    # The change page -----------------------------------------------------------------

    @admin.display(description="next digest")
    def preview_link(self, subscriber: Subscriber) -> str:
        if subscriber.pk is None:
            return "-"
        url = reverse("admin:newsletter_subscriber_preview", args=[subscriber.pk])
        return format_html('<a href="{}">Preview the next digest</a>', url)

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, subscriber: Subscriber) -> str:
        if subscriber.pk is None:
            return "-"
        deliveries = list(
            subscriber.deliveries.annotate(papers=Count("items")).order_by("-digest_date", "-pk")[
                :RECENT
            ]
        )
        if not deliveries:
            return "None yet."
        rows = [
            (
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:newsletter_delivery_change", args=[d.pk]),
                    d.digest_date.isoformat(),
                ),
                status_badge(d),
                d.papers,
                _when(d.sent_at) if d.sent_at else "",
                Truncator(d.error).chars(80),
            )
            for d in deliveries
        ]
        total = subscriber.deliveries.count()
        more = _all_link("admin:newsletter_delivery_changelist", subscriber, total, "deliveries")
        return _history_table(("Digest date", "Status", "Papers", "Sent", "Error"), rows, more)

    @admin.display(description="recent email events")
    def recent_events(self, subscriber: Subscriber) -> str:
        if subscriber.pk is None:
            return "-"
        events = list(subscriber.events.order_by("-timestamp", "-pk")[:RECENT])
        if not events:
            return "None yet."
        rows = [
            (_when(e.timestamp), e.provider, e.event_type, Truncator(e.description).chars(120))
            for e in events
        ]
        total = subscriber.events.count()
        more = _all_link("admin:newsletter_emailevent_changelist", subscriber, total, "events")
        return _history_table(("Time", "Provider", "Event", "Description"), rows, more)

    @admin.display(description="recent feedback")
    def recent_feedback(self, subscriber: Subscriber) -> str:
        if subscriber.pk is None:
            return "-"
        votes = list(
            subscriber.feedback.select_related("paper").order_by("-created", "-pk")[:RECENT]
        )
        if not votes:
            return "None yet."
        rows = [
            (
                _when(f.created),
                f.get_vote_display(),
                format_html(
                    '<a href="{}">{}</a>',
                    reverse("admin:papers_paper_change", args=[f.paper_id]),
                    Truncator(f.paper.title).chars(100),
                ),
            )
            for f in votes
        ]
        tally = subscriber.feedback.aggregate(
            up=Count("pk", filter=Q(vote=Feedback.Vote.UP)),
            down=Count("pk", filter=Q(vote=Feedback.Vote.DOWN)),
        )
        link = _all_link(
            "admin:newsletter_feedback_changelist", subscriber, tally["up"] + tally["down"], "votes"
        )
        more = format_html("{} ({} up, {} down)", link, tally["up"], tally["down"])
        return _history_table(("Time", "Vote", "Paper"), rows, more)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Subscriber | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context["test_send_url"] = reverse("admin:newsletter_subscriber_test", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        can_import = self.has_add_permission(request) and self.has_change_permission(request)
        return super().changelist_view(request, {**(extra_context or {}), "can_import": can_import})

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="newsletter_subscriber_import"),
            path(
                "<int:pk>/preview/", wrap(self.preview_view), name="newsletter_subscriber_preview"
            ),
            path(
                "<int:pk>/send-test/", wrap(self.test_send_view), name="newsletter_subscriber_test"
            ),
            *super().get_urls(),
        ]

    def _digest_date(self, subscriber: Subscriber, raw: str) -> tuple[date | None, str]:
        """The date asked for (None and why, if it is not one), or by default the one
        worth looking at (``preview_default``) and a note saying why it is that one."""
        if raw:
            try:
                return date.fromisoformat(raw), ""
            except ValueError:
                return None, f"{raw!r} is not a date: use YYYY-MM-DD."
        return preview_default(subscriber)

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Exactly what ``preview_digest`` shows: the digest dated D (default: today in
        the reader's zone), with scores and reasons, writing nothing."""
        subscriber = get_object_or_404(Subscriber, pk=pk)
        if not self.has_view_permission(request, subscriber):
            raise PermissionDenied
        digest_date, note = self._digest_date(subscriber, request.GET.get("date", ""))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Digest preview for {subscriber.email}",
            "subscriber": subscriber,
            "digest_date": digest_date,
            "test_send_url": reverse("admin:newsletter_subscriber_test", args=[subscriber.pk]),
        }
        template = "admin/newsletter/subscriber/preview.html"
        if digest_date is None:  # said on the page, with nothing previewed
            context.update(error=note, raw_date=request.GET.get("date", ""))
            return TemplateResponse(request, template, context, status=400)
        context.update(
            note=note,
            preview=digest_preview(subscriber=subscriber, digest_date=digest_date),
            scheduled=subscriber.receives_on(digest_date),
        )
        return TemplateResponse(request, template, context)

    def test_send_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The "send this digest to me as a test" button: the preview, mailed to the
        admin's own address with "[Test]" in the subject; nothing is recorded."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        subscriber = get_object_or_404(Subscriber, pk=pk)
        if not self.has_view_permission(request, subscriber):
            raise PermissionDenied
        digest_date, note = self._digest_date(subscriber, request.POST.get("date", ""))
        back = reverse("admin:newsletter_subscriber_change", args=[pk])
        if digest_date is None:
            messages.error(request, f"No test was sent: {note}")
            return HttpResponseRedirect(back)
        if request.POST.get("next") == "preview":
            back = (
                reverse("admin:newsletter_subscriber_preview", args=[pk])
                + "?"
                + urlencode({"date": digest_date.isoformat()})
            )
        to = getattr(request.user, "email", "")
        if not to:
            messages.error(request, "Your admin account has no email address: add one under Users.")
            return HttpResponseRedirect(back)
        try:
            result = digest_proof_send(subscriber=subscriber, digest_date=digest_date, to=to)
        except Exception as exc:  # the provider's answer, shown to the admin
            messages.error(request, f"The test was not sent: {exc}")
            return HttpResponseRedirect(back)
        n = len(result.preview.items)
        if result.message is None:
            messages.warning(
                request,
                f"Nothing matches for the digest dated {digest_date}: no test was sent "
                "(the real digest would be skipped).",
            )
        else:
            messages.success(
                request,
                f"Sent a test of the digest dated {digest_date} ({n} paper{'' if n == 1 else 's'}) "
                f"to {to}. Nothing was recorded: the reader can still get these papers.",
            )
        return HttpResponseRedirect(back)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        """Upload a CSV of subscribers, check it (dry run: nothing written), then
        import it; see ``subscribers_import`` for the rules."""
        if not (self.has_add_permission(request) and self.has_change_permission(request)):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            dry_run = request.POST.get("run") != "import"
            try:
                report = self._import(request, form.cleaned_data, dry_run)
            except ImportProblem as exc:
                form.add_error("file", str(exc))
        shown = sorted(report.rows, key=lambda r: (r.action != "error", r.line)) if report else []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import subscribers from CSV",
            "form": form,
            "report": report,
            "rows": shown[:IMPORT_SHOWN],
            "more": max(0, len(shown) - IMPORT_SHOWN),
            "checked": form.cleaned_data.get("bytes", b"").decode() if report else "",
            "max_age_days": settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS,
        }
        return TemplateResponse(request, "admin/newsletter/subscriber/import.html", context)

    def _import(self, request: HttpRequest, cleaned: dict[str, Any], dry_run: bool) -> ImportReport:
        consented = bool(cleaned.get("consented"))
        with transaction.atomic():
            report = subscribers_import(data=cleaned["bytes"], consented=consented, dry_run=dry_run)
            if dry_run:
                return report
            user_id = request.user.pk
            assert user_id is not None
            how = "consent given elsewhere" if consented else "pending confirmation"
            note = f"Imported from CSV by {request.user.get_username()} ({how})."
            for ids, flag in ((report.created_ids, ADDITION), (report.updated_ids, CHANGE)):
                LogEntry.objects.log_actions(
                    user_id, Subscriber.objects.filter(pk__in=ids), flag, note
                )
            if not consented:
                confirmations_request(Subscriber.objects.filter(pk__in=report.created_ids))
        self.message_user(
            request,
            f"Imported: {report.created} created, {report.updated} updated, "
            f"{report.skipped} skipped, {report.errors} with errors (not imported).",
            messages.WARNING if report.errors else messages.SUCCESS,
        )
        return report


class DeliveryItemInline(admin.TabularInline):
    model = DeliveryItem
    fields = ("rank", "paper", "score", "reason")
    readonly_fields = fields
    extra = 0
    can_delete = False


def preview_default(subscriber: Subscriber) -> tuple[date, str]:
    """The digest worth previewing when no date is asked for: the next one (today in the
    reader's zone), unless no paper newer than what it would cover has come in (a
    catalogue that is not fed, as in the demo). Then the latest digest the reader got,
    or, if none, the one dated the day after the newest papers; with a note saying so."""
    today = subscriber.local_date()
    newest = Paper.objects.aggregate(newest=Max("catalogue_date"))["newest"]
    if newest is None or newest >= today - timedelta(days=1):
        return today, ""
    latest = (
        subscriber.deliveries.exclude(status=Delivery.Status.SKIPPED)
        .order_by("-digest_date")
        .first()
    )
    if latest is not None and latest.period_end >= newest:
        return latest.digest_date, (
            f"No papers newer than {newest} have come in, so the next digest would be "
            f"empty: this is the latest one, dated {latest.digest_date}."
        )
    day = newest + timedelta(days=1)
    return day, f"The newest papers are from {newest}: this is the digest dated {day}."


class NeedsALookFilter(admin.SimpleListFilter):
    title = "needs a look"
    parameter_name = "attention"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Failed or outcome unknown")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        if self.value() == "yes":
            return queryset.filter(status__in=RETRYABLE)
        return queryset


class SendingFilter(admin.SimpleListFilter):
    """The dashboard's "on their way" counts, each a link to its deliveries."""

    title = "on its way"
    parameter_name = "sending"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [
            ("waiting", "Waiting for a worker or being sent"),
            ("retrying", "Waiting to be tried again"),
            ("unknown", "Outcome unknown"),
            ("recovered", "Recovered at least once"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
        condition = PIPELINE.get(self.value() or "")
        return queryset if condition is None else queryset.filter(condition)


DELIVERY_COLOURS = {
    "sent": "#047857",
    "failed": "#b91c1c",
    "unknown": "#b45309",
    "planned": "#1d4ed8",
    "sending": "#1d4ed8",
}
DAILY_DAYS, DAILY_MAX_DAYS = 30, 366
RESEND_SHOWN = 100  # deliveries listed on the resend confirmation page


def status_badge(delivery: Delivery) -> str:
    colour = DELIVERY_COLOURS.get(delivery.status, "#52525b")
    label = delivery.get_status_display()
    if delivery.status in RETRYABLE:
        label = label.upper()
    return format_html('<strong style="color:{}">{}</strong>', colour, label)


def _either(statuses: tuple[str, ...]) -> str:
    labels = [str(Delivery.Status(s).label).lower() for s in statuses]
    return " or ".join([", ".join(labels[:-1]), labels[-1]] if len(labels) > 1 else labels)


def _deliveries(n: int) -> str:
    return f"{n} deliver{'y' if n == 1 else 'ies'}"


def requeue_report(requeued: int, split: RequeueSplit, statuses: tuple[str, ...]) -> str:
    """What an admin's retry or resend did, and why it left deliveries alone."""
    reasons = []
    if split.wrong_status:
        reasons.append(f"{split.wrong_status} not {_either(statuses)}")
    if split.inactive_reader:
        reasons.append(f"{split.inactive_reader} whose reader is no longer active")
    if split.eligible > requeued:
        reasons.append(f"{split.eligible - requeued} that changed in the meantime")
    text = f"Requeued {_deliveries(requeued)} for sending."
    left = split.eligible + split.wrong_status + split.inactive_reader - requeued
    if left:
        text += f" Left {_deliveries(left)} alone: {'; '.join(reasons)}."
    return text


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "subscriber",
        "digest_date",
        "status_badge",
        "attempts",
        "why_or_error",
    )
    list_filter = (NeedsALookFilter, SendingFilter, "status", "digest_date")
    list_select_related = ("subscriber",)
    search_fields = ("subscriber__email", "message_id", "provider_id")
    date_hierarchy = "digest_date"
    ordering = ("-digest_date", "-pk")
    raw_id_fields = ("subscriber",)
    readonly_fields = (
        "public_id",
        "created",
        "sent_at",
        "message_id",
        "provider_id",
        "error",
        "events_timeline",
        "why_waiting",
        "attempts",
        "claimed_at",
        "queued_at",
        "queue_epoch",
        "lease_until",
        "retry_at",
        "recoveries",
        "resends",
    )
    fieldsets = (
        (None, {"fields": ("subscriber", "digest_date", "period_start", "period_end", "status")}),
        (
            "Sending",
            {
                "fields": (
                    "why_waiting",
                    "attempts",
                    "queued_at",
                    "queue_epoch",
                    "claimed_at",
                    "lease_until",
                    "retry_at",
                    "recoveries",
                    "resends",
                    "sent_at",
                    "message_id",
                    "provider_id",
                    "public_id",
                    "created",
                )
            },
        ),
        ("Error", {"fields": ("error",)}),
        ("Events", {"fields": ("events_timeline",)}),
    )
    inlines = [DeliveryItemInline]
    actions = ["retry_deliveries", "resend_deliveries"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the planner makes deliveries

    @admin.display(description="status", ordering="status")
    def status_badge(self, delivery: Delivery) -> str:
        return status_badge(delivery)

    @admin.display(description="why it waits")
    def why_waiting(self, delivery: Delivery) -> str:
        return delivery.waiting_reason()

    @admin.display(description="why it waits, or the error")
    def why_or_error(self, delivery: Delivery) -> str:
        """One column for both, so the list fits beside the filters: a delivery on its
        way says why it waits (a retry's reason included); a settled one, its error."""
        return delivery.waiting_reason() or self.short_error(delivery)

    @admin.display(description="error", ordering="error")
    def short_error(self, delivery: Delivery) -> str:
        if not delivery.error:
            return ""
        short = Truncator(delivery.error).chars(80)
        return format_html('<span title="{}">{}</span>', delivery.error[:500], short)

    @admin.display(description="timeline")
    def events_timeline(self, delivery: Delivery) -> str:
        """The provider's events (and our unsubscribe link's), oldest first."""
        fields = ("timestamp", "provider", "event_type", "description")
        events = delivery.events.only(*fields).order_by("timestamp", "pk")
        cells = [(_when(e.timestamp), e.provider, e.event_type, e.description) for e in events]
        if not cells:
            return "No events yet."
        rows = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", cells)
        return format_html(
            "<table><thead><tr><th>Time</th><th>Provider</th><th>Event</th>"
            "<th>Description</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.action(description="Retry failed / unknown deliveries", permissions=["change"])
    def retry_deliveries(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        self.requeue(request, list(queryset.values_list("pk", flat=True)), RETRYABLE, "retry")

    @admin.action(description="Resend (also already sent) deliveries", permissions=["change"])
    def resend_deliveries(
        self, request: HttpRequest, queryset: QuerySet[Delivery]
    ) -> TemplateResponse | None:
        """Mails people again, so it asks first (like Django's delete confirmation)."""
        ids = list(queryset.values_list("pk", flat=True))
        if request.POST.get("post") == "yes":
            self.requeue(request, ids, RESENDABLE, "resend")
            return None
        shown = queryset.select_related("subscriber").order_by("-digest_date", "pk")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Resend these deliveries?",
            "ids": ids,
            "shown": list(shown[:RESEND_SHOWN]),
            "more": max(0, len(ids) - RESEND_SHOWN),
            "split": requeue_split(delivery_ids=ids, statuses=RESENDABLE),
            "resendable": RESENDABLE,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/newsletter/delivery/resend_confirmation.html", context
        )

    def requeue(
        self, request: HttpRequest, delivery_ids: list[int], statuses: tuple[str, ...], verb: str
    ) -> None:
        """Back to planned through the sending service, then queued for the workers; each
        requeued delivery's history says who did it (a resend mails people again)."""
        split = requeue_split(delivery_ids=delivery_ids, statuses=statuses)
        requeued = deliveries_requeue(delivery_ids=delivery_ids, statuses=statuses)
        transaction.on_commit(partial(enqueue_sends, requeued))
        done = Delivery.objects.filter(pk__in=requeued).select_related("subscriber")
        user_id = request.user.pk
        assert user_id is not None  # admin_view lets only staff in
        LogEntry.objects.log_actions(user_id, done, CHANGE, f"Requeued ({verb}).")
        left = len(requeued) < len(delivery_ids)
        level = messages.WARNING if left or not requeued else messages.SUCCESS
        self.message_user(request, requeue_report(len(requeued), split, statuses), level)

    def get_urls(self) -> list[URLPattern]:
        daily = self.admin_site.admin_view(self.daily_view)
        retry = self.admin_site.admin_view(self.retry_view)
        return [
            path("daily/", daily, name="newsletter_delivery_daily"),
            path("<int:pk>/retry/", retry, name="newsletter_delivery_retry"),
            *super().get_urls(),
        ]

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Delivery | None = None,
    ) -> HttpResponse:
        if obj is not None and obj.status in RETRYABLE and self.has_change_permission(request, obj):
            context["retry_url"] = reverse("admin:newsletter_delivery_retry", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def retry_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The change page's "Retry" button: the retry action for this one delivery."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        delivery = get_object_or_404(Delivery, pk=pk)
        if not self.has_change_permission(request, delivery):
            raise PermissionDenied
        self.requeue(request, [delivery.pk], RETRYABLE, "retry")
        return redirect("admin:newsletter_delivery_change", delivery.pk)

    def daily_view(self, request: HttpRequest) -> HttpResponse:
        """Deliveries by digest date and status, and events by day, for ``?days=``."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = days_asked(request)
        counts = daily_counts(days=days)
        changelist = reverse("admin:newsletter_delivery_changelist")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Deliveries and email events per day",
            "days": days,
            "time_zone": get_current_timezone_name(),
            "rows": [(row, changelist + _day_query(row.day)) for row in counts.rows],
            "total": counts.total,
        }
        return TemplateResponse(request, "admin/newsletter/delivery/daily.html", context)


def dashboard_until(request: HttpRequest, days: int) -> tuple[date | None, str]:
    """The last day the dashboard shows: ``?until=``, else today, unless nothing has
    happened in the window up to today but something did before (a demo's data, a
    pause in the service): then the day of the latest digest or signup, said in a note.
    """
    raw = request.GET.get("until", "")
    if raw:
        try:
            return date.fromisoformat(raw), ""
        except ValueError:
            messages.error(request, f"{raw!r} is not a date: showing the days up to today.")
            return None, ""
    today = timezone.localdate()
    start = today - timedelta(days=days)
    latest = Delivery.objects.aggregate(day=Max("digest_date"))["day"]
    if latest is not None and latest > start:
        return None, ""
    signed_up = Subscriber.objects.aggregate(at=Max("created"))["at"]
    if signed_up is not None:
        latest = max(latest or date.min, localtime(signed_up).date())
    if latest is None or latest > start:
        return None, ""
    return latest, (
        f"Nothing happened in the {days} days up to today: these are the {days} days up to "
        f"{latest}, the latest digest or signup."
    )


def days_asked(request: HttpRequest) -> int:
    """``?days=`` (default 30), kept between 1 and 366; a message when it is no number."""
    raw = request.GET.get("days", "")
    try:
        days = int(raw) if raw else DAILY_DAYS
    except ValueError:
        messages.error(request, f"{raw!r} is not a number of days.")
        days = DAILY_DAYS
    return min(max(days, 1), DAILY_MAX_DAYS)


def _when(moment: datetime) -> str:
    return date_format(localtime(moment), "Y-m-d H:i:s T")


def _day_query(day: date | None) -> str:
    assert day is not None
    after = day + timedelta(days=1)
    return "?" + urlencode(
        {"digest_date__gte": day.isoformat(), "digest_date__lt": after.isoformat()}
    )


@admin.register(EmailEvent)
class EmailEventAdmin(admin.ModelAdmin):
    """What the providers (and our own unsubscribe link) reported: a record, read-only."""

    list_display = ("timestamp", "provider", "event_type", "recipient", "delivery")
    list_filter = ("event_type", "provider", "timestamp")
    list_select_related = ("delivery__subscriber",)
    search_fields = ("recipient", "event_id", "delivery__message_id", "delivery__provider_id")
    date_hierarchy = "timestamp"
    raw_id_fields = ("delivery", "subscriber")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: EmailEvent | None = None) -> bool:
        return False


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ("created", "subscriber", "paper", "vote")
    list_filter = ("vote",)
    raw_id_fields = ("subscriber", "paper")


# The dashboard -----------------------------------------------------------------------

# (series attribute, chart title, unit, colour)
DAILY_CHARTS = (
    ("signups", "Signups per day", "signup", "#2563eb"),
    ("sent", "Digests sent per day (by digest date)", "digest", "#047857"),
    ("bounced", "Bounces per day", "bounce", "#b45309"),
    ("complained", "Complaints per day", "complaint", "#b91c1c"),
    ("unsubscribed", "Unsubscribes per day", "unsubscribe", "#52525b"),
)
TOP_TOPICS = 15


def dashboard_view(request: HttpRequest) -> HttpResponse:
    """Signups, sends, bounces, complaints and unsubscribes per day over ``?days=``
    (default 30), subscribers by status and the most followed topics: charts drawn as
    inline SVG on the server, from a fixed handful of aggregate queries."""
    user = request.user
    if not (
        user.has_perm("newsletter.view_subscriber") and user.has_perm("newsletter.view_delivery")
    ):
        raise PermissionDenied
    days = days_asked(request)
    until, note = dashboard_until(request, days)
    counts = dashboard_counts(days=days, today=until, topics=TOP_TOPICS)
    charts: list[SafeString] = [
        daily_bars(
            chart_id=f"chart-{attr}",
            title=title,
            unit=unit,
            days=counts.days,
            values=getattr(counts, attr),
            colour=colour,
        )
        for attr, title, unit, colour in DAILY_CHARTS
    ]
    topics = ranking_bars(
        chart_id="chart-topics",
        title="Top topics by active subscribers",
        unit="active subscriber",
        items=[(t.name, t.active) for t in counts.topics],
        colour="#7c3aed",
    )
    changelist = reverse("admin:newsletter_subscriber_changelist")
    statuses = [
        (Status(s).label, n, f"{changelist}?{urlencode({'status__exact': s})}")
        for s, n in counts.statuses.items()
    ]
    deliveries = reverse("admin:newsletter_delivery_changelist")
    sending = [
        (n, label, f"{deliveries}?{urlencode({'sending': name})}")
        for name, label, n in (
            ("waiting", "waiting for a worker or being sent", counts.sending.waiting),
            ("retrying", "waiting to be tried again", counts.sending.retrying),
            ("unknown", "outcome unknown", counts.sending.unknown),
            ("recovered", "recovered in these days", counts.sending.recovered),
        )
    ]
    table = [
        (day, *(getattr(counts, attr)[i] for attr, *_ in DAILY_CHARTS))
        for i, day in enumerate(counts.days)
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Dashboard",
        "days": days,
        "until": until,
        "note": note,
        "max_days": DAILY_MAX_DAYS,
        "time_zone": get_current_timezone_name(),
        "statuses": statuses,
        "sending": sending,
        "total": sum(counts.statuses.values()),
        "charts": charts,
        "topics_chart": topics,
        "columns": [title.removesuffix(" per day") for _, title, *_ in DAILY_CHARTS],
        "table": list(reversed(table)),
        "totals": [sum(getattr(counts, attr)) for attr, *_ in DAILY_CHARTS],
    }
    return TemplateResponse(request, "admin/dashboard.html", context)
