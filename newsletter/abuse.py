"""Defences of the public forms against bots and abuse.

Every form that anyone can post (signup, a fresh confirmation link, "email me my link")
uses the same pieces:

1. ``GuardedForm``: mix it into the form. It adds a honeypot field (``website``) and a
   signed timestamp (``stamp``) of when the form was shown. A missing or forged stamp
   is a form error; after ``is_valid()``, ``form.looks_automated()`` is true when the
   honeypot was filled in or the form came back faster than
   ``PAPERBOY_MIN_SUBMIT_SECONDS``.
2. ``ip_rate_limited(request, group=...)`` before validating: over
   ``PAPERBOY_FORM_RATE_PER_IP`` the view answers 429 with the form and a message.
3. ``submission_ignored(request, form, group=..., email=...)`` once the form is valid:
   a bot, or an address over ``PAPERBOY_FORM_RATE_PER_ADDRESS``. The view then gives
   its usual answer and does nothing else, so nobody learns anything about an address.
4. ``daily_quota_take(kind=..., email=..., per_day=...)`` right before an email goes
   out: at most ``per_day`` emails of one kind to one address per (UTC) day.

Counters live in the cache (Redis in production), keyed by a hash of the address.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.http import HttpRequest
from django.utils import timezone
from django_ratelimit.core import is_ratelimited
from email_validator import EmailNotValidError, validate_email

STAMP_SALT = "paperboy.form-stamp"
# A stamp older than this is refused: a form left open for a day is shown again.
STAMP_MAX_AGE = 24 * 3600
STALE_FORM = "This form was open too long or came back damaged. Please send it again."


class BadStamp(Exception):
    """A form stamp that is missing, forged or too old."""


def stamp_issue(*, issued_at: float | None = None) -> str:
    """A signed record of when a form was shown (now, unless told)."""
    return signing.dumps(round(time.time() if issued_at is None else issued_at, 3), salt=STAMP_SALT)


def stamp_age(stamp: str, *, now: float | None = None) -> float:
    """Seconds since the form carrying ``stamp`` was shown, or BadStamp."""
    try:
        issued = signing.loads(stamp, salt=STAMP_SALT)
    except signing.BadSignature:
        raise BadStamp("forged or damaged") from None
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        raise BadStamp("not a time")
    age = (time.time() if now is None else now) - issued
    if age > STAMP_MAX_AGE:
        raise BadStamp("too old")
    return age


class StampInput(forms.HiddenInput):
    """Shown again after an error, a form keeps its good stamp (the reader has been at
    it since then); anything else gets a fresh one."""

    def format_value(self, value: Any) -> str:
        if isinstance(value, str) and value:
            try:
                stamp_age(value)
            except BadStamp:
                pass
            else:
                return value
        return stamp_issue()


def email_normalise(value: str) -> str:
    """The address as stored: checked by email-validator, stripped, lower-case."""
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise forms.ValidationError(str(exc), code="invalid") from None
    return result.normalized.lower()


class AddressField(forms.EmailField):
    """An email address field whose cleaned value is normalised by email_normalise."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault("label", "Email address")
        kwargs.setdefault(
            "widget",
            forms.EmailInput(attrs={"autocomplete": "email", "placeholder": "you@example.org"}),
        )
        super().__init__(**kwargs)

    def clean(self, value: Any) -> str:
        cleaned = super().clean(value)
        return email_normalise(cleaned) if cleaned else cleaned


class GuardedForm(forms.Form):
    """Mix into any public form: a honeypot and a signed "shown at" stamp.

    Render ``{{ form.stamp }}`` and the honeypot (``{% include
    "pages/_guard_fields.html" %}`` does both) inside the form.
    """

    # Honeypot: hidden from people (and from screen readers), naive bots fill it in.
    website = forms.CharField(required=False, label="Leave this empty", max_length=200)
    stamp = forms.CharField(required=False, widget=StampInput)

    def clean_stamp(self) -> float:
        try:
            return stamp_age(self.cleaned_data.get("stamp") or "")
        except BadStamp:
            raise forms.ValidationError(STALE_FORM, code="stale_form") from None

    def clean(self) -> dict[str, Any]:
        super().clean()
        # The stamp is hidden: show its error at the top of the form.
        if self.errors.pop("stamp", None):
            self.add_error(None, forms.ValidationError(STALE_FORM, code="stale_form"))
        return self.cleaned_data

    def looks_automated(self) -> bool:
        """After is_valid(): the honeypot was filled in, or the form came back too fast
        for a person."""
        if self.cleaned_data.get("website"):
            return True
        return float(self.cleaned_data["stamp"]) < settings.PAPERBOY_MIN_SUBMIT_SECONDS


def client_ip(request: HttpRequest) -> str:
    """The client's address behind the TLS-terminating proxy: the last hop of
    X-Forwarded-For (the one our proxy appended; earlier ones are the client's word)."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-1] if hops else str(request.META.get("REMOTE_ADDR", ""))


def address_key(email: str) -> str:
    """What the counters are keyed by: never the address itself."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


def ip_rate_limited(request: HttpRequest, *, group: str) -> bool:
    """Count this POST against the client's IP; True once over PAPERBOY_FORM_RATE_PER_IP."""
    return is_ratelimited(
        request,
        group=f"paperboy.{group}.ip",
        key="ip",
        rate=settings.PAPERBOY_FORM_RATE_PER_IP,
        method="POST",
        increment=True,
    )


def address_rate_limited(request: HttpRequest, *, group: str, email: str) -> bool:
    """Count this POST against the address; True once over PAPERBOY_FORM_RATE_PER_ADDRESS."""
    key = address_key(email)
    return is_ratelimited(
        request,
        group=f"paperboy.{group}.address",
        key=lambda _group, _request: key,
        rate=settings.PAPERBOY_FORM_RATE_PER_ADDRESS,
        method="POST",
        increment=True,
    )


def submission_ignored(request: HttpRequest, form: GuardedForm, *, group: str, email: str) -> bool:
    """After form.is_valid(): True when the view must answer as usual and do nothing,
    because a bot sent the form or the address is over its rate."""
    if form.looks_automated():
        return True
    return address_rate_limited(request, group=group, email=email)


def daily_quota_take(*, kind: str, email: str, per_day: int) -> bool:
    """Count one email of ``kind`` to ``email`` today (UTC); False when today's quota was
    already used up, and the email must not go out."""
    key = f"paperboy.quota.{kind}.{timezone.now():%Y-%m-%d}.{address_key(email)}"
    cache.add(key, 0, timeout=2 * 24 * 3600)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=2 * 24 * 3600)
        count = 1
    return count <= per_day


def confirmation_quota_take(*, email: str) -> bool:
    """At most PAPERBOY_CONFIRMATIONS_PER_DAY confirmation emails to one address a day."""
    return daily_quota_take(
        kind="confirm", email=email, per_day=settings.PAPERBOY_CONFIRMATIONS_PER_DAY
    )
