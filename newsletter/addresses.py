"""Email addresses as stored and as sent: one rule for the signup form, the CSV import,
the ``subscribe`` command and the senders.

An address is accepted only if it can be sent to exactly as written. email-validator
checks the syntax; Django's mail code must then carry the address through unchanged.
That refuses RFC 2047 encoded words (``=?utf-8?q?victim=40other.example?=@example.org``
is decoded on the way out and would reach another mailbox; others fail to encode at all),
and non-ASCII local parts, which Django cannot send without SMTPUTF8.
"""

from __future__ import annotations

from email.errors import HeaderParseError

from django.core.mail.message import sanitize_address
from email_validator import EmailNotValidError, validate_email

NOT_ASCII = (
    "We cannot send to addresses with accents or non-Latin letters before the @ yet. "
    "Please use another address."
)
ENCODED = (
    'This address contains "=?", which mail software reads as encoded text: it could '
    "not be delivered as written. Please check it."
)
UNSENDABLE = "This address could not be delivered as written. Please check it."


class BadAddress(ValueError):
    """An address that cannot be stored or sent as written; the message says why."""


def address_problem(address: str) -> str | None:
    """Why mail to ``address`` (already syntax-checked) could not go out exactly as
    written, or None."""
    local = address.rpartition("@")[0]
    if not local.isascii():
        return NOT_ASCII
    if "=?" in address:
        return ENCODED
    try:
        sent = sanitize_address(address, "utf-8")
    except (ValueError, UnicodeError, IndexError, HeaderParseError):
        return UNSENDABLE
    if sent.rpartition("@")[0] != local:
        return UNSENDABLE
    return None


def address_clean(value: str) -> str:
    """The address as stored: syntax-checked, sendable, stripped, lower-case; or
    BadAddress."""
    try:
        address = validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise BadAddress(str(exc)) from None
    problem = address_problem(address)
    if problem:
        raise BadAddress(problem)
    return address
