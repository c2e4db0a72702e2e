from __future__ import annotations

from datetime import date

import pytest
from django.core import mail
from django.core.management import call_command

from newsletter.emails import digest_message
from newsletter.models import Delivery, Subscriber
from newsletter.planning import digest_plan, subscribers_for_date
from papers.models import Paper

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)


def planned_delivery(subscriber: Subscriber) -> Delivery:
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    return Delivery.objects.select_related("subscriber").get(subscriber=subscriber)


def test_the_digest_has_both_parts_and_bulk_headers(
    sample_week: list[Paper], alice: Subscriber, settings: object
) -> None:
    delivery = planned_delivery(alice)
    message = digest_message(delivery)
    first = delivery.items.select_related("paper").first()
    assert first is not None
    assert message.to == ["alice@example.org"]
    assert message.subject.startswith(f"{delivery.items.count()} papers for you:")
    assert first.paper.title in message.body
    assert first.paper.hf_url in message.body
    assert f"Why: {first.reason}" in message.body
    html = str(message.alternatives[0][0])
    assert f'href="{first.paper.hf_url}"' in html
    assert 'style="' in html  # CSS inlined
    unsubscribe = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("http://127.0.0.1:8000/unsubscribe/")
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["Message-ID"].endswith("@127.0.0.1>")
    assert unsubscribe in message.body and unsubscribe.replace("&", "&amp;") in html
    assert message.metadata == {"delivery": str(delivery.public_id)}  # type: ignore[attr-defined]


def test_text_from_strangers_is_escaped_in_html_only(
    sample_week: list[Paper], alice: Subscriber
) -> None:
    hostile = '<script>alert("x")</script> Agents & <b>tools</b>'
    Paper.objects.filter(catalogue_date=date(2026, 1, 7)).update(title=hostile)
    message = digest_message(planned_delivery(alice))
    html = str(message.alternatives[0][0])
    assert "<script>" not in html and "<b>tools</b>" not in html
    assert "&lt;script&gt;" in html
    assert hostile in message.body
    assert "\n" not in message.subject


def test_send_digests_mails_the_digest(
    sample_week: list[Paper], alice: Subscriber, carol: Subscriber
) -> None:
    call_command("send_digests", "--date", THURSDAY.isoformat())
    assert [m.to for m in mail.outbox] == [["alice@example.org"]]
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT
    assert delivery.message_id and delivery.sent_at
