"""Signed links: sign and check only (the subscriber a token names is looked up by
``Subscriber.objects.from_token``). Each purpose has its own salt, so a token for one
never works for another.

Confirm and resubscribe links (opt-ins) expire after PAPERBOY_CONFIRM_MAX_AGE_DAYS;
unsubscribe, manage and feedback links do not. Every link carries the subscriber's
token version: bumping it ("sign out my links", deleting the account) revokes every
link sent so far.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple, Protocol

from django.conf import settings
from django.core import signing

PURPOSES = ("confirm", "unsubscribe", "manage", "feedback", "resubscribe")
EXPIRING = ("confirm", "resubscribe")


class BadToken(Exception):
    """Forged, tampered, expired, revoked or meant for another purpose."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired


class Holder(Protocol):
    """What a token is made for: a subscriber's id and token version."""

    pk: int
    token_version: int


class Claim(NamedTuple):
    """What a good signature says: whose link it is, at which version, and its extra."""

    pk: int
    version: int
    extra: str


def _salt(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    return f"paperboy.{purpose}"


def make_token(holder: Holder, *, purpose: str, extra: str = "") -> str:
    payload: list[int | str] = [holder.pk, holder.token_version]
    if extra:
        payload.append(extra)
    return signing.dumps(payload, salt=_salt(purpose), compress=True)


def _max_age(purpose: str) -> timedelta | None:
    if purpose in EXPIRING:
        return timedelta(days=settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS)
    return None


def check_token(token: str, *, purpose: str, expired_ok: bool = False) -> Claim:
    """The claim a token signs, or BadToken. With ``expired_ok`` an expired link still
    names its subscriber (the page of an expired confirmation link offers a fresh one):
    the signature is checked all the same."""
    try:
        max_age = None if expired_ok else _max_age(purpose)
        payload = signing.loads(token, salt=_salt(purpose), max_age=max_age)
    except signing.SignatureExpired:
        raise BadToken("this link has expired", expired=True) from None
    except signing.BadSignature:
        raise BadToken("this link is not valid") from None
    if not (
        isinstance(payload, list)
        and 2 <= len(payload) <= 3
        and all(isinstance(part, int) and not isinstance(part, bool) for part in payload[:2])
    ):
        raise BadToken("this link is not valid")
    return Claim(payload[0], payload[1], str(payload[2]) if len(payload) == 3 else "")
