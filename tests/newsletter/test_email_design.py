"""The digest as a reader sees it: Chromium renders it on a desktop, in dark mode and on a
phone; a full 50-paper digest stays under Gmail's clipping limit; hostile titles stay text.

Screenshots land in var/screenshots/. With PAPERBOY_UPDATE_DOCS=1 the browser tests also
refresh the README's images in docs/ (the top of each digest, cropped to the email).
"""

from __future__ import annotations

import html as htmllib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
import time_machine
from playwright.sync_api import Browser, Page, sync_playwright

from newsletter.emails import digest_context, digest_message
from newsletter.models import Delivery, DeliveryItem, Subscriber
from newsletter.planning import digest_plan, subscribers_for_date
from papers.models import Paper
from tests.conftest import ROOT, need_chromium

pytestmark = pytest.mark.django_db
THURSDAY = date(2026, 1, 8)
SENDING = datetime(2026, 1, 8, 7, 0, tzinfo=UTC)
SCREENSHOTS = ROOT / "var" / "screenshots"
DOCS = ROOT / "docs"
DOCS_HEIGHT = 1400  # the README shows the top of a digest, not all of it
GMAIL_CLIPS_AT = 100_000  # bytes of HTML; Gmail clips past 102 KB, keep some headroom
# The colour of an element's text and of the first ancestor that paints a background.
COLOURS_JS = """el => {
  let node = el, bg = "rgb(255, 255, 255)";
  for (; node; node = node.parentElement) {
    const c = getComputedStyle(node).backgroundColor;
    if (c !== "transparent" && !/^rgba\\(.*,\\s*0\\)$/.test(c)) { bg = c; break; }
  }
  return [getComputedStyle(el).color, bg];
}"""


@dataclass(frozen=True)
class Digest:
    html: str
    papers: list[dict[str, Any]]


@pytest.fixture
def digest(sample_week: list[Paper], alice: Subscriber) -> Digest:
    """Alice's real Thursday digest, rendered before the browser starts: Django refuses
    queries once Playwright's event loop runs in this thread."""
    digest_plan(digest_date=THURSDAY, subscribers=subscribers_for_date(THURSDAY))
    delivery = Delivery.objects.select_related("subscriber").get(subscriber=alice)
    with time_machine.travel(SENDING, tick=False):  # signed links carry the second
        html = str(digest_message(delivery).alternatives[0][0])
        return Digest(html=html, papers=digest_context(delivery)["papers"])


@pytest.fixture
def browser(digest: Digest) -> Iterator[Browser]:
    executable = need_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


def open_digest(browser: Browser, html: str, *, width: int, scheme: str = "light") -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        color_scheme=scheme,  # type: ignore[arg-type]
        device_scale_factor=2 if docs_wanted() else 1,
    )
    page = context.new_page()
    page.set_content(html)
    return page


def docs_wanted() -> bool:
    return os.environ.get("PAPERBOY_UPDATE_DOCS") == "1"


def screenshot(page: Page, name: str) -> None:
    """The full page into var/screenshots/; on request, its top into docs/ for the README."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)
    if not docs_wanted():
        return
    box = page.locator("table.card").bounding_box()
    assert box is not None
    margin = min(box["x"], 32)
    height = page.evaluate("document.documentElement.scrollHeight")
    clip = {
        "x": box["x"] - margin,
        "y": 0,
        "width": box["width"] + 2 * margin,
        "height": min(height, DOCS_HEIGHT),
    }
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=DOCS / f"{name}.png", clip=clip, full_page=True)  # type: ignore[arg-type]


def luminance(css: str) -> float:
    """WCAG relative luminance of an ``rgb()``/``rgba()`` colour."""
    channels = [float(c) / 255 for c in re.findall(r"[\d.]+", css)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    light, dark = sorted([luminance(foreground), luminance(background)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_on_a_desktop_the_digest_is_one_600px_column_of_linked_papers(
    browser: Browser, digest: Digest
) -> None:
    page = open_digest(browser, digest.html, width=1000)
    box = page.locator("table.card").bounding_box()
    assert box is not None and 560 <= box["width"] <= 600
    assert page.locator("h1").all_inner_texts() == [f"{len(digest.papers)} papers for you"]
    titles = page.eval_on_selector_all(
        "h2 a", "links => links.map(a => [a.textContent, a.getAttribute('href')])"
    )
    assert titles == [[p["title"], p["hf_url"]] for p in digest.papers]
    up = page.get_by_role("link", name="👍 More like this")
    down = page.get_by_role("link", name="👎 Less like this")
    assert [a.get_attribute("href") for a in up.all()] == [
        p["thumbs_up_url"] for p in digest.papers
    ]
    assert [a.get_attribute("href") for a in down.all()] == [
        p["thumbs_down_url"] for p in digest.papers
    ]
    for name in ("View in browser", "Manage preferences", "Unsubscribe"):
        assert page.get_by_role("link", name=name, exact=True).count() == 1
    screenshot(page, "digest")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_kind_of_text_is_readable_in_light_and_dark_mode(
    browser: Browser, digest: Digest, scheme: str
) -> None:
    page = open_digest(browser, digest.html, width=1000, scheme=scheme)
    for selector in ("h1", ".sub", "h2 a", ".m", ".s", ".why", ".l a", ".b", ".ft a", ".out"):
        foreground, background = page.eval_on_selector(selector, COLOURS_JS)
        ratio = contrast(foreground, background)
        assert ratio >= 4.5, f"{scheme} {selector}: {foreground} on {background} is {ratio:.2f}"
    _, background = page.eval_on_selector(".s", COLOURS_JS)
    assert (luminance(background) < 0.05) == (scheme == "dark")
    if scheme == "dark":
        screenshot(page, "digest-dark")


def test_on_a_phone_nothing_scrolls_sideways(browser: Browser, digest: Digest) -> None:
    page = open_digest(browser, digest.html, width=375)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    assert page.eval_on_selector(".s", "el => parseFloat(getComputedStyle(el).fontSize)") >= 15
    screenshot(page, "digest-mobile")
    # A title from a stranger with no place to break must wrap, not widen the page.
    page.eval_on_selector("h2 a", "a => { a.textContent = 'Agent'.repeat(30); }")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


LONG_TITLE = "Scaling Long-Horizon Multimodal Agents with Verified Rewards"
LONG_SUMMARY = "A framework that makes agents plan, act and check their work."
LONG_REASON = (
    "by Author Number0, whom you follow; matches your topic Agents: 'tool use', 'web agent'; "
    "related to your interests via Reasoning: 'chain of thought', 'planning'"
)


def long_digest(subscriber: Subscriber, papers: list[Paper]) -> Delivery:
    """A digest of papers as long as they come: the sample's longest title (153 characters),
    an abstract cut at its 500-character cap, three reasons, every link and count."""
    for i, paper in enumerate(papers):
        paper.title = (f"{i:02} {LONG_TITLE} " * 3)[:153]
        paper.ai_summary = (f"{LONG_SUMMARY} " * 9)[:500]
        paper.authors = [f"Author Number{j}" for j in range(12)]
        paper.organization = "Shanghai Artificial Intelligence Laboratory"
        paper.github_repo = f"https://github.com/some-organisation/some-long-repository-{i}"
        paper.github_stars = 12345
        paper.project_page = f"https://some-organisation.github.io/some-long-project-{i}/"
    fields = ["title", "ai_summary", "authors", "organization", "github_repo", "github_stars"]
    Paper.objects.bulk_update(papers, [*fields, "project_page"])
    delivery = Delivery.objects.create(
        subscriber=subscriber, digest_date=THURSDAY, period_start=THURSDAY, period_end=THURSDAY
    )
    DeliveryItem.objects.bulk_create(
        DeliveryItem(
            delivery=delivery,
            subscriber=subscriber,
            paper=paper,
            rank=rank,
            score=1.0,
            reason=LONG_REASON,
        )
        for rank, paper in enumerate(papers, start=1)
    )
    return Delivery.objects.select_related("subscriber").get(pk=delivery.pk)


def test_a_full_digest_of_long_papers_stays_under_gmails_clipping_limit(
    sample_week: list[Paper], alice: Subscriber, settings: Any
) -> None:
    settings.SITE_URL = "https://paperboy.example.org"  # a real deployment's link length
    delivery = long_digest(alice, list(Paper.objects.order_by("pk")[:50]))
    html = str(digest_message(delivery).alternatives[0][0])
    assert html.count("<h2") == 50
    size = len(html.encode())
    assert size < GMAIL_CLIPS_AT, f"{size} bytes: Gmail would clip this digest"


def test_a_hostile_title_is_escaped_in_html_and_verbatim_in_text(
    sample_week: list[Paper], alice: Subscriber
) -> None:
    hostile = '<script>alert(1)</script> & "quotes"'
    delivery = long_digest(alice, list(Paper.objects.order_by("pk")[:2]))
    Paper.objects.filter(pk=delivery.items.get(rank=1).paper_id).update(title=hostile)
    message = digest_message(delivery)
    html = str(message.alternatives[0][0])
    assert "<script" not in html
    titles = re.findall(r"<h2[^>]*><a [^>]*>(.*?)</a></h2>", html)
    assert htmllib.unescape(titles[0]) == hostile
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; " in titles[0]
    assert f"1. {hostile}\n" in message.body
    assert message.subject == f"2 papers for you: {hostile}"
