"""The SMTP backend's direct wire form says exactly what Django's MIME classes say, and
leaves every case it does not cover to them."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from django.core.mail import BadHeaderError, EmailMultiAlternatives

from newsletter.emails import digest_message
from newsletter.models import Subscriber
from newsletter.smtp import wire_bytes
from papers.models import Paper
from tests.newsletter.test_digest_email import planned_delivery

IGNORED = {"date", "content-type"}  # the time and the random boundary differ


def parsed(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def django_bytes(message: EmailMultiAlternatives) -> bytes:
    return message.message().as_bytes(linesep="\r\n")  # type: ignore[call-arg]


def headers(message: EmailMessage) -> list[tuple[str, str]]:
    """Unfolded (Django folds long headers, the wire form need not)."""
    return [(k, " ".join(str(v).split())) for k, v in message.items() if k.lower() not in IGNORED]


def assert_same(ours: bytes, django: bytes) -> None:
    a, b = parsed(ours), parsed(django)
    assert headers(a) == headers(b)
    assert a.get_content_type() == b.get_content_type() == "multipart/alternative"
    a_parts, b_parts = list(a.iter_parts()), list(b.iter_parts())
    assert [p.get_content_type() for p in a_parts] == [p.get_content_type() for p in b_parts]
    for x, y in zip(a_parts, b_parts, strict=True):
        assert x.items() == y.items()
        assert x.get_content() == y.get_content()
    assert b"\r\n.\r\n" not in ours  # no bare end-of-data line inside


def simple(subject: str = "3 papers for you", body: str = "Hello\n", html: str = "<p>Hi</p>"):
    message = EmailMultiAlternatives(
        subject,
        body,
        "Paperboy <digest@example.org>",
        ["reader@example.org"],
        headers={"Message-ID": "<1@example.org>", "List-Id": "<digest.example.org>"},
    )
    message.attach_alternative(html, "text/html")
    return message


@pytest.mark.django_db
def test_a_real_digest_goes_out_as_django_would_write_it(
    sample_week: list[Paper], alice: Subscriber
) -> None:
    message = digest_message(planned_delivery(alice))
    ours = wire_bytes(message)
    assert ours is not None
    assert_same(ours, django_bytes(message))


def test_non_ascii_bodies_are_8bit_and_read_back_the_same() -> None:
    message = simple(body="Café, naïve — ünïcödé 🎉\r\nline two\rline three\n", html="<p>é</p>")
    ours = wire_bytes(message)
    assert ours is not None and b"Content-Transfer-Encoding: 8bit" in ours
    assert_same(ours, django_bytes(message))


@pytest.mark.parametrize(
    "change",
    [
        lambda m: setattr(m, "subject", "Café"),  # needs RFC 2047 encoding
        lambda m: setattr(m, "body", "x" * 1200),  # needs quoted-printable
        lambda m: setattr(m, "cc", ["other@example.org"]),
        lambda m: m.attach("a.txt", "data", "text/plain"),
        lambda m: m.attach_alternative("<p>second</p>", "text/html"),
        lambda m: m.extra_headers.update({"X-Note": "a\r\nBcc: victim@example.org"}),
    ],
)
def test_anything_else_is_left_to_django(change: object) -> None:
    message = simple()
    change(message)  # type: ignore[operator]
    assert wire_bytes(message) is None


def test_a_non_ascii_display_name_is_encoded_as_django_does() -> None:
    message = simple()
    message.to = ["Zoë <zoe@example.org>"]
    ours = wire_bytes(message)
    assert ours is not None and b"To: =?utf-8?q?Zo=C3=AB?= <zoe@example.org>" in ours
    assert_same(ours, django_bytes(message))


def test_header_injection_is_still_refused_by_django() -> None:
    message = simple(subject="Hi\r\nBcc: victim@example.org")
    assert wire_bytes(message) is None
    with pytest.raises(BadHeaderError):
        message.message()
