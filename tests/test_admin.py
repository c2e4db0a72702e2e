"""Every admin page an operator opens renders, with real data behind it."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import reverse

from newsletter.models import Subscriber
from papers.ingest import ingest_run
from papers.models import IngestRun, Paper, Source
from papers.sources import SourceError

pytestmark = pytest.mark.django_db


def test_every_changelist_and_change_page_renders(
    admin_client: Client, sample_week: list[Paper], alice: Subscriber, mailoutbox: list[object]
) -> None:
    from django.core.management import call_command

    call_command("send_digests", "--date", "2026-01-08")
    for model in admin.site._registry:
        meta = model._meta
        changelist = reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")
        assert admin_client.get(changelist).status_code == 200, changelist
        first = model._default_manager.first()
        if first is not None:
            change = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk])
            assert admin_client.get(change).status_code == 200, change


def test_a_failed_ingest_run_stands_out(admin_client: Client) -> None:
    def broken() -> object:
        raise SourceError("Hugging Face answered HTTP 503")

    ingest_run(source=Source.HF, fetch=broken)  # type: ignore[arg-type]
    page = admin_client.get(reverse("admin:papers_ingestrun_changelist") + "?status__exact=failed")
    assert b"FAILED" in page.content and b"HTTP 503" in page.content
    assert IngestRun.objects.get().status == "failed"


def test_the_admin_is_staff_only(client: Client) -> None:
    response = client.get(reverse("admin:newsletter_subscriber_changelist"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_admin_previews_exactly_what_preview_digest_shows(
    admin_client: Client, sample_week: list[Paper], alice: Subscriber
) -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("preview_digest", alice.email, "--date", "2026-01-08", "--json", stdout=out)
    expected = json.loads(out.getvalue())["papers"]
    url = reverse("admin:newsletter_subscriber_preview", args=[alice.pk]) + "?date=2026-01-08"
    page = admin_client.get(url).content.decode()
    assert expected and f"<strong>{len(expected)}</strong> papers" in page
    positions = [page.index(p["arxiv_id"]) for p in expected]
    assert positions == sorted(positions)  # same papers, same order
    change = admin_client.get(reverse("admin:newsletter_subscriber_change", args=[alice.pk]))
    assert b"Preview the next digest" in change.content
    bad = admin_client.get(
        reverse("admin:newsletter_subscriber_preview", args=[alice.pk]) + "?date=soon"
    )
    assert bad.status_code == 200 and b"is not a date" in bad.content
