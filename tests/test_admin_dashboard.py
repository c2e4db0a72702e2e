"""The admin dashboard: signups, sends, bounces, complaints and unsubscribes per day and
the most followed topics, drawn as inline SVG from a few aggregate queries."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from newsletter.charts import daily_bars, nice_ceiling, ranking_bars, ticks
from newsletter.models import Delivery, EmailEvent, Subscriber
from newsletter.stats import dashboard_counts, signups_per_day, status_counts, top_topics
from tests.conftest import make_subscriber

pytestmark = pytest.mark.django_db
DASHBOARD = "admin:dashboard"
SVG = "{http://www.w3.org/2000/svg}"


@dataclass
class History:
    today: date
    yesterday: date
    earlier: date  # three days ago


def at(day: date, hour: int = 9) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


@pytest.fixture
def history(db: None) -> History:
    """Signups: 3 yesterday, 1 three days ago, 1 45 days ago. Digests: yesterday 2 sent
    and 1 failed, three days ago 1 sent. Events: yesterday a bounce, a complaint and a
    delivered; three days ago two unsubscribes (our link, an admin). Active readers
    follow agents (3) and quantization (1); a pending one follows quantization, an
    unsubscribed one diffusion."""
    today = timezone.localdate()
    h = History(today, today - timedelta(days=1), today - timedelta(days=3))
    signups = [
        ("ada", "active", ["agents", "quantization"], h.yesterday),
        ("bea", "active", ["agents"], h.yesterday),
        ("cy", "pending", ["quantization"], h.yesterday),
        ("dan", "active", ["agents"], h.earlier),
        ("eve", "unsubscribed", ["diffusion"], today - timedelta(days=45)),
    ]
    readers = {}
    for name, status, topics, day in signups:
        readers[name] = make_subscriber(f"{name}@example.org", status, topics, created=at(day))
    for name, day, status in [
        ("ada", h.yesterday, "sent"),
        ("bea", h.yesterday, "sent"),
        ("dan", h.yesterday, "failed"),
        ("dan", h.earlier, "sent"),
    ]:
        Delivery.objects.create(
            subscriber=readers[name],
            digest_date=day,
            period_start=day - timedelta(days=1),
            period_end=day - timedelta(days=1),
            status=status,
        )
    for day, kind, provider in [
        (h.yesterday, "bounced", "postmark"),
        (h.yesterday, "complained", "postmark"),
        (h.yesterday, "delivered", "postmark"),
        (h.earlier, "unsubscribed", "paperboy"),
        (h.earlier, "unsubscribed", "admin"),
    ]:
        EmailEvent.objects.create(provider=provider, event_type=kind, timestamp=at(day))
    return h


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (markup this project drew, in a test)


def charts(html: str) -> dict[str, ET.Element]:
    """Every chart on the page, parsed as XML (so each must be well-formed), by id."""
    found = re.findall(
        r'<svg xmlns="http://www.w3.org/2000/svg" class="chart".*?</svg>', html, re.S
    )
    parsed = [parse(svg) for svg in found]
    return {svg.attrib["id"]: svg for svg in parsed}


def bar_titles(svg: ET.Element) -> list[str]:
    return [rect.findtext(f"{SVG}title") or "" for rect in svg.iter(f"{SVG}rect")]


def test_the_dashboard_draws_the_seeded_numbers(
    admin_client: Client,
    history: History,
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    with django_assert_max_num_queries(11):  # 10, and the latest digest date
        page = admin_client.get(reverse(DASHBOARD))
    assert page.status_code == 200
    html = page.content.decode()
    found = charts(html)
    assert sorted(found) == [
        "chart-bounced",
        "chart-complained",
        "chart-sent",
        "chart-signups",
        "chart-topics",
        "chart-unsubscribed",
    ]
    y, e = history.yesterday.isoformat(), history.earlier.isoformat()
    signups = found["chart-signups"]
    assert signups.attrib["role"] == "img"
    assert signups.attrib["aria-labelledby"] == "chart-signups-title chart-signups-desc"
    assert signups.findtext(f"{SVG}title") == "Signups per day"
    start = (history.today - timedelta(days=29)).isoformat()
    assert signups.findtext(f"{SVG}desc") == (
        f"Signups per day, {start} to {history.today.isoformat()}: 4 signups in all; "
        f"the most on {y} (3)."
    )
    titles = bar_titles(signups)
    assert len(titles) == 30
    assert f"{y}: 3 signups" in titles and f"{e}: 1 signup" in titles
    assert sum(t.endswith(": 0 signups") for t in titles) == 28
    assert f"{y}: 2 digests" in bar_titles(found["chart-sent"])
    assert f"{e}: 1 digest" in bar_titles(found["chart-sent"])
    assert f"{y}: 1 bounce" in bar_titles(found["chart-bounced"])
    assert f"{y}: 1 complaint" in bar_titles(found["chart-complained"])
    assert f"{e}: 2 unsubscribes" in bar_titles(found["chart-unsubscribed"])
    texts = [t.text for t in signups.iter(f"{SVG}text")]
    assert "Signups" in texts and "Date" in texts  # axis titles
    assert "3" in texts and "0" in texts  # the y axis runs 0 to 3
    topics = found["chart-topics"]
    assert bar_titles(topics) == [
        "Agents and tool use: 3 active subscribers",
        "Quantization: 1 active subscriber",
    ]
    assert topics.findtext(f"{SVG}desc") == (
        "Top topics by active subscribers, in active subscribers: Agents and tool use: 3; "
        "Quantization: 1."
    )
    statuses = {label: n for label, n, _ in page.context["statuses"]}
    assert statuses["Active"] == 3 and statuses["Pending confirmation"] == 1
    assert statuses["Unsubscribed"] == 1 and page.context["total"] == 5
    assert "?status__exact=active" in html
    assert "<script" not in html.split('id="content"')[1].split("<footer")[0]


def test_the_numbers_table_matches_the_charts(admin_client: Client, history: History) -> None:
    page = admin_client.get(reverse(DASHBOARD) + "?days=7")
    table = {row[0]: row[1:] for row in page.context["table"]}
    assert len(table) == 7 and max(table) == history.today
    #                                 signups sent bounced complained unsubscribed
    assert table[history.yesterday] == (3, 2, 1, 1, 0)
    assert table[history.earlier] == (1, 1, 0, 0, 2)
    assert page.context["totals"] == [4, 3, 1, 1, 2]


def test_the_window_follows_days(admin_client: Client, history: History) -> None:
    url = reverse(DASHBOARD)
    two = admin_client.get(url + "?days=2")
    assert two.context["table"][-1][0] == history.yesterday and len(two.context["table"]) == 2
    assert len(bar_titles(charts(two.content.decode())["chart-signups"])) == 2
    wide = admin_client.get(url + "?days=60")
    assert wide.context["totals"][0] == 5  # the signup 45 days ago
    assert len(admin_client.get(url + "?days=9999").context["table"]) == 366
    bad = admin_client.get(url + "?days=lots")
    assert bad.status_code == 200 and "is not a number of days" in bad.content.decode()
    assert len(bad.context["table"]) == 30


def test_an_empty_service_draws_empty_charts(admin_client: Client) -> None:
    page = admin_client.get(reverse(DASHBOARD))
    found = charts(page.content.decode())
    assert found["chart-signups"].findtext(f"{SVG}desc", "").endswith(": none.")
    assert found["chart-topics"].findtext(f"{SVG}desc") == (
        "Top topics by active subscribers: none yet."
    )


def test_the_counts_take_a_fixed_number_of_queries(
    history: History, django_assert_num_queries: Callable[..., Any]
) -> None:
    with django_assert_num_queries(7):  # with the two of the digests on their way
        counts = dashboard_counts(days=366)
    assert sum(counts.signups) == 5
    with django_assert_num_queries(1):
        assert signups_per_day(days=30, today=history.today) == {
            history.yesterday: 3,
            history.earlier: 1,
        }
    with django_assert_num_queries(1):
        assert [(t.slug, t.active) for t in top_topics(limit=5)] == [
            ("agents", 3),
            ("quantization", 1),
        ]
    with django_assert_num_queries(1):
        counts_by_status = status_counts()
    assert set(counts_by_status) == set(Subscriber.Status.values)
    assert counts_by_status["active"] == 3 and counts_by_status["bounced"] == 0


def test_the_admin_index_links_the_dashboard(admin_client: Client) -> None:
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert reverse(DASHBOARD) in html


def test_the_dashboard_is_staff_only(client: Client) -> None:
    url = reverse(DASHBOARD)
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    User.objects.create_user("reader", "reader@example.org", "pw")
    client.login(username="reader", password="pw")
    assert "/admin/login/" in client.get(url)["Location"]
    staff = User.objects.create_user("op", "op@example.org", "pw", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    assert url not in client.get(reverse("admin:index")).content.decode()
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_subscriber", "view_delivery"])
    )
    assert client.get(url).status_code == 200


# The drawing itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (1, 1), (3, 5), (7, 10), (11, 20), (20, 20), (430, 500)]
)
def test_axes_end_on_a_round_number(value: int, ceiling: int) -> None:
    assert nice_ceiling(value) == ceiling
    assert ticks(ceiling)[0] == 0 and ticks(ceiling)[-1] == ceiling
    assert all(isinstance(t, int) for t in ticks(ceiling))


def test_labels_are_escaped_and_bars_scale_to_the_axis() -> None:
    svg = parse(
        ranking_bars(
            chart_id="t",
            title="Top <topics> & co",
            unit="reader",
            items=[("<script>alert(1)</script>", 10), ("Half", 5)],
            colour="#000",
        )
    )
    rects = list(svg.iter(f"{SVG}rect"))
    assert float(rects[0].attrib["width"]) == 2 * float(rects[1].attrib["width"])
    assert svg.findtext(f"{SVG}title") == "Top <topics> & co"  # escaped in the markup
    assert bar_titles(svg)[0] == "<script>alert(1)</script>: 10 readers"
    days = [date(2026, 1, d) for d in range(1, 32)]
    daily = parse(
        daily_bars(chart_id="d", title="T", unit="x", days=days, values=[1] * 31, colour="#000")
    )
    labels = [t.text for t in daily.iter(f"{SVG}text")]
    assert "Jan 1" in labels and sum(1 for t in labels if t and t.startswith("Jan ")) <= 8


def test_on_old_data_the_dashboard_shows_the_days_up_to_the_latest_activity(
    admin_client: Client, alice: Subscriber
) -> None:
    """As after `make demo` on any later day: a digest dated 2026-01-12 and nothing since."""
    Subscriber.objects.filter(pk=alice.pk).update(created=timezone.make_aware(datetime(2026, 1, 5)))
    Delivery.objects.create(
        subscriber=alice,
        digest_date=date(2026, 1, 12),
        period_start=date(2026, 1, 5),
        period_end=date(2026, 1, 11),
        status="sent",
    )
    page = admin_client.get(reverse("admin:dashboard")).content.decode()
    assert "these are the 30 days up to 2026-01-12" in page
    assert 'name="until" value="2026-01-12"' in page
    today = admin_client.get(reverse("admin:dashboard") + "?until=" + str(timezone.localdate()))
    assert "these are the 30 days" not in today.content.decode()
