"""Erasure leaves the address nowhere: after a reader deletes their data (or an admin
deletes the subscriber), a pg_dump of the whole database does not hold it."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from datetime import date

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from newsletter.models import Delivery, Subscriber
from newsletter.planning import digest_plan, subscribers_for_date
from newsletter.sending import deliveries_send
from newsletter.tokens import make_token
from papers.models import Paper
from tests.conftest import make_subscriber, need, need_postgres

pytestmark = pytest.mark.django_db(transaction=True)  # pg_dump sees only what is committed
ADDRESS = "erin.private@example.org"
THURSDAY = date(2026, 1, 8)
AUTH = "hook:s3cret"


def dump() -> str:
    need(shutil.which("pg_dump") is not None, "pg_dump is not installed")
    db = connection.settings_dict
    command = ["pg_dump", "--data-only", "-h", db["HOST"] or "127.0.0.1", "-U", db["USER"]]
    if db["PORT"]:
        command += ["-p", str(db["PORT"])]
    result = subprocess.run([*command, db["NAME"]], capture_output=True, text=True, check=True)
    return result.stdout


def a_reader_with_a_history(admin: Client, sample_week: list[Paper]) -> Subscriber:
    """Digests, a failed one with the address in its error, a vote, a bounce event whose
    payload names the address, and an admin's edit in the history."""
    erin = make_subscriber(ADDRESS, "active", ["agents", "reasoning"])
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    delivery = Delivery.objects.get(subscriber=erin)
    deliveries_send(delivery_ids=[delivery.pk])
    Delivery.objects.filter(pk=delivery.pk).update(error=f"550 <{ADDRESS}>: no such user")
    item = delivery.items.first()
    assert item is not None
    Client().post(
        reverse("feedback", args=[make_token(erin, purpose="feedback"), item.paper_id, "up"])
    )
    bounce = {
        "RecordType": "Bounce",
        "ID": 77,
        "Type": "SoftBounce",
        "Email": ADDRESS.upper(),
        "Description": f"mailbox {ADDRESS} is full",
        "BouncedAt": "2026-01-08T07:05:00Z",
        "Metadata": {"delivery": str(delivery.public_id)},
    }
    token = base64.b64encode(AUTH.encode()).decode()
    with override_settings(PAPERBOY_WEBHOOK_PROVIDER="postmark", ANYMAIL={"WEBHOOK_SECRET": AUTH}):
        answer = Client().post(
            "/anymail/postmark/tracking/",
            json.dumps(bounce),
            content_type="application/json",
            headers={"Authorization": f"Basic {token}"},
        )
    assert answer.status_code == 200
    change = reverse("admin:newsletter_subscriber_change", args=[erin.pk])
    form = admin.get(change).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    admin.post(
        change,
        {
            **data,
            "keywords": "agents that plan",
            "topics": [t.pk for t in erin.topics.all()],
            "authors": "",
            "liked_papers": "",
        },
    )
    admin.post(
        reverse("admin:newsletter_subscriber_changelist"),
        {"action": "export_csv", "_selected_action": [erin.pk]},
    )
    assert re.search(re.escape(ADDRESS), dump(), re.IGNORECASE)  # it is there to begin with
    return erin


@pytest.fixture
def admin() -> Client:
    need_postgres()
    user = User.objects.create_superuser("root", "root@example.org", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_self_service_erasure_leaves_the_address_nowhere(
    admin: Client, sample_week: list[Paper]
) -> None:
    erin = a_reader_with_a_history(admin, sample_week)
    page = Client().post(reverse("manage_delete", args=[make_token(erin, purpose="manage")]))
    assert page.status_code == 200
    assert not re.search(re.escape(ADDRESS), dump(), re.IGNORECASE)


def test_the_admins_delete_leaves_the_address_nowhere(
    admin: Client, sample_week: list[Paper]
) -> None:
    erin = a_reader_with_a_history(admin, sample_week)
    delete = reverse("admin:newsletter_subscriber_delete", args=[erin.pk])
    assert admin.post(delete, {"post": "yes"}).status_code == 302
    assert not Subscriber.objects.filter(pk=erin.pk).exists()
    assert not re.search(re.escape(ADDRESS), dump(), re.IGNORECASE)


def test_an_admin_csv_export_is_in_the_admins_history(
    admin: Client, sample_week: list[Paper]
) -> None:
    from django.contrib.admin.models import LogEntry

    make_subscriber(ADDRESS, "active")
    make_subscriber("other@example.org", "active")
    changelist = reverse("admin:newsletter_subscriber_changelist")
    ids = list(Subscriber.objects.values_list("pk", flat=True))
    response = admin.post(changelist, {"action": "export_csv", "_selected_action": ids})
    assert response.status_code == 200
    entry = LogEntry.objects.get(object_repr__startswith="CSV export")
    assert (
        entry.user.username == "root" and entry.change_message == "Exported 2 subscribers as CSV."
    )
