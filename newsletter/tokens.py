"""Signed links. Each purpose has its own salt, so a token for one never works for another.

Confirm and resubscribe links (opt-ins) expire after PAPERBOY_CONFIRM_MAX_AGE_DAYS;
unsubscribe, manage and feedback links do not. Every link carries the subscriber's
token version: bumping it ("sign out my links", deleting the account) revokes every
link sent so far.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.core import signing

if TYPE_CHECKING:
    from newsletter.models import Subscriber

PURPOSES = ("confirm", "unsubscribe", "manage", "feedback", "resubscribe")
EXPIRING = ("confirm", "resubscribe")


class BadToken(Exception):
    """Forged, tampered, expired, revoked or meant for another purpose."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


def _salt(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return f"paperboy.{purpose}"


def make_token(subscriber: Subscriber, *, purpose: str, extra: str = "") -> str:
    payload: list[int | str] = [subscriber.pk, subscriber.token_version]
    if extra:
        payload.append(extra)
    return signing.dumps(payload, salt=_salt(purpose), compress=True)


def _max_age(purpose: str) -> timedelta | None:
    if purpose in EXPIRING:
        return timedelta(days=settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS)
    return None


def read_token(token: str, *, purpose: str) -> tuple[Subscriber, str]:
    """The subscriber a token names and its extra part, or BadToken."""
    try:
        payload = signing.loads(token, salt=_salt(purpose), max_age=_max_age(purpose))
    except signing.SignatureExpired:
        raise BadToken("this link has expired", expired=True) from None
    except signing.BadSignature:
        raise BadToken("this link is not valid") from None
    return _named(payload)


def read_expired_token(token: str, *, purpose: str) -> tuple[Subscriber, str]:
    """Like read_token, but an expired link still names its subscriber: the page of an
    expired confirmation link offers to send a fresh one. The signature is checked all
    the same, and a revoked link stays revoked."""
    try:
        payload = signing.loads(token, salt=_salt(purpose))
    except signing.BadSignature:
        raise BadToken("this link is not valid") from None
    return _named(payload)


def _named(payload: object) -> tuple[Subscriber, str]:
    from newsletter.models import Subscriber

    if not (
        isinstance(payload, list)
        and 2 <= len(payload) <= 3
        and all(isinstance(part, int) for part in payload[:2])
    ):
        raise BadToken("this link is not valid")
    subscriber = Subscriber.objects.filter(pk=payload[0]).first()
    if subscriber is None or subscriber.token_version != payload[1]:
        raise BadToken("this link is no longer valid")
    extra = payload[2] if len(payload) == 3 else ""
    return subscriber, str(extra)
