from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.core.management import call_command

from newsletter.matching import STRONG
from newsletter.models import Delivery, DeliveryItem, Subscriber
from newsletter.planning import (
    digest_period,
    digest_plan,
    digest_preview,
    due_now,
    subscribers_for_date,
)
from papers.models import Paper
from tests.conftest import MONDAY, make_subscriber

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)


def plan(day: date) -> None:
    digest_plan(digest_date=day, subscribers=subscribers_for_date(day))


def test_a_first_daily_digest_covers_the_day_before(alice: Subscriber) -> None:
    assert digest_period(alice, THURSDAY, None) == (date(2026, 1, 7), date(2026, 1, 7))


def test_a_first_weekly_digest_covers_the_week_before(alice: Subscriber) -> None:
    alice.frequency = Subscriber.Frequency.WEEKLY
    assert digest_period(alice, MONDAY, None) == (date(2026, 1, 5), date(2026, 1, 11))


def test_a_later_digest_starts_after_the_previous_period(alice: Subscriber) -> None:
    assert digest_period(alice, THURSDAY, date(2026, 1, 5)) == (date(2026, 1, 6), date(2026, 1, 7))


def test_it_plans_matching_papers_of_the_period_with_reasons(
    sample_week: list[Paper], alice: Subscriber
) -> None:
    plan(THURSDAY)
    delivery = Delivery.objects.get(subscriber=alice)
    assert delivery.status == Delivery.Status.PLANNED
    items = list(delivery.items.select_related("paper"))
    assert 0 < len(items) <= alice.max_papers
    assert {i.paper.catalogue_date for i in items} == {date(2026, 1, 7)}
    assert all("Agents and tool use" in i.reason or "Reasoning" in i.reason for i in items)
    assert [i.rank for i in items] == list(range(1, len(items) + 1))
    assert in_digest_order(items)


def in_digest_order(items: list[DeliveryItem]) -> bool:
    """Strong matches first, most upvoted first; then the rest, best match first."""
    for k in range(len(items) + 1):
        head, rest = items[:k], [i.score for i in items[k:]]
        votes = [i.paper.upvotes for i in head]
        if (
            votes == sorted(votes, reverse=True)
            and rest == sorted(rest, reverse=True)
            and all(i.score < STRONG for i in items[k:])
        ):
            return True
    return False


def test_it_skips_unconfirmed_and_unsubscribed_readers(
    sample_week: list[Paper], alice: Subscriber, bob: Subscriber, carol: Subscriber
) -> None:
    plan(THURSDAY)
    assert list(Delivery.objects.values_list("subscriber__email", flat=True)) == [alice.email]


def test_no_papers_in_the_period_means_a_skipped_delivery(alice: Subscriber) -> None:
    plan(THURSDAY)
    delivery = Delivery.objects.get(subscriber=alice)
    assert delivery.status == Delivery.Status.SKIPPED
    assert not delivery.items.exists()


def test_a_reader_whose_interests_match_nothing_is_skipped(sample_week: list[Paper]) -> None:
    make_subscriber("dan@example.org", "active", keywords="marine biology of octopuses")
    plan(THURSDAY)
    assert Delivery.objects.get().status == Delivery.Status.SKIPPED


def test_planning_twice_for_the_same_date_plans_nothing_new(
    sample_week: list[Paper], alice: Subscriber
) -> None:
    plan(THURSDAY)
    plan(THURSDAY)
    assert Delivery.objects.count() == 1


def test_a_paper_is_never_sent_twice(sample_week: list[Paper]) -> None:
    reader = make_subscriber("erin@example.org", "active", max_papers=50)
    plan(date(2026, 1, 7))
    first = set(DeliveryItem.objects.values_list("paper_id", flat=True))
    # The same paper listed again later (it trends again) must not come back.
    Paper.objects.filter(pk__in=first).update(catalogue_date=date(2026, 1, 7))
    plan(THURSDAY)
    second = DeliveryItem.objects.filter(delivery__digest_date=THURSDAY, subscriber=reader)
    assert not first & set(second.values_list("paper_id", flat=True))


def test_a_weekly_reader_gets_nothing_on_other_days(sample_week: list[Paper]) -> None:
    make_subscriber("wes@example.org", "active", frequency="weekly", weekly_day=0)
    plan(THURSDAY)
    assert not Delivery.objects.exists()
    plan(MONDAY)
    delivery = Delivery.objects.get()
    assert (delivery.period_start, delivery.period_end) == (date(2026, 1, 5), date(2026, 1, 11))


def test_readers_are_due_by_their_local_hour(db: None) -> None:
    tokyo = make_subscriber("tokyo@example.org", "active", timezone="Asia/Tokyo", send_hour=7)
    make_subscriber("la@example.org", "active", timezone="America/Los_Angeles", send_hour=7)
    # 23:30 UTC on Jan 7 is 08:30 on Jan 8 in Tokyo and 15:30 on Jan 7 in Los Angeles.
    now = datetime(2026, 1, 7, 23, 30, tzinfo=UTC)
    due = {day: list(qs) for day, qs in due_now(now) if qs.exists()}
    assert list(due) == [date(2026, 1, 7), date(2026, 1, 8)]
    assert due[date(2026, 1, 8)] == [tokyo]
    early = datetime(2026, 1, 7, 21, 30, tzinfo=UTC)  # 06:30 in Tokyo: not yet
    assert all(d != date(2026, 1, 8) for d, qs in due_now(early) if qs.exists())


def test_preview_shows_exactly_what_planning_writes(
    sample_week: list[Paper], alice: Subscriber
) -> None:
    preview = digest_preview(subscriber=alice, digest_date=THURSDAY)
    assert not Delivery.objects.exists()
    plan(THURSDAY)
    items = DeliveryItem.objects.filter(subscriber=alice).order_by("rank")
    assert [p.pk for p, _ in preview.items] == [i.paper_id for i in items]
    assert [m.score for _, m in preview.items] == [i.score for i in items]


def test_planning_queries_do_not_grow_with_readers(
    sample_week: list[Paper], django_assert_num_queries: Any, monkeypatch: Any
) -> None:
    import newsletter.planning

    monkeypatch.setattr(newsletter.planning, "BATCH", 20)
    for n in range(60):
        make_subscriber(f"r{n}@example.org", "active", ["agents"] if n % 2 else ["diffusion"])
    # 4 to set up the run (candidates, topics, and the two checks that it is current)
    # and 2 for the topics' vectors (read, and stored the first time), then 9 per batch
    # of readers, however many readers a batch holds; 1 to end the batches.
    with django_assert_num_queries(4 + 2 + 3 * 9 + 1):
        counts = digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    assert Delivery.objects.count() == 60
    assert counts.rankings == 2  # two distinct sets of preferences, each scored once


def test_send_digests_twice_sends_nothing_the_second_time(
    sample_week: list[Paper], alice: Subscriber, mailoutbox: list[object]
) -> None:
    call_command("send_digests", "--date", THURSDAY.isoformat())
    assert len(mailoutbox) == 1
    call_command("send_digests", "--date", THURSDAY.isoformat())
    assert len(mailoutbox) == 1
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_reader_is_due_at_their_local_hour_across_a_dst_change(db: None) -> None:
    reader = make_subscriber("ny@example.org", "active", timezone="America/New_York", send_hour=7)
    # 2026-03-08: New York moves from UTC-5 to UTC-4, so 07:00 local is 11:00 UTC.
    before = datetime(2026, 3, 8, 10, 30, tzinfo=UTC)  # 06:30 EDT: not yet
    after = datetime(2026, 3, 8, 11, 30, tzinfo=UTC)  # 07:30 EDT
    assert not any(qs.exists() for _, qs in due_now(before))
    assert [(day, list(qs)) for day, qs in due_now(after)] == [(date(2026, 3, 8), [reader])]
    # The day before, 11:30 UTC was 06:30 EST: not yet.
    assert not any(qs.exists() for _, qs in due_now(datetime(2026, 3, 7, 11, 30, tzinfo=UTC)))


def test_preferences_changed_after_planning_apply_from_the_next_digest(
    sample_week: list[Paper], alice: Subscriber, mailoutbox: list[object]
) -> None:
    from newsletter.models import Topic
    from newsletter.sending import deliveries_send

    plan(THURSDAY)
    planned = list(DeliveryItem.objects.filter(subscriber=alice).values_list("paper_id", flat=True))
    alice.topics.set(Topic.objects.filter(slug="speech"))
    deliveries_send(delivery_ids=list(Delivery.objects.values_list("pk", flat=True)))
    assert len(mailoutbox) == 1  # the digest goes out as planned
    sent = DeliveryItem.objects.filter(subscriber=alice).values_list("paper_id", flat=True)
    assert list(sent) == planned
    plan(date(2026, 1, 9))
    friday = Delivery.objects.get(digest_date=date(2026, 1, 9))
    assert all("Speech" in i.reason for i in friday.items.all())


def test_beat_fans_out_planning_and_sending(
    sample_week: list[Paper], alice: Subscriber, mailoutbox: list[object], time_machine: Any
) -> None:
    from newsletter.tasks import plan_due_digests

    time_machine.move_to(datetime(2026, 1, 8, 7, 30, tzinfo=UTC), tick=False)
    assert plan_due_digests() == {"plan_chunks": 1}
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert len(mailoutbox) == 1
    assert plan_due_digests() == {"plan_chunks": 0}  # nothing twice
    assert len(mailoutbox) == 1


def test_beat_requeues_deliveries_whose_send_task_was_lost(
    sample_week: list[Paper], alice: Subscriber, mailoutbox: list[object], time_machine: Any
) -> None:
    from newsletter.tasks import recover_deliveries

    time_machine.move_to(datetime(2026, 1, 8, 5, 0, tzinfo=UTC), tick=False)
    plan(THURSDAY)  # planned, but its send task never ran
    time_machine.move_to(datetime(2026, 1, 8, 6, 0, tzinfo=UTC), tick=False)
    assert recover_deliveries()["orphaned"] == 1
    assert Delivery.objects.get().status == Delivery.Status.SENT and len(mailoutbox) == 1
