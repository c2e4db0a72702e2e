"""Test sends: a reader's digest, exactly as the preview shows it, mailed to an admin.

A test send writes nothing: no Delivery, no items (so every paper in it can still be
sent to the reader), no event. Its subject starts with "[Test]", it goes to the admin's
address only, and it has no ``List-Unsubscribe`` headers, so the admin's mail program
offers no one-click unsubscribe that would act for the reader. The links in the body
are the reader's own, as in the real digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.mail import EmailMultiAlternatives

from newsletter.emails import RankedItem, delivery_message_id, digest_message, paper_context
from newsletter.models import Delivery, Subscriber
from newsletter.planning import Preview, digest_preview

SUBJECT_PREFIX = "[Test] "
BULK_HEADERS = ("List-Unsubscribe", "List-Unsubscribe-Post")


@dataclass
class ProofResult:
    preview: Preview
    message: EmailMultiAlternatives | None  # None when nothing matches: nothing sent


def digest_proof_message(
    *, subscriber: Subscriber, digest_date: date, to: str
) -> tuple[Preview, EmailMultiAlternatives | None]:
    """The test copy of the digest dated ``digest_date``, or None when nothing matches
    (the real digest would be skipped)."""
    preview = digest_preview(subscriber=subscriber, digest_date=digest_date)
    if not preview.items:
        return preview, None
    start, end = preview.period
    # Never saved: it only carries what the templates show.
    delivery = Delivery(
        subscriber=subscriber, digest_date=digest_date, period_start=start, period_end=end
    )
    if preview.delivery is not None:
        delivery.public_id = preview.delivery.public_id  # its "view in browser" copy
    delivery.ranked_items = [  # type: ignore[attr-defined]
        RankedItem(paper_id=paper.pk, rank=rank, reason=match.reason)
        for rank, (paper, match) in enumerate(preview.items, start=1)
    ]
    papers = {paper.pk: paper_context(paper) for paper, _ in preview.items}
    # A new Message-ID each time: never the real digest's, which mail systems would fold.
    delivery.message_id = delivery_message_id(delivery, fresh=True)
    message = digest_message(delivery, papers=papers)
    message.subject = SUBJECT_PREFIX + message.subject
    message.to = [to]
    for name in BULK_HEADERS:
        message.extra_headers.pop(name, None)
    message.metadata = {}  # type: ignore[attr-defined]  # no delivery for webhooks to find
    message.tags = ["test"]  # type: ignore[attr-defined]
    return preview, message


def digest_proof_send(*, subscriber: Subscriber, digest_date: date, to: str) -> ProofResult:
    """Mail the test copy to ``to`` (the admin's own address); send errors propagate."""
    preview, message = digest_proof_message(subscriber=subscriber, digest_date=digest_date, to=to)
    if message is not None:
        message.send()
    return ProofResult(preview=preview, message=message)
