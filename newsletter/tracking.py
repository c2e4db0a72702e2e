"""Provider tracking events (via django-anymail's webhooks) -> EmailEvent rows and
suppression.

Every event is stored once (keyed by provider and event id, so replays are harmless).
Hard bounces, complaints and provider unsubscribes suppress the subscriber at once;
soft bounces are counted and suppress after PAPERBOY_SOFT_BOUNCE_LIMIT of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailError, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent, tracking
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.urls import URLPattern, path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from newsletter.models import Delivery, EmailEvent, Subscriber

log = logging.getLogger(__name__)


def _soft_payload(raw: object) -> bool:
    """Whether a provider's bounce payload marks it as temporary (Postmark SoftBounce,
    Transient or DnsError; Brevo soft_bounce; Amazon SES Transient)."""
    if not isinstance(raw, dict):
        return False
    bounce = raw.get("bounce")
    return (
        raw.get("Type") in ("SoftBounce", "Transient", "DnsError")
        or raw.get("event") == "soft_bounce"
        or (isinstance(bounce, dict) and bounce.get("bounceType") == "Transient")
    )


def is_soft_bounce(event_type: str, payload: object) -> bool:
    return event_type == "deferred" or (event_type == "bounced" and _soft_payload(payload))


def _delivery_of(event: AnymailTrackingEvent) -> Delivery | None:
    public_id = (event.metadata or {}).get("delivery")
    query = Delivery.objects.select_related("subscriber")
    if public_id:
        try:
            found = query.filter(public_id=public_id).first()
        except Exception:  # not a UUID: somebody else's metadata
            found = None
        if found:
            return found
    if event.message_id:
        return query.filter(provider_id=str(event.message_id)[:255]).first()
    return None


def event_record(*, event: AnymailTrackingEvent, esp_name: str) -> EmailEvent | None:
    """Store one tracking event and act on it; None for a replay already stored."""
    delivery = _delivery_of(event)
    recipient = (event.recipient or "").strip().lower()[:254]
    subscriber = (
        delivery.subscriber if delivery else Subscriber.objects.with_email(recipient).first()
    )
    erased = subscriber is not None and subscriber.status == Subscriber.Status.DELETED
    if erased:  # a late event about a reader who deleted their data: keep the count only
        recipient = ""
    try:
        with transaction.atomic():
            stored = EmailEvent.objects.create(
                provider=esp_name[:32],
                event_id=str(event.event_id or "")[:255],
                event_type=str(event.event_type)[:32],
                recipient=recipient,
                delivery=delivery,
                subscriber=subscriber,
                timestamp=event.timestamp or timezone.now(),
                description=""
                if erased
                else str(event.description or event.mta_response or "")[:2000],
                payload=event.esp_event if isinstance(event.esp_event, dict) and not erased else {},
            )
    except IntegrityError:
        return None  # the provider sent it again
    if delivery is not None:
        _settle(delivery, str(event.event_type), stored.description)
    if subscriber is not None:
        _act(subscriber, event, esp_name)
    return stored


# What an event says about a delivery whose send outcome was unknown (timed out after
# the request went out): the provider either has the message or refused it.
ARRIVED = {"queued", "sent", "delivered", "deferred", "opened", "clicked", "complained"}
REFUSED = {"rejected", "failed", "bounced"}


def _settle(delivery: Delivery, event_type: str, description: str) -> None:
    unknown = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.UNKNOWN)
    if event_type in ARRIVED:
        unknown.update(status=Delivery.Status.SENT, sent_at=timezone.now(), error="")
    elif event_type in REFUSED:
        unknown.update(status=Delivery.Status.FAILED, error=f"{event_type}: {description}"[:2000])


def _act(subscriber: Subscriber, event: AnymailTrackingEvent, esp_name: str) -> None:
    event_type = str(event.event_type)
    suppress = {
        "complained": Subscriber.Status.COMPLAINED,
        "unsubscribed": Subscriber.Status.UNSUBSCRIBED,
    }.get(event_type)
    if is_soft_bounce(event_type, event.esp_event):
        earlier = EmailEvent.objects.filter(
            subscriber=subscriber, event_type__in=["bounced", "deferred"]
        ).values_list("event_type", "payload")
        if sum(is_soft_bounce(t, p) for t, p in earlier) >= settings.PAPERBOY_SOFT_BOUNCE_LIMIT:
            suppress = Subscriber.Status.BOUNCED
    elif event_type == "bounced":
        suppress = Subscriber.Status.BOUNCED
    if suppress is None:
        return
    updated = Subscriber.objects.filter(pk=subscriber.pk, status__in=Subscriber.REACHABLE).update(
        status=suppress, updated=timezone.now()
    )
    if updated:
        log.info("subscriber %s suppressed: %s (%s)", subscriber.pk, suppress, esp_name)


@receiver(tracking, dispatch_uid="paperboy-tracking")
def on_tracking(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    event_record(event=event, esp_name=esp_name)


# What each provider's endpoint needs besides the basic-auth secret every endpoint needs
# (ANYMAIL_WEBHOOK_SECRET): the key its signatures are checked with (any one of these
# ANYMAIL settings).
SIGNING_KEYS: dict[str, tuple[str, ...]] = {
    "mailgun": ("MAILGUN_WEBHOOK_SIGNING_KEY", "MAILGUN_API_KEY"),
    "mandrill": ("MANDRILL_WEBHOOK_KEY",),
    "postal": ("POSTAL_WEBHOOK_KEY",),
    "mailersend": ("MAILERSEND_SIGNING_SECRET",),
    "unisender_go": ("UNISENDER_GO_API_KEY",),
}


def _tracking_views() -> dict[str, Callable[..., HttpResponse]]:
    """django-anymail's tracking webhook views by provider (``postmark/tracking/`` ->
    "postmark"). Paperboy receives no inbound mail: the inbound views are left out."""
    views = {}
    for p in anymail_urls.urlpatterns:
        if isinstance(p, URLPattern) and (p.name or "").endswith("_tracking_webhook"):
            route = str(p.pattern).lstrip("^").removesuffix("$")
            views[route.split("/")[0]] = p.callback
    return views


TRACKING_VIEWS = _tracking_views()


def _setting(name: str) -> str:
    return str((settings.ANYMAIL or {}).get(name) or "")


def webhook_secret() -> str:
    return _setting("WEBHOOK_SECRET") or settings.ANYMAIL_WEBHOOK_SECRET or ""


def webhook_problems(provider: str) -> list[str]:
    """What keeps ``provider``'s endpoint from accepting events: the settings missing."""
    problems = []
    if provider not in TRACKING_VIEWS:
        return [f"{provider!r} has no tracking webhook in django-anymail"]
    if not webhook_secret():
        problems.append("ANYMAIL_WEBHOOK_SECRET")
    keys = SIGNING_KEYS.get(provider, ())
    if keys and not any(_setting(key) for key in keys):
        problems.append(f"ANYMAIL_{keys[0]}")
    return problems


def _refused(status: int, reason: str) -> HttpResponse:
    response = HttpResponse(reason, status=status, content_type="text/plain")
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="webhooks"'
    return response


@csrf_exempt
def tracking_webhook(request: HttpRequest, esp: str) -> HttpResponse:
    """``/anymail/<esp>/tracking/``: only the configured provider's endpoint answers
    (PAPERBOY_WEBHOOK_PROVIDER; any other is a 404), and only once its secrets are set
    (403 until then). Bodies over PAPERBOY_WEBHOOK_MAX_BYTES are refused unread (413);
    a wrong password or signature is a 401 or 403, a malformed payload a 400: never a
    500, which makes providers retry the same request for days."""
    provider = settings.PAPERBOY_WEBHOOK_PROVIDER
    view = TRACKING_VIEWS.get(esp)
    if not provider or esp != provider or view is None:
        raise Http404("no such webhook")
    problems = webhook_problems(provider)
    if problems:
        log.error("webhook %s refused: %s not set", esp, ", ".join(problems))
        return _refused(403, "this webhook is not configured")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return HttpResponseBadRequest("bad Content-Length")
    if length > settings.PAPERBOY_WEBHOOK_MAX_BYTES:
        return _refused(413, "request body too large")
    try:
        return view(request)
    except AnymailWebhookValidationFailure as exc:
        log.warning("webhook %s: authentication failed: %s", esp, exc)
        basic = "basic auth" in str(exc).lower()
        return _refused(401 if basic else 403, "authentication failed")
    except ImproperlyConfigured as exc:
        log.error("webhook %s misconfigured: %s", esp, exc)
        return _refused(403, "this webhook is not configured")
    except (AnymailError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        log.warning("malformed webhook payload on %s: %r", request.path, exc)
        return HttpResponseBadRequest("malformed webhook payload")


def webhook_urlpatterns() -> list[URLPattern]:
    """The tracking webhook URL, ``/anymail/<esp>/tracking/``: one route, and only the
    configured provider's view behind it (see ``tracking_webhook``)."""
    return [path("<str:esp>/tracking/", tracking_webhook, name="tracking_webhook")]
