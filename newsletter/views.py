from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import date
from uuid import UUID

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from newsletter import abuse, account, archive
from newsletter.abuse import Screening
from newsletter.emails import digest_html
from newsletter.forms import (
    WEEKDAYS,
    LinkRequestForm,
    PreferencesForm,
    ResendConfirmationForm,
    SignupForm,
)
from newsletter.models import Delivery, DeliveryItem, Feedback, Subscriber
from newsletter.subscriptions import (
    confirmation_request,
    feedback_record,
    subscriber_confirm,
    subscriber_signup,
    subscriber_unsubscribe,
)
from newsletter.tokens import BadToken

TOO_MANY_REQUESTS = "Too many requests from your network. Try again in an hour."


def _bad_link(request: HttpRequest, error: BadToken) -> HttpResponse:
    status = 410 if error.expired else 400
    return render(request, "pages/bad_link.html", {"reason": str(error)}, status=status)


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """The front page: what a digest looks like (the latest day's top trending papers)
    and the signup form. Every valid post ends on the same "check your inbox" page,
    whether the address is new, known, suppressed, over its rate or a bot's."""
    if request.method != "POST":
        return _signup_page(request, SignupForm())
    started = time.monotonic()
    form = SignupForm(request.POST)
    screening = abuse.post_screen(request, form, group="signup")
    if screening is Screening.LIMITED:
        form.add_error(None, "Too many signups from your network. Try again in an hour.")
        return _signup_page(request, form, status=429)
    if screening is Screening.INVALID:
        return _signup_page(request, form)
    if screening is Screening.ACCEPTED:
        email, topics = form.cleaned_data["email"], form.cleaned_data["topics"]
        subscriber_signup(email=email, topics=topics, **form.preferences())
    abuse.answer_steady(started)
    return redirect("check_inbox")


def _signup_page(request: HttpRequest, form: SignupForm, status: int = 200) -> HttpResponse:
    sample_date, sample = archive.sample_digest()
    context = {
        "form": form,
        "sample_date": sample_date,
        "sample": sample,
        "max_age_days": settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS,
    }
    return render(request, "pages/signup.html", context, status=status)


@require_safe
def check_inbox(request: HttpRequest) -> HttpResponse:
    """The one answer to every signup, whatever the address."""
    context = {"max_age_days": settings.PAPERBOY_CONFIRM_MAX_AGE_DAYS}
    return render(request, "pages/check_inbox.html", context)


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (mail scanners open every link); POST confirms. An expired
    link's page offers to send a fresh one."""
    try:
        subscriber, _ = Subscriber.objects.from_token(token, purpose="confirm")
    except BadToken as error:
        if error.expired:
            return _confirm_expired(request, token, ResendConfirmationForm())
        return _bad_link(request, error)
    if request.method == "POST":
        subscriber_confirm(subscriber=subscriber)
        context = {
            "subscriber": subscriber,
            "manage_url": subscriber.manage_url(),
            "current": subscriber.preference_lines(),
        }
        return render(request, "pages/confirmed.html", context)
    wanted = subscriber.pending_preferences
    already = subscriber.status == Subscriber.Status.ACTIVE and not wanted
    context = {
        "subscriber": subscriber,
        "already": already,  # a link used before: nothing left to confirm
        "current": subscriber.preference_lines() if already else [],
        "wanted": subscriber.preference_lines(wanted) if wanted else [],
    }
    return render(request, "pages/confirm.html", context)


def _confirm_expired(
    request: HttpRequest, token: str, form: ResendConfirmationForm, status: int = 410
) -> HttpResponse:
    """410 with a button for a fresh link, if the link still names a subscriber (one
    never confirmed is deleted once the link expires: then, sign up again)."""
    try:
        Subscriber.objects.from_token(token, purpose="confirm", expired_ok=True)
    except BadToken:
        resend_url = ""
    else:
        resend_url = reverse("confirm_resend", args=[token])
    context = {"form": form, "resend_url": resend_url}
    return render(request, "pages/confirm_expired.html", context, status=status)


@require_POST
def confirm_resend(request: HttpRequest, token: str) -> HttpResponse:
    """The button on an expired confirmation link's page: a fresh link to the address
    the old one named, then the usual "check your inbox"."""
    try:
        subscriber, _ = Subscriber.objects.from_token(token, purpose="confirm", expired_ok=True)
    except BadToken as error:
        return _bad_link(request, error)
    started = time.monotonic()
    form = ResendConfirmationForm(request.POST)
    screening = abuse.post_screen(request, form, group="confirm-resend", email=subscriber.email)
    if screening is Screening.LIMITED:
        form.add_error(None, TOO_MANY_REQUESTS)
        return _confirm_expired(request, token, form, status=429)
    if screening is Screening.INVALID:
        return _confirm_expired(request, token, form, status=400)
    if screening is Screening.ACCEPTED:
        confirmation_request(subscriber=subscriber)
    abuse.answer_steady(started)
    return redirect("check_inbox")


ARCHIVE_DAYS_PER_PAGE = 30


@require_safe
def archive_index(request: HttpRequest) -> HttpResponse:
    """Every day's trending list, newest first."""
    page = Paginator(archive.archive_days(), ARCHIVE_DAYS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "pages/archive.html", {"page": page})


@require_safe
def archive_day(request: HttpRequest, day: str) -> HttpResponse:
    """One day's trending list, most upvoted first."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise Http404("no such date") from None
    papers = archive.archive_day(day=when)
    if not papers:
        raise Http404("no trending list that day")
    earlier, later = archive.archive_neighbours(day=when)
    context = {"day": when, "papers": papers, "earlier": earlier, "later": later}
    return render(request, "pages/archive_day.html", context)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without its CSRF cookie or token (cookies blocked, a page open for
    days, a forged post): say what to do, still 403."""
    return render(request, "pages/csrf_failure.html", status=403)


@csrf_exempt  # RFC 8058 one-click POSTs arrive with no cookie and no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; POST (from the page, or a mail client's one-click) acts and
    answers 200 with no redirect. The link sits in every email's headers, so its pages
    carry no manage credential: only a way to undo this unsubscribe."""
    try:
        subscriber, _ = Subscriber.objects.from_token(token, purpose="unsubscribe")
    except BadToken as error:
        return _bad_link(request, error)
    context = {"subscriber": subscriber, "token": token}
    if request.method == "POST":
        subscriber_unsubscribe(subscriber=subscriber)
        return render(request, "pages/unsubscribed.html", context)
    return render(request, "pages/unsubscribe.html", context)


@require_POST
def unsubscribe_undo(request: HttpRequest, token: str) -> HttpResponse:
    """ "Changed your mind?" on the unsubscribed page: the same link starts the digests
    again, only for a reader who unsubscribed (never a bounced or complained one)."""
    try:
        subscriber, _ = Subscriber.objects.from_token(token, purpose="unsubscribe")
    except BadToken as error:
        return _bad_link(request, error)
    undone = account.subscriber_unsubscribe_undo(subscriber=subscriber)
    context = {"subscriber": subscriber, "token": token, "undone": undone}
    return render(request, "pages/unsubscribed.html", context)


def manage_link(
    view: Callable[[HttpRequest, str, Subscriber], HttpResponse],
) -> Callable[[HttpRequest, str], HttpResponse]:
    """A view under the manage link: called with the reader its token names; a forged,
    tampered or revoked token gets the bad-link page instead."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, token: str) -> HttpResponse:
        try:
            subscriber, _ = Subscriber.objects.from_token(token, purpose="manage")
        except BadToken as error:
            return _bad_link(request, error)
        return view(request, token, subscriber)

    return wrapper


@never_cache
@require_http_methods(["GET", "POST"])
@manage_link
def manage(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    """Preferences through the magic link in every digest: no password. The account's
    buttons (pause, resume, resubscribe, download, sign out, delete) post to their own
    URLs under this one and come back here."""
    schedule = _schedule(subscriber)  # before the form writes posted values into it
    form = PreferencesForm(request.POST if request.method == "POST" else None, instance=subscriber)
    saved = form.is_bound and form.is_valid()
    if saved:
        form.save()
        schedule = _schedule(subscriber)
    context = {
        "form": form,
        "subscriber": subscriber,
        "token": token,
        "saved": saved,
        "notice": MANAGE_NOTICES.get(request.GET.get("done", "")),
        "unsubscribe_url": subscriber.unsubscribe_url(),
        "suppressed": subscriber.status in Subscriber.SUPPRESSED,
        "schedule": schedule,
    }
    status = 400 if form.is_bound and not saved else 200
    return render(request, "pages/manage.html", context, status=status)


def _schedule(subscriber: Subscriber) -> str:
    day = "Every day"
    if subscriber.frequency == Subscriber.Frequency.WEEKLY:
        day = f"Every {dict(WEEKDAYS).get(subscriber.weekly_day, 'week')}"
    return f"{day} at {subscriber.send_hour:02d}:00 ({subscriber.timezone})"


MANAGE_NOTICES = {
    "paused": "Paused. No digests until you resume them.",
    "resumed": "Resumed. Your digests start again at your next send time.",
    "resubscribed": "Welcome back. Your digests start at your next send time.",
    "resubscribe-link": "A confirmation link is on its way to your inbox. Follow it to "
    "start your digests again.",
    "resubscribe-link-limit": "We already sent you several confirmation links today. "
    "Each works for a week: look for them in your inbox (and spam folder).",
}


VOTES = {"up": Feedback.Vote.UP, "down": Feedback.Vote.DOWN}


@require_http_methods(["GET", "POST"])
def feedback(request: HttpRequest, token: str, paper_id: int, vote: str) -> HttpResponse:
    """Thumbs from a digest. GET shows a button (mail scanners follow links), POST
    records the vote; only papers this reader was sent can be voted on. Link scanners
    open these links: the page carries no manage credential."""
    try:
        subscriber, _ = Subscriber.objects.from_token(token, purpose="feedback")
    except BadToken as error:
        return _bad_link(request, error)
    if vote not in VOTES:
        raise Http404("no such vote")
    if paper_id >= 2**63:  # names no paper, and SQLite cannot even compare it (a 500)
        raise Http404("this paper was not in your digests")
    item = (
        DeliveryItem.objects.select_related("paper")
        .filter(subscriber=subscriber, paper_id=paper_id)
        .first()
    )
    if item is None:
        raise Http404("this paper was not in your digests")
    recorded = None
    other = "down" if vote == "up" else "up"
    if request.method == "POST":
        recorded = feedback_record(subscriber=subscriber, paper=item.paper, vote=VOTES[vote])
    context = {
        "paper": item.paper,
        "vote": vote,
        "recorded": recorded,
        "other_vote": other,
        "other_url": reverse("feedback", args=[token, paper_id, other]),
    }
    return render(request, "pages/feedback.html", context)


def digest_web(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The "view in browser" copy of a digest: the email's HTML without its personal
    links (anyone the email was forwarded to may hold this address). It dies with the
    reader's links ("sign out my links", erasure)."""
    delivery = get_object_or_404(Delivery.objects.select_related("subscriber"), public_id=public_id)
    if not delivery.web_copy_open():
        raise Http404("no such digest")
    response = HttpResponse(digest_html(delivery))
    response["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Cache-Control"] = "private, no-store"
    return response


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


# The account side, all through the manage link ------------------------------------------

RESUBSCRIBE_LINKS_PER_DAY = 3  # fresh opt-in emails to one bounced or complained reader


def _account_action(
    token: str, subscriber: Subscriber, act: Callable[..., bool], done: str
) -> HttpResponse:
    """A button on the manage page: act, then back to the page with a notice if it
    changed anything (and without one if it did not apply, e.g. pausing twice)."""
    url = reverse("manage", args=[token])
    return redirect(f"{url}?done={done}" if act(subscriber=subscriber) else url)


@require_POST
@manage_link
def manage_pause(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    return _account_action(token, subscriber, account.subscriber_pause, "paused")


@require_POST
@manage_link
def manage_resume(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    return _account_action(token, subscriber, account.subscriber_resume, "resumed")


@require_POST
@manage_link
def manage_resubscribe(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    """From the manage page or the unsubscribed page; not for bounced or complained
    readers, who need a fresh opt-in (``manage_resubscribe_link``)."""
    return _account_action(token, subscriber, account.subscriber_resubscribe, "resubscribed")


@require_POST
@manage_link
def manage_resubscribe_link(
    request: HttpRequest, token: str, subscriber: Subscriber
) -> HttpResponse:
    """A bounced or complained reader asks for a fresh opt-in by email: the manage link
    alone does not lift a suppression."""
    url = reverse("manage", args=[token])
    if subscriber.status in Subscriber.SUPPRESSED and not abuse.daily_quota_take(
        kind="resubscribe", email=subscriber.email, per_day=RESUBSCRIBE_LINKS_PER_DAY
    ):
        return redirect(f"{url}?done=resubscribe-link-limit")
    sent = account.resubscribe_link_request(subscriber=subscriber)
    return redirect(f"{url}?done=resubscribe-link" if sent else url)


@never_cache
@require_POST
@manage_link
def manage_sign_out(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    """Revoke every link sent so far and email a new manage link."""
    account.links_sign_out(subscriber=subscriber)
    return render(request, "pages/signed_out.html", {"subscriber": subscriber})


@never_cache
@require_POST
@manage_link
def manage_export(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    """Everything stored about the reader, as a JSON attachment."""
    data = account.subscriber_export(subscriber=subscriber)
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    filename = f"{slugify(settings.SITE_NAME) or 'newsletter'}-data-{timezone.localdate()}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@never_cache
@require_http_methods(["GET", "POST"])
@manage_link
def manage_delete(request: HttpRequest, token: str, subscriber: Subscriber) -> HttpResponse:
    """GET explains what goes and asks; POST erases (and every link dies with it)."""
    if request.method == "POST":
        account.subscriber_erase(subscriber=subscriber)
        return render(request, "pages/deleted.html")
    context = {"subscriber": subscriber, "manage_url": reverse("manage", args=[token])}
    return render(request, "pages/delete.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def resubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The fresh opt-in link emailed to a bounced or complained reader: GET shows a
    button (mail scanners open every link), POST starts the digests again."""
    try:
        subscriber, _ = Subscriber.objects.from_token(token, purpose="resubscribe")
    except BadToken as error:
        return _bad_link(request, error)
    done = request.method == "POST"
    if done:
        account.subscriber_reoptin(subscriber=subscriber)
    context = {"subscriber": subscriber, "done": done, "manage_url": subscriber.manage_url()}
    return render(request, "pages/resubscribe.html", context)


@require_http_methods(["GET", "POST"])
def link_request(request: HttpRequest) -> HttpResponse:
    """ "Email me my link": the same answer whatever the address (and, for a bot or an
    address asked for too often, the same answer with nothing sent)."""
    if request.method != "POST":
        return render(request, "pages/link_request.html", {"form": LinkRequestForm()})
    started = time.monotonic()
    form = LinkRequestForm(request.POST)
    screening = abuse.post_screen(request, form, group="link")
    if screening is Screening.LIMITED:
        form.add_error(None, TOO_MANY_REQUESTS)
        return render(request, "pages/link_request.html", {"form": form}, status=429)
    if screening is Screening.INVALID:
        return render(request, "pages/link_request.html", {"form": form}, status=400)
    if screening is Screening.ACCEPTED:
        account.manage_link_request(email=form.cleaned_data["email"])
    abuse.answer_steady(started)
    return redirect("link_sent")


def link_sent(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/link_sent.html")
