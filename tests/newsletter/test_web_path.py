from __future__ import annotations

import re
import time
from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from newsletter.abuse import stamp_issue
from newsletter.models import Subscriber, Topic
from newsletter.tokens import make_token

pytestmark = pytest.mark.django_db


def signup(client: Client, email: str, **extra: object) -> Any:
    topics = list(Topic.objects.filter(slug__in=["agents", "rag"]).values_list("pk", flat=True))
    stamp = stamp_issue(issued_at=time.time() - 60)  # a person takes a while to fill it in
    return client.post(
        reverse("signup"), {"email": email, "topics": topics, "stamp": stamp, **extra}
    )


def link_in(body: str) -> str:
    match = re.search(r"http://\S+/confirm/\S+/", body)
    assert match
    return match.group(0)


def test_the_signup_page_lists_the_topics(client: Client) -> None:
    response = client.get(reverse("signup"))
    assert response.status_code == 200
    assert b"Quantization" in response.content and b"csrfmiddlewaretoken" in response.content


def test_signup_sends_a_confirmation_and_confirming_needs_a_post(
    client: Client, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = signup(client, "  New.Reader@Example.org ")
    assert response.status_code == 302 and response["Location"] == reverse("check_inbox")
    reader = Subscriber.objects.get()
    assert reader.email == "new.reader@example.org"
    assert reader.status == Subscriber.Status.PENDING
    assert set(reader.topics.values_list("slug", flat=True)) == {"agents", "rag"}
    assert len(mail.outbox) == 1
    url = link_in(str(mail.outbox[0].body))
    path = url.removeprefix("http://127.0.0.1:8000")
    page = client.get(path)
    assert page.status_code == 200 and b'<form method="post">' in page.content
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.PENDING  # a scanner's GET changes nothing
    assert client.post(path).status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.ACTIVE and reader.consent_at


def test_the_response_is_the_same_for_known_and_unknown_addresses(
    client: Client, alice: Subscriber
) -> None:
    known = signup(client, alice.email)
    unknown = signup(client, "stranger@example.org")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    alice.refresh_from_db()
    assert set(alice.topics.values_list("slug", flat=True)) == {"agents", "reasoning"}


def test_a_bad_email_is_a_message_on_the_form(client: Client) -> None:
    response = client.post(reverse("signup"), {"email": "not an address"})
    assert response.status_code == 200
    assert b"errorlist" in response.content
    assert not Subscriber.objects.exists()


def test_the_honeypot_stores_nothing_but_answers_the_same(client: Client) -> None:
    response = signup(client, "bot@example.org", website="http://spam.example")
    assert response.status_code == 302
    assert not Subscriber.objects.exists() and not mail.outbox


def test_unsubscribe_get_shows_a_button_and_post_acts(client: Client, alice: Subscriber) -> None:
    path = reverse("unsubscribe", args=[make_token(alice, purpose="unsubscribe")])
    assert client.get(path).status_code == 200
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.ACTIVE
    response = client.post(path)
    assert response.status_code == 200
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.UNSUBSCRIBED


def test_one_click_unsubscribe_needs_no_cookie_or_csrf_token(alice: Subscriber) -> None:
    client = Client(enforce_csrf_checks=True)
    path = reverse("unsubscribe", args=[make_token(alice, purpose="unsubscribe")])
    response = client.post(
        path, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200  # not a redirect
    alice.refresh_from_db()
    assert alice.status == Subscriber.Status.UNSUBSCRIBED


@pytest.mark.parametrize("view", ["confirm", "unsubscribe"])
def test_a_forged_token_is_a_friendly_4xx(client: Client, view: str) -> None:
    response = client.get(reverse(view, args=["WzEsMV0:forged:signature"]))
    assert response.status_code == 400
    assert b"not valid" in response.content


def test_a_token_for_one_purpose_never_works_for_another(client: Client, bob: Subscriber) -> None:
    token = make_token(bob, purpose="unsubscribe")
    assert client.post(reverse("confirm", args=[token])).status_code == 400
    bob.refresh_from_db()
    assert bob.status == Subscriber.Status.PENDING


def test_a_revoked_token_stops_working(client: Client, alice: Subscriber) -> None:
    token = make_token(alice, purpose="unsubscribe")
    Subscriber.objects.filter(pk=alice.pk).update(token_version=alice.token_version + 1)
    assert client.post(reverse("unsubscribe", args=[token])).status_code == 400


def test_an_expired_confirm_link_is_410(
    client: Client, bob: Subscriber, time_machine: object
) -> None:
    time_machine.move_to("2026-01-01T09:00Z", tick=False)  # type: ignore[attr-defined]
    token = make_token(bob, purpose="confirm")
    time_machine.shift(8 * 24 * 3600)  # type: ignore[attr-defined]
    response = client.get(reverse("confirm", args=[token]))
    assert response.status_code == 410 and b"expired" in response.content


def test_signups_from_one_address_are_rate_limited(client: Client) -> None:
    statuses = {signup(client, f"r{n}@example.org").status_code for n in range(25)}
    assert statuses == {302, 429}
