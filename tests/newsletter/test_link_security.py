"""Links that cannot be turned against a reader: the web copy, unsubscribe and feedback
pages never hand out a manage credential, and the web copy dies with "sign out"."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.test import Client

from newsletter.account import links_sign_out
from newsletter.emails import digest_message
from newsletter.models import Delivery, Subscriber
from newsletter.planning import digest_plan, subscribers_for_date
from papers.models import Paper

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)
SITE = "http://127.0.0.1:8000"
# Any path under a signed link that acts for the reader beyond its own purpose.
CREDENTIAL = re.compile(r"/(manage|feedback|resubscribe|confirm)/[\w:-]+/")


@pytest.fixture
def delivery(sample_week: list[Paper], alice: Subscriber) -> Delivery:
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    return Delivery.objects.select_related("subscriber").get(subscriber=alice)


def link(delivery: Delivery, kind: str) -> str:
    body = str(digest_message(delivery).body)
    return next(u for u in re.findall(rf"{SITE}(/\S+/)", body) if u.startswith(f"/{kind}/"))


def test_the_web_copy_carries_no_personal_link_and_not_the_address(
    client: Client, delivery: Delivery
) -> None:
    page = client.get(link(delivery, "digest")).content.decode()
    assert "/manage/" not in page and "/unsubscribe/" not in page and "/feedback/" not in page
    assert "alice@example.org" not in page
    assert "links to vote on papers, change preferences or unsubscribe are in the email" in page
    # The email itself still has every link.
    html = str(digest_message(delivery).alternatives[0][0])
    assert "/manage/" in html and "/feedback/" in html and "/unsubscribe/" in html


def test_the_web_copy_dies_with_sign_out(client: Client, delivery: Delivery) -> None:
    web = link(delivery, "digest")
    assert client.get(web).status_code == 200
    links_sign_out(subscriber=delivery.subscriber)
    assert client.get(web).status_code == 404
    # The next digest's web copy works again.
    delivery.refresh_from_db()
    Delivery.objects.filter(pk=delivery.pk).update(link_version=delivery.subscriber.token_version)
    assert client.get(web).status_code == 200


def test_the_unsubscribe_pages_carry_no_manage_credential(
    client: Client, delivery: Delivery
) -> None:
    unsubscribe = link(delivery, "unsubscribe")
    before = client.get(unsubscribe).content.decode()
    after = client.post(unsubscribe).content.decode()
    again = client.get(unsubscribe).content.decode()
    for page in (before, after, again):
        assert not CREDENTIAL.search(page), CREDENTIAL.search(page)
        assert "/link/" in page  # the way to a manage link: emailed to the address
    undo = re.search(r'action="(/unsubscribe/[^"]+/undo/)"', after)
    assert undo is not None
    assert b"Welcome back" in client.post(undo.group(1)).content
    delivery.subscriber.refresh_from_db()
    assert delivery.subscriber.status == Subscriber.Status.ACTIVE


def test_the_feedback_page_carries_no_manage_credential(client: Client, delivery: Delivery) -> None:
    thumb = link(delivery, "feedback")
    for page in (client.get(thumb), client.post(thumb)):
        text = page.content.decode()
        assert page.status_code == 200
        assert "/manage/" not in text and "/link/" in text


def test_undo_never_lifts_a_suppression(client: Client, delivery: Delivery) -> None:
    unsubscribe = link(delivery, "unsubscribe")
    Subscriber.objects.filter(pk=delivery.subscriber.pk).update(status="bounced")
    page = client.post(unsubscribe.rstrip("/") + "/undo/")
    assert page.status_code == 200 and b"Welcome back" not in page.content
    assert Subscriber.objects.get(pk=delivery.subscriber.pk).status == "bounced"


def test_a_forged_undo_is_a_4xx(client: Client, delivery: Delivery) -> None:
    unsubscribe = link(delivery, "unsubscribe")
    assert client.post(unsubscribe[:-5] + "xxxx/undo/").status_code == 400
