"""Each preference limit is written once, on the model, and holds everywhere a reader's
preferences are written: the reader's forms, the CSV import, the admin."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from newsletter.models import MAX_AUTHORS, MAX_INTEREST_CHARS, Subscriber
from newsletter.subscriber_csv import subscribers_import
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db
TOO_LONG = "x" * (MAX_INTEREST_CHARS + 1)
TOO_MANY = [f"Author {n}" for n in range(MAX_AUTHORS + 1)]


def admin_save(admin_client: Client, subscriber: Subscriber, **changes: object) -> str:
    change = reverse("admin:newsletter_subscriber_change", args=[subscriber.pk])
    form = admin_client.get(change).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update({"authors": "\n".join(subscriber.authors), "liked_papers": "", "topics": []})
    data.update(changes)
    return admin_client.post(change, data).content.decode()


def test_the_admin_holds_the_limits(admin_client: Client) -> None:
    alice = make_subscriber("alice@example.org", "active")
    assert "under 1,000 characters" in admin_save(admin_client, alice, keywords=TOO_LONG)
    page = admin_save(admin_client, alice, authors="\n".join(TOO_MANY))
    assert f"Follow at most {MAX_AUTHORS} authors." in page
    alice.refresh_from_db()
    assert alice.keywords == "" and alice.authors == []


def test_the_import_says_what_the_forms_say() -> None:
    names = ";".join(TOO_MANY)
    data = f"email,keywords,authors\nnew@example.org,{TOO_LONG},{names}\n".encode()
    [row] = subscribers_import(data=data, consented=True, dry_run=True).rows
    assert row.action == "error"
    assert "Keep your interests under 1,000 characters." in row.notes
    assert f"Follow at most {MAX_AUTHORS} authors." in row.notes
