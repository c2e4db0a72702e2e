from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from newsletter.models import Delivery, Subscriber
from papers.models import Paper

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)


def test_subscribe_creates_a_pending_reader_and_sends_a_confirmation(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        call_command(
            "subscribe",
            "Dana@Example.org",
            "--topic",
            "rag",
            "--keywords",
            "KV cache",
            "--author",
            "Percy Liang",
            "--frequency",
            "weekly",
            "--max",
            "5",
        )
    dana = Subscriber.objects.get()
    assert (dana.email, dana.status, dana.frequency, dana.max_papers) == (
        "dana@example.org",
        "pending",
        "weekly",
        5,
    )
    assert dana.authors == ["Percy Liang"] and dana.keyword_list() == ["KV cache"]
    assert list(dana.topics.values_list("slug", flat=True)) == ["rag"]
    assert mail.outbox[0].subject == "Confirm your Paperboy subscription"


def test_subscribe_confirmed_skips_double_opt_in_and_updates() -> None:
    call_command("subscribe", "dana@example.org", "--confirmed")
    call_command("subscribe", "dana@example.org", "--max", "3")
    dana = Subscriber.objects.get()
    assert dana.status == "active" and dana.consent_at and dana.max_papers == 3
    assert not mail.outbox


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-an-email"], "not-an-email"),
        (["x@example.org", "--topic", "astrology"], "unknown topic 'astrology'"),
        (["x@example.org", "--max", "500"], "max_papers"),
        (["x@example.org", "--timezone", "Mars/Olympus"], "not a known time zone"),
    ],
)
def test_subscribe_rejects_bad_input_clearly(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("subscribe", *args)
    assert not Subscriber.objects.exists()


def test_preview_digest_json_shows_exactly_what_would_be_sent(
    sample_week: list[Paper], alice: Subscriber, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("preview_digest", alice.email, "--date", THURSDAY.isoformat(), "--json")
    preview = json.loads(capsys.readouterr().out)
    assert preview["email"] == alice.email
    assert preview["period"] == {"start": "2026-01-07", "end": "2026-01-07"}
    assert not Delivery.objects.exists()
    call_command("send_digests", "--date", THURSDAY.isoformat())
    items = Delivery.objects.get().items.select_related("paper").order_by("rank")
    assert [p["arxiv_id"] for p in preview["papers"]] == [i.paper.arxiv_id for i in items]
    first = preview["papers"][0]
    assert set(first) == {"arxiv_id", "title", "score", "reasons"}
    assert first["reasons"] and isinstance(first["score"], float)


def test_preview_digest_of_an_unknown_reader_is_an_error() -> None:
    with pytest.raises(CommandError, match="no subscriber"):
        call_command("preview_digest", "nobody@example.org")


def test_send_digests_dry_run_sends_and_writes_nothing(
    sample_week: list[Paper], alice: Subscriber, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("send_digests", "--date", THURSDAY.isoformat(), "--dry-run")
    assert "1 reader(s) due; 1 would get a digest" in capsys.readouterr().out
    assert not Delivery.objects.exists() and not mail.outbox


def test_demo_loads_the_sample_and_sends_a_real_digest(
    settings: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.EMAIL_BACKEND = "newsletter.outbox.EmlFileBackend"  # type: ignore[attr-defined]
    settings.EMAIL_FILE_PATH = str(tmp_path)  # type: ignore[attr-defined]
    call_command("demo")
    out = capsys.readouterr().out
    assert Paper.objects.count() == 117
    [eml] = tmp_path.glob("*.eml")
    assert str(eml) in out and "password:" in out
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in eml.read_bytes()
    assert Delivery.objects.get().status == Delivery.Status.SENT
