from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import is_ratelimited

from newsletter.forms import SignupForm
from newsletter.models import Topic
from newsletter.subscriptions import subscriber_confirm, subscriber_signup, subscriber_unsubscribe
from newsletter.tokens import BadToken, read_token

SIGNUP_RATE = "20/h"


def _bad_link(request: HttpRequest, error: BadToken) -> HttpResponse:
    status = 410 if error.expired else 400
    return render(request, "pages/bad_link.html", {"reason": str(error)}, status=status)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        limited = is_ratelimited(
            request, group="signup", key="ip", rate=SIGNUP_RATE, method="POST", increment=True
        )
        if limited:
            form.add_error(None, "Too many signups from your network. Try again in an hour.")
            return render(request, "pages/signup.html", _signup_context(form), status=429)
        if form.is_valid():
            if not form.cleaned_data["website"]:
                subscriber_signup(
                    email=form.cleaned_data["email"], topics=form.cleaned_data["topics"]
                )
            return redirect("check_inbox")
    return render(request, "pages/signup.html", _signup_context(form))


def _signup_context(form: SignupForm) -> dict[str, object]:
    return {"form": form, "topic_count": Topic.objects.count()}


def check_inbox(request: HttpRequest) -> HttpResponse:
    return render(request, "pages/check_inbox.html")


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button (mail scanners open every link); POST confirms."""
    try:
        subscriber, _ = read_token(token, purpose="confirm")
    except BadToken as error:
        return _bad_link(request, error)
    if request.method == "POST":
        subscriber_confirm(subscriber=subscriber)
        return render(request, "pages/confirmed.html", {"subscriber": subscriber})
    return render(request, "pages/confirm.html", {"subscriber": subscriber})


@csrf_exempt  # RFC 8058 one-click POSTs arrive with no cookie and no CSRF token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button; POST (from the page, or a mail client's one-click) acts and
    answers 200 with no redirect."""
    try:
        subscriber, _ = read_token(token, purpose="unsubscribe")
    except BadToken as error:
        return _bad_link(request, error)
    if request.method == "POST":
        subscriber_unsubscribe(subscriber=subscriber)
        return render(request, "pages/unsubscribed.html", {"subscriber": subscriber})
    return render(request, "pages/unsubscribe.html", {"subscriber": subscriber})


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")
