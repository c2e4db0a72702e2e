"""Builds every message: Jinja2 render (HTML escaped, text not), CSS inline, headers.

Each email is three templates: ``emails/<name>.subject.txt``, ``.txt`` and ``.html``.
Contexts hold plain values only, so no query runs inside a template.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import date
from email.utils import make_msgid
from typing import Any

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import engines
from django.urls import reverse
from django.utils.crypto import salted_hmac

from newsletter.models import Delivery, Subscriber
from papers.models import Paper

_inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
MAX_AUTHORS = 3


@dataclass(frozen=True)
class RankedItem:
    """A digest item without its paper (the paper's part comes from a shared cache)."""

    paper_id: int
    rank: int
    reason: str


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(name: str, context: dict[str, Any]) -> Rendered:
    html_env = engines["email_html"].env  # type: ignore[attr-defined]
    text_env = engines["email_text"].env  # type: ignore[attr-defined]
    context = {"site_name": settings.SITE_NAME, "site_url": settings.SITE_URL, **context}
    subject = text_env.get_template(f"emails/{name}.subject.txt").render(context)
    return Rendered(
        subject=" ".join(subject.split()),
        text=text_env.get_template(f"emails/{name}.txt").render(context),
        html=short_lines(
            _inliner.inline(html_env.get_template(f"emails/{name}.html").render(context))
        ),
    )


def short_lines(html: str) -> str:
    """Start each inlined style attribute on a line of its own (whitespace between
    attributes means nothing in HTML). Lines then stay under SMTP's 998 characters, so
    the part goes out as plain 8-bit text instead of quoted-printable, which is larger
    and several times slower to encode. Text from outside never holds ` style="`:
    the autoescaping turned its quotes into entities."""
    return html.replace(' style="', '\n style="')


def short_summary(paper: Paper, sentences: int = 2) -> str:
    """HF's AI summary, else the abstract's first sentences; at most 500 characters."""
    summary = paper.ai_summary or " ".join(_SENTENCE_END.split(paper.abstract)[:sentences])
    return summary if len(summary) <= 500 else summary[:499].rsplit(" ", 1)[0] + "…"


def authors_short(authors: list[str]) -> str:
    if len(authors) <= MAX_AUTHORS:
        return ", ".join(authors)
    return ", ".join(authors[:MAX_AUTHORS]) + " et al."


def paper_context(paper: Paper) -> dict[str, Any]:
    """What the digest shows of a paper, the same for every reader."""
    summary = short_summary(paper)
    return {
        "arxiv_id": paper.arxiv_id,
        "title": paper.title,
        "hf_url": paper.hf_url,
        "arxiv_url": paper.arxiv_url,
        "pdf_url": paper.pdf_url,
        "authors": authors_short(paper.authors),
        "organization": paper.organization,
        "upvotes": paper.upvotes,
        "num_comments": paper.num_comments,
        "github_repo": paper.github_repo,
        "github_stars": paper.github_stars,
        "project_page": paper.project_page,
        "summary": summary,
        # Wrapped once per paper, not once per reader: wrapping is the text part's cost.
        "summary_wrapped": "\n".join(
            textwrap.wrap(summary, 69, break_long_words=False, break_on_hyphens=False)
        ),
    }


def _bulk_headers(unsubscribe_url: str, message_id: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{settings.SITE_NAME} digest <digest.{settings.SITE_DOMAIN}>",
        "Message-ID": message_id,
    }


def digest_context(
    delivery: Delivery, *, papers: dict[int, dict[str, Any]] | None = None, web: bool = False
) -> dict[str, Any]:
    """Everything the digest templates show. ``papers`` caches each paper's part across
    the digests of one sending chunk (most readers share papers). The ``web`` copy (the
    "view in browser" page, whose address anyone the email is forwarded to may hold)
    carries no personal link and not the address: no thumbs, manage or unsubscribe."""
    subscriber = delivery.subscriber
    items = getattr(delivery, "ranked_items", None)
    if items is None:
        items = list(delivery.items.select_related("paper").order_by("rank"))
    papers = {} if papers is None else papers
    feedback = "" if web else _feedback_prefix(subscriber.feedback_token())
    entries = []
    for item in items:
        shared = papers.get(item.paper_id)
        if shared is None:
            shared = papers[item.paper_id] = paper_context(item.paper)
        entries.append(
            {
                **shared,
                "rank": item.rank,
                "reason": item.reason,
                "thumbs_up_url": f"{feedback}{item.paper_id}/up/" if feedback else "",
                "thumbs_down_url": f"{feedback}{item.paper_id}/down/" if feedback else "",
            }
        )
    return {
        "digest_date": delivery.digest_date,
        "date_label": _date_label(delivery.digest_date),
        "frequency": subscriber.frequency,
        "papers": entries,
        "unsubscribe_url": "" if web else subscriber.unsubscribe_url(),
        "manage_url": "" if web else subscriber.manage_url(),
        "web_url": "" if web else delivery.web_url(),
        "web_copy": web,
        "postal_address": settings.PAPERBOY_POSTAL_ADDRESS,
        "email": "" if web else subscriber.email,
    }


def _feedback_prefix(token: str) -> str:
    """The feedback URL up to the paper id (reversed once per digest, not per link)."""
    url = reverse("feedback", args=[token, 0, "up"])
    return settings.SITE_URL + url.removesuffix("0/up/")


def digest_html(delivery: Delivery) -> str:
    """The "view in browser" page: the digest's HTML part without its personal links."""
    return render("digest", digest_context(delivery, web=True)).html


def _date_label(day: date) -> str:
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"


def delivery_message_id(delivery: Delivery, *, fresh: bool = False) -> str:
    """The delivery's own Message-ID, derived from its id with the site's secret (the
    public id opens the web copy and must not be readable in mail logs); ``fresh``: a
    random one, for a deliberate second copy."""
    if fresh:
        return make_msgid(idstring="digest", domain=settings.SITE_DOMAIN)
    token = salted_hmac("delivery-message-id", str(delivery.public_id)).hexdigest()[:32]
    return f"<digest.{token}@{settings.SITE_DOMAIN}>"


def digest_message(
    delivery: Delivery, *, papers: dict[int, dict[str, Any]] | None = None
) -> EmailMultiAlternatives:
    """The digest email of a planned delivery. Sets ``delivery.message_id``: every try
    of one delivery carries the same one (a copy sent again after a lost answer or a
    worker's death can be folded by mail systems), unless an admin resent it as new."""
    context = digest_context(delivery, papers=papers)
    rendered = render("digest", context)
    if not delivery.message_id:
        delivery.message_id = delivery_message_id(delivery)
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[delivery.subscriber.email],
        headers=_bulk_headers(context["unsubscribe_url"], delivery.message_id),
    )
    message.attach_alternative(rendered.html, "text/html")
    # Read by anymail backends so tracking webhooks find the delivery; never the address.
    message.metadata = {"delivery": str(delivery.public_id)}  # type: ignore[attr-defined]
    message.tags = ["digest"]  # type: ignore[attr-defined]
    return message


def confirm_message(subscriber: Subscriber) -> EmailMultiAlternatives:
    """The confirmation link; for a known address that signed up again, with the
    preferences that confirming will apply."""
    wanted = subscriber.pending_preferences or {}
    rendered = render(
        "confirm",
        {
            "confirm_url": subscriber.confirm_url(),
            "max_age_days": settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS,
            "email": subscriber.email,
            "preferences": subscriber.preference_lines(wanted) if wanted else [],
        },
    )
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers={"Message-ID": make_msgid(idstring="confirm", domain=settings.SITE_DOMAIN)},
    )
    message.attach_alternative(rendered.html, "text/html")
    message.tags = ["confirm"]  # type: ignore[attr-defined]
    return message


def _personal_message(
    name: str, subscriber: Subscriber, context: dict[str, Any]
) -> EmailMultiAlternatives:
    """A one-off email to one reader (not bulk: no List-Unsubscribe)."""
    rendered = render(name, {"email": subscriber.email, **context})
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers={"Message-ID": make_msgid(idstring=name, domain=settings.SITE_DOMAIN)},
    )
    message.attach_alternative(rendered.html, "text/html")
    message.tags = [name]  # type: ignore[attr-defined]
    return message


def manage_link_message(subscriber: Subscriber, *, signed_out: bool) -> EmailMultiAlternatives:
    """The reader's manage link: asked for on the "email me my link" form, or the new
    one after "sign out my links"."""
    context = {"manage_url": subscriber.manage_url(), "signed_out": signed_out}
    return _personal_message("manage_link", subscriber, context)


SUPPRESSION_REASONS: dict[str, str] = {
    Subscriber.Status.BOUNCED: "messages to this address bounced",
    Subscriber.Status.COMPLAINED: "a digest was reported as spam",
}


def resubscribe_message(subscriber: Subscriber) -> EmailMultiAlternatives:
    """A fresh opt-in for a bounced or complained reader."""
    context = {
        "resubscribe_url": subscriber.resubscribe_url(),
        "max_age_days": settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS,
        "reason": SUPPRESSION_REASONS.get(subscriber.status, "you asked us to"),
    }
    return _personal_message("resubscribe", subscriber, context)
