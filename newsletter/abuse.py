"""Defences of the public forms against bots and abuse.

Every form that anyone can post (signup, a fresh confirmation link, "email me my link")
uses the same pieces:

1. ``GuardedForm``: mix it into the form. It adds a honeypot field (``website``) and a
   signed timestamp (``stamp``) of when the form was shown. A missing or forged stamp
   is a form error; after ``is_valid()``, ``form.looks_automated()`` is true when the
   honeypot was filled in, and ``form.too_fast()`` when the form came back faster than
   ``PAPERBOY_MIN_SUBMIT_SECONDS`` (it is shown again with a message: people who use
   autofill are that fast too).
2. ``post_screen(request, form, group=...)`` validates the post and counts it against
   the client's network and its address, and says what the view does: LIMITED (over
   ``PAPERBOY_FORM_RATE_PER_IP``: 429 with the form and a message), INVALID (the form
   with its errors), IGNORED (a bot, or an address over
   ``PAPERBOY_FORM_RATE_PER_ADDRESS``: the view gives its usual answer and does nothing
   else, so nobody learns anything about an address) or ACCEPTED.
3. ``daily_quota_take(kind=..., email=..., per_day=...)`` right before an email goes
   out: at most ``per_day`` emails of one kind to one address per (UTC) day.

Counters live in the cache (Redis in production, one round trip per post), keyed by the
client's network and a hash of the address.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import ipaddress
import time
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache, caches
from django.http import HttpRequest
from django.utils import timezone

from config.cache import RedisCache
from newsletter.addresses import BadAddress, address_clean

STAMP_SALT = "paperboy.form-stamp"
# A stamp older than this is refused: a form left open for a day is shown again.
STAMP_MAX_AGE = 24 * 3600
STALE_FORM = "This form was open too long or came back damaged. Please send it again."
TOO_FAST = "That was quick: nothing has been sent yet. Check the form, then press the button again."
SENT_ALREADY = (
    "This form was already sent once (a second tab, or the back button?). If you meant "
    "to send it again, press the button once more."
)


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


def _stamp_key(stamp: str) -> str:
    return f"paperboy.stamp.{hashlib.sha256(stamp.encode()).hexdigest()[:32]}"


def stamp_spend(stamp: str) -> bool:
    """Use a form's stamp up: one accepted post per form shown. False when it was
    already used (a replayed post, the same form sent twice)."""
    return bool(cache.add(_stamp_key(stamp), 1, timeout=STAMP_MAX_AGE))


def stamp_spent(stamp: str) -> bool:
    return cache.get(_stamp_key(stamp)) is not None


class StampInput(forms.HiddenInput):
    """Shown again after an error, a form keeps its good stamp (the reader has been at
    it since then); anything else, a used stamp included, gets a fresh one."""

    def format_value(self, value: Any) -> str:
        if isinstance(value, str) and value and not stamp_spent(value):
            try:
                stamp_age(value)
            except BadStamp:
                pass
            else:
                return value
        return stamp_issue()


def email_normalise(value: str) -> str:
    """The address as stored (``address_clean``), or the reason as a form error."""
    try:
        return address_clean(value)
    except BadAddress as exc:
        raise forms.ValidationError(str(exc), code="invalid") from None


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
        """After is_valid(): the honeypot was filled in (no person sees it)."""
        return bool(self.cleaned_data.get("website"))

    def too_fast(self) -> bool:
        """After is_valid(): the form came back sooner than a person usually sends it
        (autofill, a fast typist, or a bot): it is shown again, with a message."""
        return float(self.cleaned_data["stamp"]) < settings.PAPERBOY_MIN_SUBMIT_SECONDS


@functools.cache
def _trusted(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def is_trusted_proxy(ip: str) -> bool:
    """Whether ``ip`` is one of PAPERBOY_TRUSTED_PROXIES (addresses or networks)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in _trusted(tuple(settings.PAPERBOY_TRUSTED_PROXIES)))


def client_ip(request: HttpRequest) -> str:
    """The client's address. Behind the TLS-terminating proxy (PAPERBOY_BEHIND_PROXY),
    and only for a connection from a trusted proxy (PAPERBOY_TRUSTED_PROXIES), the
    nearest X-Forwarded-For hop that is not itself a trusted proxy: the address our
    proxy saw (hops further left are the client's word). Otherwise REMOTE_ADDR: from
    anyone else the header is anyone's."""
    remote = str(request.META.get("REMOTE_ADDR", ""))
    if not (settings.PAPERBOY_BEHIND_PROXY and is_trusted_proxy(remote)):
        return remote
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for hop in reversed([hop.strip() for hop in forwarded.split(",") if hop.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # not what a proxy of ours writes
        if not is_trusted_proxy(hop):
            return hop
    return remote


def address_key(email: str) -> str:
    """What the counters are keyed by: never the address itself."""
    return hashlib.sha256(email.encode()).hexdigest()[:32]


class Screening(enum.Enum):
    """What a view does with a public form's post (``post_screen``)."""

    LIMITED = "limited"  # over the client network's rate: answer 429 with the form
    INVALID = "invalid"  # show the form with its errors
    IGNORED = "ignored"  # a bot, or an address over its rate: the usual answer, nothing done
    ACCEPTED = "accepted"


def post_screen(
    request: HttpRequest, form: GuardedForm, *, group: str, email: str | None = None
) -> Screening:
    """Validate a public form's POST and count it against the rate limits: every post
    against the client's network (PAPERBOY_FORM_RATE_PER_IP, and for IPv6
    PAPERBOY_FORM_RATE_PER_NETWORK per /48), a valid one sent by a person against its
    address (``email``, else the form's; at most PAPERBOY_FORM_RATE_PER_ADDRESS). The
    counters move in one trip to the cache. An accepted post uses its form's stamp up:
    the same form sent again is shown again, with a message and a fresh stamp."""
    valid = form.is_valid()
    automated = valid and form.looks_automated()
    address = (email or form.cleaned_data.get("email")) if valid and not automated else None
    network_over, address_over = limits_take(request, group=group, email=address)
    if network_over:
        return Screening.LIMITED
    if not valid:
        return Screening.INVALID
    if automated or address_over:
        return Screening.IGNORED
    if form.too_fast():  # the same stamp stays: pressing again a moment later works
        form.add_error(None, forms.ValidationError(TOO_FAST, code="too_fast"))
        return Screening.INVALID
    if not stamp_spend(str(form.data.get("stamp", ""))):
        form.add_error(None, forms.ValidationError(SENT_ALREADY, code="sent_already"))
        return Screening.INVALID
    return Screening.ACCEPTED


def answer_steady(started: float) -> None:
    """Hold the answer to a screened post until PAPERBOY_FORM_ANSWER_SECONDS after
    ``started`` (time.monotonic() when it arrived): a known address, an unknown one, a
    bot's or one over its rate all take the same time, as they get the same page."""
    remaining = settings.PAPERBOY_FORM_ANSWER_SECONDS - (time.monotonic() - started)
    if remaining > 0:
        time.sleep(remaining)


RATE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def rate_parse(rate: str) -> tuple[int, int]:
    """ "20/h" or "10/15m": (hits allowed, window in seconds)."""
    count, _, period = rate.partition("/")
    return int(count), int(period[:-1] or 1) * RATE_UNITS[period[-1]]


def network(ip: str, prefix: int = 64) -> str:
    """What a client is counted by: its IPv4 address, or its IPv6 network of ``prefix``
    bits (one household or server holds a whole /64; one site, a /48)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:  # an IPv4 client seen through an IPv6 socket
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
    return ip


def limits_take(request: HttpRequest, *, group: str, email: str | None) -> tuple[bool, bool]:
    """Count one post against the client's network (its IPv4 address or IPv6 /64, and
    for IPv6 also its /48) and, if given and the network is not over its rate, the
    address, in fixed windows; whether each is over its rate. A client over its own
    limit cannot use up other people's addresses."""
    ip = client_ip(request)
    counters = [(f"{group}.ip.{network(ip)}", settings.PAPERBOY_FORM_RATE_PER_IP)]
    site = network(ip, prefix=48)
    if site != network(ip):
        counters.append((f"{group}.site.{site}", settings.PAPERBOY_FORM_RATE_PER_NETWORK))
    networks = len(counters)
    if email:
        counters.append(
            (f"{group}.address.{address_key(email)}", settings.PAPERBOY_FORM_RATE_PER_ADDRESS)
        )
    over = counters_take(counters)
    return any(over[:networks]), email is not None and over[-1]


def counters_take(counters: list[tuple[str, str]]) -> list[bool]:
    """One hit on each (key, rate) counter in its current window, in order, until one
    is over its rate (the later ones are then left alone); for each, whether it is over
    its rate (a counter left alone is not). On Redis, one round trip for them all."""
    now = time.time()
    windows = []
    for key, rate in counters:
        limit, seconds = rate_parse(rate)
        windows.append((f"paperboy.limit.{key}.{int(now // seconds)}", seconds, limit))
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        counts = backend.incr_until_over(windows)
    else:
        counts = []
        for key, seconds, limit in windows:
            counts.append(_incr(key, seconds))
            if counts[-1] > limit:
                break
        counts += [0] * (len(windows) - len(counts))
    return [count > limit for count, (_, _, limit) in zip(counts, windows, strict=True)]


def _incr(key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=timeout)
        return 1


def daily_quota_take(*, kind: str, email: str, per_day: int) -> bool:
    """Count one email of ``kind`` to ``email`` today (UTC); False when today's quota was
    already used up, and the email must not go out."""
    key = f"paperboy.quota.{kind}.{timezone.now():%Y-%m-%d}.{address_key(email)}"
    return _incr(key, 2 * 24 * 3600) <= per_day


def daily_quota_return(*, kind: str, email: str) -> None:
    """Give back one email of ``kind`` counted today that did not go out after all."""
    key = f"paperboy.quota.{kind}.{timezone.now():%Y-%m-%d}.{address_key(email)}"
    with contextlib.suppress(ValueError):  # the day's counter is gone (a new day)
        cache.decr(key)


def confirmation_quota_take(*, email: str) -> bool:
    """At most PAPERBOY_CONFIRMATIONS_PER_DAY confirmation emails to one address a day."""
    return daily_quota_take(
        kind="confirm", email=email, per_day=settings.PAPERBOY_CONFIRMATIONS_PER_DAY
    )
