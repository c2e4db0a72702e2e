"""The subscriber's web experience in a real browser. Chromium, driven by Playwright,
signs a reader up on the live site; the confirmation goes through a Celery worker and
Redis into an SMTP server on loopback; the reader follows its link, confirms, edits
their preferences, pauses, resumes and unsubscribes. Each step is checked on the page
and in the database, on a desktop and on a phone (where no key page scrolls sideways).
The same site works from the keyboard alone and with JavaScript off, and no page gets
anything refused by its Content-Security-Policy.

Screenshots of the key pages land in pytest's temporary folder (``pages/``, under
``pytest --basetemp`` or /tmp/pytest-of-$USER/). With PAPERBOY_UPDATE_DOCS=1 they also
refresh docs/pages/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)

from newsletter.middleware import PUBLIC_POLICY
from newsletter.models import EmailEvent, Subscriber, Topic
from papers.models import Paper
from tests.conftest import ROOT, Inbox, need_chromium

pytestmark = pytest.mark.integration

DOCS = ROOT / "docs" / "pages"
DEVICES: dict[str, ViewportSize] = {
    "desktop": {"width": 1280, "height": 900},
    "phone": {"width": 390, "height": 844},
}
CONFIRM_LINK = r"/confirm/[^/\s]+/"
TIME_ZONE = re.compile(r"^Time ?zone$")  # the signup form's label, and the manage page's


def docs_wanted() -> bool:
    return os.environ.get("PAPERBOY_UPDATE_DOCS") == "1"


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    executable = need_chromium()
    # Playwright's sync API keeps an event loop running in this thread, and Django then
    # refuses queries from it; the test checks the database between page visits.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server: Any, settings: Any) -> str:
    url = str(live_server).rstrip("/")
    settings.SITE_URL = url  # links on the pages and in the emails lead to the live server
    settings.PAPERBOY_MIN_SUBMIT_SECONDS = 0  # a browser fills the form in at once
    return url


@pytest.fixture(scope="session")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pages", numbered=False)


@dataclass
class Tab:
    """One browser page and what it reported that a reader never sees: messages about
    anything the Content-Security-Policy refused, and requests that failed."""

    page: Page
    shots: Path
    suffix: str = ""
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("response", self._response)
        self.page.on("requestfailed", lambda request: self.failed.append(request.url))

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.refused.append(message.text)

    def visit(self, url: str) -> None:
        response = self.page.goto(url)
        assert response is not None and response.ok, url
        assert response.headers["content-security-policy"] == PUBLIC_POLICY

    def key_page(self, name: str, *, scripts: bool = True, docs: bool = True) -> None:
        """A key page: nothing refused or failed so far, no sideways scroll (checked by a
        script, so only with JavaScript on), and a screenshot (for docs/ too, on request
        and unless ``docs`` is false)."""
        assert self.refused == [], self.refused
        assert self.failed == [], self.failed
        if scripts:
            scroll, width = self.page.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert scroll <= width, f"{name}{self.suffix}: {scroll}px wide in a {width}px window"
        path = self.shots / f"{name}{self.suffix}.png"
        self.page.screenshot(path=path, full_page=True)
        if docs and docs_wanted():
            DOCS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, DOCS / path.name)


def open_tab(
    browser: Browser,
    shots: Path,
    *,
    device: str = "desktop",
    zone: str = "Asia/Tokyo",
    scripts: bool = True,
) -> Tab:
    phone = device == "phone"
    context = browser.new_context(
        viewport=DEVICES[device],
        is_mobile=phone,
        has_touch=phone,
        timezone_id=zone,
        java_script_enabled=scripts,
    )
    context.set_default_timeout(15_000)
    return Tab(context.new_page(), shots, suffix="-phone" if phone else "")


def topic_box(page: Page, area: str, name: str) -> Locator:
    """A topic's checkbox, found the way a reader finds it: in its area's group."""
    group = page.get_by_role("group", name=area, exact=True)
    return group.get_by_role("checkbox", name=re.compile(rf"^{re.escape(name)}\b"))


def link_in(text: str, site: str, pattern: str) -> str:
    match = re.search(re.escape(site) + pattern, text)
    assert match, text
    return match.group(0)


def plain_text(message: Any) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def reader(email: str) -> Subscriber:
    return Subscriber.objects.get(email=email)


def topics_of(subscriber: Subscriber) -> set[str]:
    return set(subscriber.topics.values_list("slug", flat=True))


# The whole path, on a desktop and on a phone -------------------------------------------


@pytest.mark.parametrize("device", list(DEVICES))
def test_a_reader_signs_up_confirms_edits_pauses_and_unsubscribes_in_a_browser(
    device: str,
    start_worker: Callable[..., subprocess.Popen[bytes]],
    smtp_server: tuple[Inbox, int],
    sample_week: list[Paper],
    site: str,
    browser: Browser,
    shots: Path,
) -> None:
    inbox, port = smtp_server
    start_worker(EMAIL_PROVIDER="smtp", EMAIL_URL=f"smtp://127.0.0.1:{port}", SITE_URL=site)
    tab = open_tab(browser, shots, device=device, zone="Asia/Tokyo")
    page = tab.page
    email = f"Reader.{device}@Example.org"
    stored = email.lower()

    # 1. The front page: a sample of trending papers, then the form with the topics
    # grouped by area, and the browser's own time zone picked by the script.
    tab.visit(site + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("trending ML papers")
    expect(page.locator(".paper").first).to_be_visible()
    areas = sorted(set(Topic.objects.values_list("area", flat=True)))
    for area in areas:
        group = page.get_by_role("group", name=area, exact=True)
        shown = group.get_by_role("checkbox").evaluate_all("boxes => boxes.map(b => b.value)")
        assert sorted(shown) == sorted(
            str(pk) for pk in Topic.objects.filter(area=area).values_list("pk", flat=True)
        )
    expect(page.get_by_label(TIME_ZONE)).to_have_value("Asia/Tokyo")
    tab.key_page("landing")

    # 2. Fill the form in and send it.
    page.get_by_label("Email address").fill(email)
    topic_box(page, "Efficiency", "Quantization").check()
    topic_box(page, "Language", "Agents and tool use").check()
    page.get_by_label("Keywords or a sentence", exact=True).fill("KV cache, speculative decoding")
    page.get_by_label("Authors to follow").fill("Tri Dao\nAlbert  Gu\n")
    page.get_by_role("radio", name="Weekly").check()
    page.get_by_label("Weekly digest day").select_option(label="Thursday")
    page.get_by_label("Send at (your local time)").select_option(label="06:00")
    page.get_by_label("Papers per digest").fill("15")
    page.get_by_role("button", name="Subscribe").click()

    # 3. "Check your inbox", and a pending reader with every choice made.
    expect(page).to_have_url(re.compile(re.escape(site + "/check-your-inbox/")))
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    tab.key_page("check-your-inbox")
    subscriber = reader(stored)
    assert subscriber.status == Subscriber.Status.PENDING and subscriber.consent_at is None
    assert topics_of(subscriber) == {"quantization", "agents"}
    assert subscriber.keywords == "KV cache, speculative decoding"
    assert subscriber.authors == ["Tri Dao", "Albert Gu"]
    assert (subscriber.frequency, subscriber.weekly_day, subscriber.send_hour) == ("weekly", 3, 6)
    assert (subscriber.timezone, subscriber.max_papers) == ("Asia/Tokyo", 15)

    # 4. The confirmation email reaches the SMTP server; its link shows a button, and
    # opening it changes nothing.
    confirmation = inbox.wait_for(1)[0]
    assert confirmation["To"] == stored
    assert confirmation["Subject"] == "Confirm your Paperboy subscription"
    tab.visit(link_in(plain_text(confirmation), site, CONFIRM_LINK))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your subscription")
    expect(page.get_by_text(stored)).to_be_visible()
    tab.key_page("confirm")
    assert reader(stored).status == Subscriber.Status.PENDING

    # 5. Pressing it confirms.
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    expect(page.get_by_text("When: Every Thursday at 06:00 (Asia/Tokyo)")).to_be_visible()
    tab.key_page("confirmed")
    subscriber = reader(stored)
    assert subscriber.status == Subscriber.Status.ACTIVE and subscriber.consent_at is not None

    # 6. The manage page, through the confirmed page's link, shows the choices made.
    page.get_by_role("link", name="Check or change your topics, interests and schedule").click()
    expect(page).to_have_url(re.compile(re.escape(site) + "/manage/[^/]+/$"))
    expect(page.get_by_text(f"Every Thursday at 06:00 (Asia/Tokyo), to {stored}.")).to_be_visible()
    expect(topic_box(page, "Efficiency", "Quantization")).to_be_checked()
    expect(topic_box(page, "Language", "Agents and tool use")).to_be_checked()
    expect(topic_box(page, "Generation", "Diffusion and flow models")).not_to_be_checked()
    expect(page.get_by_label("Your interests")).to_have_value("KV cache, speculative decoding")
    expect(page.get_by_label("Authors to follow")).to_have_value("Tri Dao\nAlbert Gu")

    # 7. Change them and save.
    topic_box(page, "Language", "Agents and tool use").uncheck()
    topic_box(page, "Generation", "Diffusion and flow models").check()
    page.get_by_label("Your interests").fill("diffusion distillation")
    page.get_by_label("Authors to follow").fill("Tri Dao\nSong Han")
    page.get_by_label("Daily").check()
    page.get_by_label("Send at (your local time)").select_option(label="08:00")
    page.get_by_label(TIME_ZONE).select_option("Europe/Berlin")
    page.get_by_label("Papers per digest").fill("5")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_have_text(
        "Saved. Your next digest follows these preferences."
    )
    expect(page.get_by_text(f"Every day at 08:00 (Europe/Berlin), to {stored}.")).to_be_visible()
    tab.key_page("manage")
    subscriber = reader(stored)
    assert topics_of(subscriber) == {"quantization", "diffusion"}
    assert subscriber.keywords == "diffusion distillation"
    assert subscriber.authors == ["Tri Dao", "Song Han"]
    assert (subscriber.frequency, subscriber.send_hour, subscriber.timezone) == (
        "daily",
        8,
        "Europe/Berlin",
    )
    assert subscriber.max_papers == 5 and subscriber.status == Subscriber.Status.ACTIVE

    # 8. Pause, then resume.
    page.get_by_role("button", name="Pause my digests").click()
    expect(page.get_by_role("status")).to_have_text("Paused. No digests until you resume them.")
    assert reader(stored).status == Subscriber.Status.PAUSED
    page.get_by_role("button", name="Resume my digests").click()
    expect(page.get_by_role("status")).to_contain_text("Resumed.")
    assert reader(stored).status == Subscriber.Status.ACTIVE

    # 9. Unsubscribe through the link: its page asks first, the button acts.
    page.get_by_role("link", name="Unsubscribe", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Unsubscribe")
    assert reader(stored).status == Subscriber.Status.ACTIVE
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're unsubscribed")
    expect(page.get_by_role("button", name="Resubscribe")).to_be_visible()
    tab.key_page("unsubscribed")
    subscriber = reader(stored)
    assert subscriber.status == Subscriber.Status.UNSUBSCRIBED
    assert EmailEvent.objects.filter(subscriber=subscriber, event_type="unsubscribed").exists()

    # 10. The archive, from the footer: every day of the sample week, each with its list.
    page.get_by_role("link", name="Archive of daily trending papers").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Daily trending papers")
    expect(page.locator(".days li")).to_have_count(5)
    tab.key_page("archive")
    page.get_by_role("link", name="Friday, January 9, 2026").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Trending papers of Friday, January 9, 2026"
    )
    expect(page.locator(".paper")).to_have_count(
        Paper.objects.filter(catalogue_date="2026-01-09").count()
    )
    tab.key_page("archive-day", docs=False)

    # Only the confirmation was ever emailed.
    assert [m["To"] for m in inbox.messages] == [stored]


# The keyboard alone --------------------------------------------------------------------


def tab_to(page: Page, selector: str, limit: int = 300) -> list[str]:
    """Press Tab until the element ``selector`` has focus; the names of the elements
    that had it on the way."""
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return passed
        passed.append(
            page.evaluate(
                "() => { const e = document.activeElement;"
                " return e.name || e.id || e.textContent.trim() || e.tagName; }"
            )
        )
    raise AssertionError(f"{limit} presses of Tab never reached {selector}: {passed[-10:]}")


def focus_ring(page: Page) -> str:
    return str(page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle"))


def test_a_reader_signs_up_and_confirms_with_the_keyboard_alone(
    site: str, browser: Browser, shots: Path
) -> None:
    tab = open_tab(browser, shots, zone="America/New_York")
    page = tab.page
    tab.visit(site + "/")

    on_the_way = tab_to(page, "#id_email")
    assert focus_ring(page) != "none"
    page.keyboard.type("keys@example.org")
    on_the_way += tab_to(page, "input[name=topics]")  # the first topic
    page.keyboard.press("Space")
    on_the_way += tab_to(page, "button[type=submit]")
    assert focus_ring(page) != "none"
    assert "website" not in on_the_way  # the honeypot is out of the tab order
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(re.escape(site + "/check-your-inbox/")))
    subscriber = reader("keys@example.org")
    assert subscriber.status == Subscriber.Status.PENDING
    assert subscriber.timezone == "America/New_York"
    assert list(subscriber.topics.all()) == [Topic.objects.first()]  # Space ticked it
    assert [m.to for m in mail.outbox] == [["keys@example.org"]]

    tab.visit(link_in(str(mail.outbox[0].body), site, CONFIRM_LINK))
    tab_to(page, "button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    assert reader("keys@example.org").status == Subscriber.Status.ACTIVE
    tab.key_page("confirmed-keyboard", docs=False)


# No JavaScript -------------------------------------------------------------------------


def test_every_step_works_with_javascript_off(site: str, browser: Browser, shots: Path) -> None:
    tab = open_tab(browser, shots, zone="Asia/Tokyo", scripts=False)
    page = tab.page
    tab.visit(site + "/")

    # Without the script the zone stays at its default, and the reader picks one.
    zone = page.get_by_label(TIME_ZONE)
    expect(zone).to_have_value("UTC")
    zone.select_option("Europe/Lisbon")
    page.get_by_label("Email address").fill("noscript@example.org")
    topic_box(page, "Applications", "Retrieval and RAG").check()
    page.get_by_label("Papers per digest").fill("")  # cleared: the default, not a lost signup
    page.get_by_role("button", name="Subscribe").click()
    expect(page).to_have_url(re.compile(re.escape(site + "/check-your-inbox/")))
    subscriber = reader("noscript@example.org")
    assert subscriber.timezone == "Europe/Lisbon" and topics_of(subscriber) == {"rag"}
    assert subscriber.max_papers == 10

    tab.visit(link_in(str(mail.outbox[0].body), site, CONFIRM_LINK))
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    assert reader("noscript@example.org").status == Subscriber.Status.ACTIVE

    page.get_by_role("link", name="Check or change your topics, interests and schedule").click()
    page.get_by_label("Your interests").fill("retrieval at scale")
    page.get_by_role("button", name="Save preferences").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    assert reader("noscript@example.org").keywords == "retrieval at scale"

    page.get_by_role("button", name="Pause my digests").click()
    expect(page.get_by_role("status")).to_contain_text("Paused.")
    assert reader("noscript@example.org").status == Subscriber.Status.PAUSED
    page.get_by_role("button", name="Resume my digests").click()
    expect(page.get_by_role("status")).to_contain_text("Resumed.")

    page.get_by_role("link", name="Unsubscribe", exact=True).click()
    page.get_by_role("button", name="Unsubscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're unsubscribed")
    assert reader("noscript@example.org").status == Subscriber.Status.UNSUBSCRIBED
    tab.key_page("unsubscribed-noscript", scripts=False, docs=False)


# The watch itself ----------------------------------------------------------------------


def test_the_console_watch_catches_what_the_policy_refuses(
    site: str, browser: Browser, shots: Path
) -> None:
    """The pages' checks above would pass vacuously if a refusal never reached them."""
    tab = open_tab(browser, shots)
    tab.visit(site + "/")
    with tab.page.expect_console_message():
        tab.page.evaluate(
            "() => { const s = document.createElement('style');"
            " s.textContent = 'body { color: red }'; document.head.append(s); }"
        )
    expect(tab.page.locator("body")).not_to_have_css("color", "rgb(255, 0, 0)")
    assert len(tab.refused) == 1 and "style-src" in tab.refused[0]


@pytest.mark.parametrize("device", list(DEVICES))
def test_an_invalid_save_says_so_at_the_top_and_takes_the_focus(
    device: str, site: str, browser: Browser, shots: Path
) -> None:
    """Papers per digest 0 on the manage page, and a bad address on signup: the page comes
    back with a summary at the top of the form, focused, linking to the field."""
    from newsletter.tokens import make_token

    reader_row = Subscriber.objects.create(email=f"summary-{device}@example.org", status="active")
    tab = open_tab(browser, shots, device=device)
    page = tab.page
    tab.visit(f"{site}/manage/{make_token(reader_row, purpose='manage')}/")
    page.get_by_label("Papers per digest").fill("0")
    page.get_by_role("button", name="Save preferences").click()
    summary = page.locator("#form-errors")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Nothing was saved")
    expect(summary.get_by_role("link", name="Papers per digest")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "form-errors"
    tab.visit(f"{site}/")
    page.get_by_label("Email address").fill("not an address")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.locator("#form-errors")).to_be_focused()
    expect(page.locator("#form-errors")).to_contain_text("Your signup was not sent yet")


def admin_shot(page: Page, shots: Path, name: str) -> None:
    """A screenshot of an admin page; with PAPERBOY_UPDATE_DOCS=1 also into docs/admin/."""
    path = shots / f"admin-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if docs_wanted():
        (DOCS.parent / "admin").mkdir(exist_ok=True)
        shutil.copy(path, DOCS.parent / "admin" / f"{name}.png")


def test_the_admin_lists_fit_a_1280_pixel_screen_and_the_admin_has_its_icon(
    site: str, browser: Browser, shots: Path, sample_week: list[Paper]
) -> None:
    from django.contrib.auth.models import User

    User.objects.create_superuser("operator", "op@example.org", "a long pass phrase")
    for n in range(5):
        Subscriber.objects.create(
            email=f"a.rather.long.address.{n}@research-institute.example.org",
            status="active",
            frequency="weekly",
            timezone="America/Argentina/Buenos_Aires",
        ).topics.set(Topic.objects.all()[:6])
    tab = open_tab(browser, shots, device="desktop")
    page = tab.page
    page.goto(f"{site}/admin/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("a long pass phrase")
    page.get_by_role("button", name="Log in").click()
    for path in ("newsletter/subscriber", "papers/ingestrun"):
        page.goto(f"{site}/admin/{path}/")
        widths = page.evaluate(
            "() => { const r = document.querySelector('#changelist .results');"
            " return [r.scrollWidth, r.clientWidth]; }"
        )
        assert widths[0] <= widths[1], f"{path}: the table is {widths[0]} px in {widths[1]} px"
        admin_shot(page, shots, path.split("/")[1])
    page.goto(f"{site}/admin/dashboard/")  # its screenshot, with deliveries, is below
    icon = page.locator('link[rel="icon"]')
    expect(icon).to_have_attribute("href", re.compile(r"favicon"))


def test_the_deliveries_list_says_why_each_waits_and_fits_1280_pixels(
    site: str, browser: Browser, shots: Path, sample_week: list[Paper]
) -> None:
    """Deliveries on their way in every state, with long addresses and errors: the list
    says in words why each waits, and still fits a 1280-pixel screen."""
    from datetime import date, timedelta

    from django.utils import timezone

    from newsletter.models import Delivery
    from newsletter.planning import digest_plan, subscribers_for_date

    thursday = date(2026, 1, 8)
    for n in range(6):
        Subscriber.objects.create(
            email=f"a.rather.long.address.{n}@research-institute.example.org", status="active"
        )
    digest_plan(digest_date=thursday, subscribers=subscribers_for_date(thursday))
    now = timezone.now()
    error = "retrying after: SMTPDataError(451, b'4.3.0 Try again later: " + "x" * 200 + "')"
    states = [
        {
            "status": "planned",
            "retry_at": now + timedelta(seconds=40),
            "attempts": 3,
            "error": error,
        },
        {"status": "sending", "lease_until": now + timedelta(seconds=80), "attempts": 1},
        {"status": "sending", "lease_until": now - timedelta(seconds=5), "attempts": 1},
        {"status": "unknown", "attempts": 1, "error": "outcome unknown: " + "y" * 200},
        {"status": "sent", "attempts": 2, "recoveries": 1, "sent_at": now},
        {"status": "planned", "queued_at": now},
    ]
    for delivery, fields in zip(Delivery.objects.order_by("pk"), states, strict=True):
        Delivery.objects.filter(pk=delivery.pk).update(**fields)
    tab = open_tab(browser, shots, device="desktop")
    page = tab.page
    admin_login(page, site)
    page.goto(f"{site}/admin/newsletter/delivery/")
    results = page.locator("#changelist .results")
    for words in (
        "tried again at",
        "being sent now",
        "its worker stopped mid-send",
        "sent again with the same Message-ID",
        "waiting for a worker",
    ):
        expect(results).to_contain_text(words)
    widths = page.evaluate(
        "() => { const r = document.querySelector('#changelist .results');"
        " return [r.scrollWidth, r.clientWidth]; }"
    )
    assert widths[0] <= widths[1], f"the deliveries table is {widths[0]} px in {widths[1]} px"
    admin_shot(page, shots, "delivery")
    page.goto(f"{site}/admin/dashboard/")
    expect(page.locator("#dashboard-sending")).to_contain_text("1 waiting to be tried again")
    admin_shot(page, shots, "dashboard")


def admin_login(page: Page, site: str) -> None:
    from django.contrib.auth.models import User

    User.objects.create_superuser("operator", "op@example.org", "a long pass phrase")
    page.goto(f"{site}/admin/login/")
    page.get_by_label("Username").fill("operator")
    page.get_by_label("Password").fill("a long pass phrase")
    page.get_by_role("button", name="Log in").click()


@pytest.mark.parametrize("device", list(DEVICES))
def test_the_operator_runs_a_dry_run_and_a_send_from_the_control_room(
    device: str,
    site: str,
    browser: Browser,
    shots: Path,
    sample_week: list[Paper],
    mailoutbox: list[Any],
) -> None:
    """From the admin's home page to the control room; a dry run lists what would go, a
    send mails it, both results on the page, which fits the screen at either width."""
    Subscriber.objects.create(email="due@example.org", status="active")
    tab = open_tab(browser, shots, device=device)
    page = tab.page
    admin_login(page, site)
    page.get_by_role("link", name="Control room").first.click()
    expect(page.locator("#control-beat")).to_contain_text("every 5 minutes")
    digests = page.locator("#control-digests")
    digests.get_by_label("Digest date").fill("2026-01-08")
    digests.get_by_role("button", name="Dry run").click()
    expect(page.locator(".messagelist")).to_contain_text("Started run #")
    expect(page.locator("#control-runs")).to_contain_text("1 would get a digest")
    assert mailoutbox == []
    digests.get_by_label("Digest date").fill("2026-01-08")
    digests.get_by_role("button", name="Plan and send").click()
    expect(page.locator("#control-runs")).to_contain_text("sent 1")
    assert [m.to for m in mailoutbox] == [["due@example.org"]]
    scroll, width = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert scroll <= width, f"the control room is {scroll}px wide in a {width}px window"
    admin_shot(page, shots, "control" + ("-phone" if device == "phone" else ""))


def test_the_manage_pages_legends_sit_inside_their_borders_on_a_phone(
    site: str, browser: Browser, shots: Path
) -> None:
    from newsletter.tokens import make_token

    row = Subscriber.objects.create(email="legend@example.org", status="active")
    tab = open_tab(browser, shots, device="phone")
    tab.visit(f"{site}/manage/{make_token(row, purpose='manage')}/")
    boxes = tab.page.evaluate(
        "() => [...document.querySelectorAll('fieldset > legend')].map(l => {"
        " const f = l.parentElement.getBoundingClientRect(), r = l.getBoundingClientRect();"
        " return [l.textContent.trim(), r.height, r.right <= f.right + 0.5,"
        " parseFloat(getComputedStyle(l).lineHeight) || r.height]; })"
    )
    assert boxes
    for text, height, inside, line in boxes:
        assert inside, f"legend {text!r} sticks out of its fieldset"
        assert height <= line * 1.5, f"legend {text!r} wraps onto {height / line:.1f} lines"


@pytest.mark.parametrize("device", list(DEVICES))
def test_a_returning_reader_is_told_what_now_applies_and_nothing_is_dropped_unsaid(
    device: str, site: str, browser: Browser, shots: Path, settings: Any, mailoutbox: list[Any]
) -> None:
    """A known (unsubscribed) address signs up again with new choices: the email and the
    pages say which preferences will apply, confirming applies them, a used link says it
    is used; a post sent too fast comes back with the form and a message; the manage
    page's details (frequency radios, topic descriptions, a 1-50 box, no legacy zones)."""
    email = f"returning-{device}@example.org"
    Subscriber.objects.create(
        email=email, status="unsubscribed", timezone="UTC", keywords="old interest"
    )
    tab = open_tab(browser, shots, device=device)
    page = tab.page

    # A post within the minimum time comes back with the form, filled in, and says so.
    settings.PAPERBOY_MIN_SUBMIT_SECONDS = 30
    tab.visit(site + "/")
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("That was quick: nothing has been sent yet.")).to_be_visible()
    expect(page.get_by_label("Email address")).to_have_value(email)
    assert mailoutbox == []
    settings.PAPERBOY_MIN_SUBMIT_SECONDS = 0

    tab.visit(site + "/")
    page.get_by_label("Email address").fill(email)
    topic_box(page, "Efficiency", "Quantization").check()
    page.get_by_label("Keywords or a sentence", exact=True).fill("graph neural networks")
    page.get_by_label(TIME_ZONE).select_option("Europe/Berlin")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your inbox")
    assert reader(email).timezone == "UTC"  # the old preferences stay until confirmed
    [confirmation] = mailoutbox
    text = confirmation.body
    assert "Europe/Berlin" in text and "graph neural networks" in text

    link = link_in(text, site, CONFIRM_LINK)
    tab.visit(link)
    expect(page.locator(".card")).to_contain_text("Europe/Berlin")
    expect(page.locator(".card")).to_contain_text("graph neural networks")
    page.get_by_role("button", name="Yes, confirm my subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("You're subscribed")
    expect(page.locator(".card")).to_contain_text("Europe/Berlin")
    expect(page.locator(".card")).not_to_contain_text("old interest")
    assert reader(email).timezone == "Europe/Berlin"

    tab.visit(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("You're already subscribed")
    expect(page.get_by_role("button", name="Yes, confirm my subscription")).to_have_count(0)

    from newsletter.tokens import make_token

    tab.visit(f"{site}/manage/{make_token(reader(email), purpose='manage')}/")
    expect(page.get_by_role("radio", name="Weekly")).to_be_visible()
    expect(page.get_by_text("Faster, cheaper serving and decoding.")).to_be_visible()
    box = page.get_by_label("Papers per digest")
    assert (box.get_attribute("min"), box.get_attribute("max")) == ("1", "50")
    zones = (
        page.get_by_label(TIME_ZONE)
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )
    assert "Europe/Berlin" in zones and not {"Zulu", "ROK", "W-SU", "UCT"} & set(zones)
    tab.key_page("manage-returning", docs=False)
