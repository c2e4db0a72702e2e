"""Django's SMTP backend, told apart when a message's fate is unknown.

If the connection drops or times out after the whole message went out (the final
``.`` of DATA was sent) but before the server's reply, the server may well have
queued it: retrying could mail the reader twice, giving up could lose the digest.
That case raises :class:`OutcomeUnknown` so the sender can mark the delivery and
let a webhook or an admin settle it. Everything else behaves like Django's backend.
"""

from __future__ import annotations

import random
import re
import smtplib
from email.utils import formatdate, make_msgid
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.backends import smtp
from django.core.mail.message import sanitize_address
from django.core.mail.utils import DNS_NAME


class OutcomeUnknown(Exception):
    """The request went out and no answer came back: it may or may not be delivered."""


class _Tracking:
    body_sent = False
    _in_data = False

    def data(self, msg: Any) -> tuple[int, bytes]:
        self._in_data = True
        try:
            return super().data(msg)  # type: ignore[misc]
        finally:
            self._in_data = False

    def send(self, s: Any) -> None:
        super().send(s)  # type: ignore[misc]
        if self._in_data and isinstance(s, bytes):  # the body; commands are str
            self.body_sent = True


class TrackingSMTP(_Tracking, smtplib.SMTP):
    pass


class TrackingSMTPSSL(_Tracking, smtplib.SMTP_SSL):
    pass


LOST_IN_FLIGHT = (smtplib.SMTPServerDisconnected, TimeoutError, ConnectionError)


_NEWLINE = re.compile(r"\r\n|\r|\n")
_OWN_HEADERS = frozenset({"from", "to", "cc", "reply-to", "date", "subject"})
MAX_LINE = 998  # RFC 5322: longer lines need quoted-printable, left to Django


@lru_cache(maxsize=1024)
def _address(address: str) -> str:
    """Django's sanitize_address, once per address: the sender is the same on every
    message and each reader's address is needed twice (the To header and RCPT TO)."""
    return sanitize_address(address, "utf-8")


def wire_bytes(message: Any) -> bytes | None:
    """The message as sent on the wire, for the common case: a UTF-8 text body and one
    HTML alternative, no attachments, no Cc or Reply-To, every header ASCII on one line.

    The same bytes Django's MIME classes produce (same headers, same part layout, 7bit
    or 8bit), built directly: Python's email generator spends most of a digest's
    sending time folding and re-encoding headers and bodies that need neither. Anything
    else returns None and goes through Django.
    """
    if not isinstance(message, EmailMultiAlternatives) or message.attachments:
        return None
    if message.cc or message.reply_to or message.content_subtype != "plain":
        return None
    if (message.encoding or settings.DEFAULT_CHARSET).lower() != "utf-8":
        return None
    if len(message.alternatives) != 1 or message.alternatives[0][1] != "text/html":
        return None
    html = message.alternatives[0][0]
    if not (isinstance(html, str) and isinstance(message.body, str) and message.to):
        return None
    extra = {str(name): str(value) for name, value in message.extra_headers.items()}
    if any(name.lower() in _OWN_HEADERS for name in extra):
        return None
    headers = [
        ("Subject", str(message.subject)),
        ("From", _address(message.from_email)),
        ("To", ", ".join(_address(a) for a in message.to)),
        ("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
    ]
    if not any(name.lower() == "message-id" for name in extra):
        headers.append(("Message-ID", make_msgid(domain=DNS_NAME)))
    headers.extend(extra.items())
    for name, value in headers:  # Django encodes or refuses anything else
        if not value.isascii() or "\n" in value or "\r" in value:
            return None
        if len(name) + 2 + len(value) > MAX_LINE:
            return None
    parts = [_part("plain", message.body), _part("html", html)]
    if None in parts:
        return None
    boundary = f"==============={random.randrange(10**18, 10**19)}=="
    if any(boundary.encode() in part for part in parts):  # type: ignore[operator]
        return None
    head = (
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
        "MIME-Version: 1.0\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers)
    )
    out = [head.encode("ascii"), b"\r\n"]
    for part in parts:
        out += [b"--", boundary.encode(), b"\r\n", part, b"\r\n"]  # type: ignore[list-item]
    out += [b"--", boundary.encode(), b"--\r\n"]
    return b"".join(out)


def _part(subtype: str, text: str) -> bytes | None:
    lines = _NEWLINE.split(text) if "\r" in text else text.split("\n")
    text = "\r\n".join(lines)
    body = text.encode("utf-8", "surrogateescape")
    if len(body) > MAX_LINE and max(map(len, body.split(b"\r\n"))) > MAX_LINE:
        return None
    encoding = "7bit" if body.isascii() else "8bit"
    head = (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nMIME-Version: 1.0\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + body


class EmailBackend(smtp.EmailBackend):
    @property
    def connection_class(self) -> type[smtplib.SMTP]:
        return TrackingSMTPSSL if self.use_ssl else TrackingSMTP

    def _send(self, email_message: Any) -> bool:
        if self.connection is not None:
            self.connection.body_sent = False  # type: ignore[attr-defined]
        try:
            data = wire_bytes(email_message)
            if data is None:
                return bool(super()._send(email_message))  # type: ignore[misc]
            return self._send_bytes(email_message, data)
        except LOST_IN_FLIGHT as exc:
            if getattr(self.connection, "body_sent", False):
                raise OutcomeUnknown(f"no reply after the message was sent: {exc!r}") from exc
            raise

    def _send_bytes(self, email_message: Any, data: bytes) -> bool:
        """Django's ``_send`` with the message already on its wire form."""
        recipients = email_message.recipients()
        if not recipients:
            return False
        try:
            self.connection.sendmail(  # type: ignore[union-attr]
                _address(email_message.from_email), [_address(a) for a in recipients], data
            )
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True
