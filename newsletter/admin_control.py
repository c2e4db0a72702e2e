"""The admin's control room page and the record of what was run from it.

Viewing needs the "view control run" permission, starting an action "add control run"
(superusers have both). Each action is a small form; a valid post starts a ControlRun
(see ``newsletter.control``) and comes back to the page, which refreshes itself while
a run is queued or running.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timezone import get_current_timezone_name

from newsletter.control import (
    DRY_RUN_SHOWN,
    RETRY_DAYS,
    control_run_lost,
    control_run_start,
    machinery_status,
)
from newsletter.models import ControlRun, Delivery
from newsletter.sending import RETRYABLE
from papers.models import Source

Action = ControlRun.Action
RECENT_RUNS = 15
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


class IngestForm(forms.Form):
    source = forms.ChoiceField(choices=[(s.value, s.label) for s in (Source.HF, Source.ARXIV)])
    date = forms.DateField(
        required=False,
        widget=DATE_INPUT,
        help_text="Empty: the days beat fetches (Hugging Face: yesterday and today, UTC; "
        "arXiv: the last three days).",
    )


class DigestsForm(forms.Form):
    date = forms.DateField(
        required=False,
        widget=DATE_INPUT,
        label="Digest date",
        help_text="Empty: the readers due now, as beat plans them. A date: that day's digest "
        "to every active reader whose schedule includes it, whatever their hour.",
    )


class RetryForm(forms.Form):
    since = forms.DateField(
        widget=DATE_INPUT,
        label="Digest dates from",
        help_text="Failed and unknown deliveries of digests dated this day or later go back to "
        "the workers; readers no longer active are left alone.",
    )


FORMS: dict[str, type[forms.Form]] = {
    Action.INGEST: IngestForm,
    Action.DRY_RUN: DigestsForm,
    Action.PLAN_SEND: DigestsForm,
    Action.RETRY: RetryForm,
}


def _params(form: forms.Form) -> dict[str, Any]:
    return {
        key: value.isoformat() if hasattr(value, "isoformat") else value
        for key, value in form.cleaned_data.items()
    }


def control_view(request: HttpRequest) -> HttpResponse:
    """The status panel, the actions and the latest runs; a post starts one action."""
    user = request.user
    if not user.has_perm("newsletter.view_controlrun"):
        raise PermissionDenied
    may_act = user.has_perm("newsletter.add_controlrun")
    forms_shown: dict[str, forms.Form] = {
        "ingest": IngestForm(prefix="ingest"),
        "digests": DigestsForm(prefix="digests"),
        "retry": RetryForm(
            prefix="retry", initial={"since": timezone.localdate() - timedelta(days=RETRY_DAYS)}
        ),
    }
    if request.method == "POST":
        if not may_act:
            raise PermissionDenied
        action = request.POST.get("action", "")
        if action not in FORMS:
            messages.error(request, "Choose one of the actions on this page.")
            return HttpResponseRedirect(request.path)
        prefix = "digests" if FORMS[action] is DigestsForm else action
        form = FORMS[action](request.POST, prefix=prefix)
        if form.is_valid():
            assert user.pk is not None
            run = control_run_start(action=action, params=_params(form), user_id=user.pk)
            messages.success(request, f"Started run #{run.pk}: {run.describe()}.")
            return HttpResponseRedirect(f"{request.path}#run-{run.pk}")
        forms_shown[prefix] = form
    runs = list(ControlRun.objects.select_related("requested_by")[:RECENT_RUNS])
    now = timezone.now()
    context = {
        **admin.site.each_context(request),
        "title": "Control room",
        "status": machinery_status(now),
        "forms": forms_shown,
        "may_act": may_act,
        "runs": [(run, control_run_lost(run, now)) for run in runs],
        "refresh": any(r.state in ("queued", "running") for r in runs),
        "retryable": Delivery.objects.filter(status__in=RETRYABLE).count(),
        "dry_run_shown": DRY_RUN_SHOWN,
        "time_zone": get_current_timezone_name(),
        "runs_url": reverse("admin:newsletter_controlrun_changelist"),
    }
    status = 400 if request.method == "POST" else 200
    return TemplateResponse(request, "admin/control.html", context, status=status)


@admin.register(ControlRun)
class ControlRunAdmin(admin.ModelAdmin):
    """What operators ran from the control room: a record, read-only."""

    list_display = ("pk", "created", "requested_by", "action_text", "state", "summary")
    list_display_links = ("pk", "created")
    list_filter = ("action", "state")
    readonly_fields = (
        "action",
        "params",
        "state",
        "requested_by",
        "created",
        "started",
        "finished",
        "result_lines",
    )
    exclude = ("result",)

    @admin.display(description="action")
    def action_text(self, run: ControlRun) -> str:
        return run.describe()

    @admin.display(description="result")
    def result_lines(self, run: ControlRun) -> str:
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', run.result or "—")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs start in the control room

    def has_change_permission(self, request: HttpRequest, obj: ControlRun | None = None) -> bool:
        return False
