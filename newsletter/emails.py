"""Builds every message: Jinja2 render (HTML escaped, text not), CSS inline, headers.

Each email is three templates: ``emails/<name>.subject.txt``, ``.txt`` and ``.html``.
Contexts hold plain values only, so no query runs inside a template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from email.utils import make_msgid
from typing import Any

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template import engines

from newsletter.models import Delivery, Subscriber
from papers.models import Paper

_inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
MAX_AUTHORS = 3


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
        html=_inliner.inline(html_env.get_template(f"emails/{name}.html").render(context)),
    )


def short_summary(paper: Paper, sentences: int = 2) -> str:
    """HF's AI summary, else the abstract's first sentences."""
    if paper.ai_summary:
        return paper.ai_summary
    parts = _SENTENCE_END.split(paper.abstract)
    summary = " ".join(parts[:sentences])
    return summary if len(summary) <= 500 else summary[:499].rsplit(" ", 1)[0] + "…"


def authors_short(authors: list[str]) -> str:
    if len(authors) <= MAX_AUTHORS:
        return ", ".join(authors)
    return ", ".join(authors[:MAX_AUTHORS]) + " et al."


def paper_context(paper: Paper, *, reason: str, rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
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
        "summary": short_summary(paper),
        "reason": reason,
    }


def _bulk_headers(unsubscribe_url: str, message_id: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"{settings.SITE_NAME} digest <digest.{settings.SITE_DOMAIN}>",
        "Message-ID": message_id,
    }


def digest_context(delivery: Delivery) -> dict[str, Any]:
    subscriber = delivery.subscriber
    items = list(delivery.items.select_related("paper").order_by("rank"))
    return {
        "digest_date": delivery.digest_date,
        "date_label": _date_label(delivery.digest_date),
        "frequency": subscriber.frequency,
        "papers": [paper_context(i.paper, reason=i.reason, rank=i.rank) for i in items],
        "unsubscribe_url": subscriber.unsubscribe_url(),
        "postal_address": settings.PAPERBOY_POSTAL_ADDRESS,
        "email": subscriber.email,
    }


def _date_label(day: date) -> str:
    return f"{day:%A}, {day:%B} {day.day}, {day.year}"


def digest_message(delivery: Delivery) -> EmailMultiAlternatives:
    """The digest email of a planned delivery. Sets ``delivery.message_id``."""
    context = digest_context(delivery)
    rendered = render("digest", context)
    delivery.message_id = make_msgid(idstring="digest", domain=settings.SITE_DOMAIN)
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
    rendered = render(
        "confirm",
        {
            "confirm_url": subscriber.confirm_url(),
            "max_age_days": settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS,
            "email": subscriber.email,
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
