"""Every admin page an operator opens renders, with real data behind it."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib import admin
from django.core import mail
from django.core.management import call_command
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
    assert bad.status_code == 400 and b"is not a date" in bad.content
    assert b"Digest dated" not in bad.content  # no silent fall back to another date


def test_on_an_old_catalogue_the_preview_shows_the_latest_digest_and_says_why(
    admin_client: Client, sample_week: list[Paper], alice: Subscriber
) -> None:
    """As after `make demo` on any later day: the catalogue ends on 2026-01-09, and the
    demo's weekly reader got Monday's digest."""
    Subscriber.objects.filter(pk=alice.pk).update(frequency="weekly", weekly_day=0)
    preview = reverse("admin:newsletter_subscriber_preview", args=[alice.pk])
    page = admin_client.get(preview).content.decode()
    assert "The newest papers are from 2026-01-09" in page
    assert "Digest dated <strong>Jan. 10, 2026</strong>" in page or "2026-01-10" in page
    assert "Nothing matches" not in page
    call_command("send_digests", "--date", "2026-01-12", stdout=StringIO())
    page = admin_client.get(preview).content.decode()
    assert "this is the latest one, dated 2026-01-12" in page and "Already planned" in page
    admin_client.post(
        reverse("admin:newsletter_subscriber_test", args=[alice.pk]), {"date": ""}, follow=True
    )
    assert len(mail.outbox) == 2 and mail.outbox[-1].subject.startswith("[Test]")
