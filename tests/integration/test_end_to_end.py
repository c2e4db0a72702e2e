"""A new reader's whole path on real parts: sign up on the live site, the confirmation
and the digest go through a Celery worker process and Redis into a real SMTP server,
and the links in them work against the live server."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from email.message import EmailMessage
from typing import Any

import httpx
import pytest

from newsletter.models import Delivery, Subscriber
from papers.models import Paper
from tests.conftest import ROOT, Inbox
from tests.integration.conftest import worker_env

pytestmark = pytest.mark.integration
THURSDAY = date(2026, 1, 8)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def hidden(page: httpx.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def csrf(page: httpx.Response) -> str:
    return hidden(page, "csrfmiddlewaretoken")


def test_sign_up_confirm_receive_a_digest_and_unsubscribe(
    live_server: object,
    smtp_server: tuple[Inbox, int],
    start_worker: Callable[..., subprocess.Popen[bytes]],
    sample_week: list[Paper],
    settings: Any,
) -> None:
    settings.PAPERBOY_MIN_SUBMIT_SECONDS = 0  # this reader fills the form in at once
    inbox, port = smtp_server
    site = str(live_server).rstrip("/")
    env = {"EMAIL_PROVIDER": "smtp", "EMAIL_URL": f"smtp://127.0.0.1:{port}", "SITE_URL": site}
    start_worker(**env)
    web = httpx.Client(base_url=site, follow_redirects=False, timeout=30)

    # 1. Sign up on the live site.
    page = web.get("/")
    response = web.post(
        "/",
        data={
            "email": "Reader@Example.org",
            "csrfmiddlewaretoken": csrf(page),
            "stamp": hidden(page, "stamp"),
            "topics": ["23", "3"],
        },
    )
    assert response.status_code == 302 and response.headers["location"] == "/check-your-inbox/"

    # 2. The confirmation email arrives through the worker; its link shows a button.
    confirmation = inbox.wait_for(1)[0]
    assert confirmation["To"] == "reader@example.org"
    text, _ = parts(confirmation)
    link = re.search(re.escape(site) + r"/confirm/\S+/", text)
    assert link
    page = web.get(link.group(0))
    assert page.status_code == 200 and "Yes, confirm my subscription" in page.text
    assert web.post(link.group(0), data={"csrfmiddlewaretoken": csrf(page)}).status_code == 200
    reader = Subscriber.objects.get(email="reader@example.org")
    assert reader.status == Subscriber.Status.ACTIVE

    # 3. The operator sends Thursday's digests; the worker delivers them over SMTP.
    command = [sys.executable, "manage.py", "send_digests", "--date", THURSDAY.isoformat()]
    result = subprocess.run(
        command, cwd=ROOT, env=worker_env(env), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    digest = inbox.wait_for(2)[1]
    # The worker records the send just after the server accepted the message.
    deadline = time.monotonic() + 30
    while Delivery.objects.filter(subscriber=reader, status=Delivery.Status.SENT).count() == 0:
        assert time.monotonic() < deadline, "the sent digest was never recorded"
        time.sleep(0.05)
    delivery = Delivery.objects.get(subscriber=reader)
    items = list(delivery.items.select_related("paper"))
    assert items
    assert digest["To"] == "reader@example.org"
    assert digest["Subject"].strip().startswith(f"{len(items)} paper")
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert digest["Message-ID"] == delivery.message_id
    text, html = parts(digest)
    for item in items:
        assert item.paper.hf_url in text and f'href="{item.paper.hf_url}"' in html
        assert item.reason in text
    unsubscribe = digest["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe.startswith(site + "/unsubscribe/")
    assert unsubscribe in text

    # 4. Sending again sends nothing twice.
    subprocess.run(
        command, cwd=ROOT, env=worker_env(env), check=True, capture_output=True, timeout=120
    )

    # 5. One-click unsubscribe from the header: no cookie, no CSRF token, 200, no redirect.
    one_click = httpx.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}, timeout=30)
    assert one_click.status_code == 200
    reader.refresh_from_db()
    assert reader.status == Subscriber.Status.UNSUBSCRIBED
    assert len(inbox.messages) == 2
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT
