"""What a signup post and the front page cost, in queries and in repeated work (speed
itself is measured by bench/web.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django import forms
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from config.cache import RedisCache
from newsletter.abuse import stamp_issue
from newsletter.forms import TIMEZONES, PreferencesForm, SignupForm
from newsletter.models import TOPICS_VERSION_KEY, Subscriber, Topic, topics_by_id

pytestmark = pytest.mark.django_db


def test_a_signup_takes_a_handful_of_queries(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    topics = list(Topic.objects.values_list("pk", flat=True)[:3])
    stamp = stamp_issue(issued_at=time.time() - 60)
    data = {"email": "new@example.org", "topics": topics, "stamp": stamp}
    topics_by_id()  # as after the process's first signup
    # The subscriber and its topics, in one transaction (its two savepoint statements
    # here); the topics are checked against the process's copy of the catalogue.
    with django_assert_max_num_queries(4):
        response = client.post(reverse("signup"), data)
    assert response.status_code == 302
    assert Subscriber.objects.get(email="new@example.org").topics.count() == 3


def test_a_topic_added_or_removed_in_the_admin_counts_on_the_next_post(
    django_assert_max_num_queries: Any,
) -> None:
    def post(topic: int) -> SignupForm:
        stamp = stamp_issue(issued_at=time.time() - 60)
        return SignupForm({"email": "new@example.org", "topics": [topic], "stamp": stamp})

    first = Topic.objects.first()
    assert first is not None and post(first.pk).is_valid()
    with django_assert_max_num_queries(0):  # the catalogue is kept
        assert post(first.pk).is_valid()
    added = Topic.objects.create(slug="new-topic", name="New topic")
    assert post(added.pk).is_valid()
    added_pk = added.pk
    added.delete()
    form = post(added_pk)
    assert not form.is_valid() and "topics" in form.errors
    assert not post(0).is_valid()


def test_an_address_is_found_whatever_its_case(alice: Subscriber) -> None:
    assert Subscriber.objects.with_email(alice.email.upper()).get() == alice
    assert not Subscriber.objects.with_email("nobody@example.org").exists()


def test_out_of_range_preferences_are_still_refused() -> None:
    reader = Subscriber(email="a@example.org", max_papers=99, send_hour=24, weekly_day=7)
    with pytest.raises(ValidationError) as refused:
        reader.full_clean()
    assert {"max_papers", "send_hour", "weekly_day"} <= set(refused.value.message_dict)


@pytest.mark.parametrize(
    "form",
    [
        lambda: SignupForm(),
        lambda: SignupForm({"timezone": "Asia/Tokyo"}),
        lambda: SignupForm({"timezone": "Mars/Olympus_Mons"}),
        lambda: PreferencesForm(instance=Subscriber(timezone="Europe/Berlin")),
    ],
)
def test_the_kept_time_zone_list_is_what_django_would_render(form: Any) -> None:
    field = form()["timezone"]
    plain = forms.Select(choices=TIMEZONES, attrs=field.field.widget.attrs)
    assert str(field) == field.as_widget(plain)
    assert str(form()["timezone"]) == str(field)  # the kept copy


def test_the_redis_cache_keeps_one_client_per_pool() -> None:
    cache = RedisCache("redis://127.0.0.1:6379/15", {})
    assert cache._cache.get_client(write=True) is cache._cache.get_client()


def test_other_processes_hear_of_a_topic_change_once_it_is_committed(
    django_capture_on_commit_callbacks: Any,
) -> None:
    topics_by_id()
    before = cache.get(TOPICS_VERSION_KEY)
    with django_capture_on_commit_callbacks(execute=False) as pending:
        Topic.objects.create(slug="uncommitted", name="Uncommitted")
    assert cache.get(TOPICS_VERSION_KEY) == before  # rolled back, it never was
    assert "uncommitted" in {t.slug for t in topics_by_id().values()}  # this process sees it
    for callback in pending:
        callback()
    assert cache.get(TOPICS_VERSION_KEY) != before
