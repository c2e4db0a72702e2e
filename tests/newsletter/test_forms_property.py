"""Random and hostile posts to every public form: signup, the "send me a fresh link"
button of an expired confirmation link, "email me my link", the manage page (through a
valid link), feedback and unsubscribe.

Whatever arrives (any Unicode, astral and right-to-left characters, NUL, lone
surrogates, 10,000-character fields, CR/LF header injection, SQL fragments, HTML and
script, unknown fields), no answer is a server error, every stored subscriber is valid
with a normalised address, and no email goes to a bad address or carries an injected
header. The time and rate guards are opened wide so the posts reach the code behind them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import quote

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, currently_in_test_context, event, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsletter.abuse import email_normalise, stamp_issue
from newsletter.models import Delivery, DeliveryItem, Feedback, Subscriber
from newsletter.tokens import make_token
from papers.models import Paper

pytestmark = pytest.mark.django_db

PROPERTY = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,  # no saved examples to replay: a failure prints its own
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the fixtures' rows are meant to be shared
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)

FRESH_STAMP = "<a stamp issued just now>"  # replaced when the form is posted
LINE_BREAKS = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
EMAIL_HEADERS = {
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "subject",
    "from",
    "to",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-id",
}
HOSTILE = [
    "'; DROP TABLE newsletter_subscriber; --",
    "' OR '1'='1",
    "1); SELECT pg_sleep(10); --",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "{{ settings.SECRET_KEY }}{% debug %}",
    "\r\nBcc: victim@example.org",
    "\nSubject: you won",
    "%0d%0aBcc: victim@example.org",
    "\x00",
    "a\x00b",
    "\u202egro.elpmaxe",  # right-to-left override
    "مرحبا بالعالم",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🧪👩‍🔬",
    "\ud800",  # lone surrogates
    "x\udfffy",
    "\ufeff\u200b",
    "",
    " ",
    "0",
    "-1",
    "99999999999999999999",
    "1e3",
    "NaN",
]
INJECTIONS = [
    "\r\nBcc: victim@example.org",
    "\nCc: victim@example.org",
    "\r\n\r\nA body of our own",
    ",victim@example.org",
    ">, <victim@example.org",
    "\x00",
    "\u2028",
    " ",
]

any_char = st.characters(exclude_categories=())  # every code point, surrogates included
short_text = st.text(any_char, max_size=30)
long_text = st.builds(
    lambda piece, times: piece * times,
    st.sampled_from(["a", "é", "𝔘", "\u202e", "<b>", "\r\n", "\x00", "Tri Dao\n"]),
    st.sampled_from([101, 1001, 2001, 10_000]),
)
texts = st.one_of(
    short_text,
    st.sampled_from(HOSTILE),
    long_text,
    st.lists(st.one_of(st.sampled_from(HOSTILE), short_text), max_size=4).map("".join),
)
# The cast's own addresses, as someone else might type them.
cast_addresses = st.sampled_from(["alice@example.org", "BOB@Example.ORG", " carol@example.org "])
addresses = st.one_of(
    st.emails(),
    st.builds(
        "{}@{}".format,
        st.sampled_from(["reader", "x.y+tag", "O'Brien", "UPPER"]),
        st.sampled_from(["example.org", "EXAMPLE.ORG", "bücher.example", "例え.jp"]),
    ),
    cast_addresses,
)
bad_addresses = st.one_of(
    st.builds(str.__add__, addresses, st.sampled_from(INJECTIONS)),
    st.builds(str.__add__, st.sampled_from(["Evil <", "\r\n", "\u202e", "mailto:"]), addresses),
    st.builds(
        "{}@{}".format,
        st.one_of(st.sampled_from(["Ünïcode", "a" * 65, "a\x00b"]), short_text),
        st.sampled_from(["example.org", "erased.invalid", "localhost", "例え.jp"]),
    ),
    texts,
)
extra_fields = st.dictionaries(st.one_of(short_text, st.sampled_from(HOSTILE)), texts, max_size=3)
GUARDS = {"stamp": st.just(FRESH_STAMP), "website": st.just("")}
PREFERENCES = {
    "topics": st.lists(st.integers(1, 38).map(str), max_size=6),
    "keywords": st.sampled_from(["", "KV cache, speculative decoding", "  small devices  "]),
    "authors_text": st.lists(
        st.sampled_from(["Tri Dao", "Albert  Gu", " ", "Song Han"]), max_size=5
    ).map("\n".join),
    "frequency": st.sampled_from(["daily", "weekly"]),
    "weekly_day": st.integers(0, 6).map(str),
    "send_hour": st.integers(0, 23).map(str),
    "timezone": st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
    "max_papers": st.integers(1, 50).map(str),
}
FormData = dict[str, Any]


def tampered(valid: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[FormData]:
    """A form filled in as a person would (``valid``), then up to two fields replaced by
    anything at all, up to two left out, and unknown fields sent along."""
    names = sorted(valid)
    hostile = st.one_of(texts, st.lists(texts, max_size=3))
    if "email" in valid:
        hostile = st.one_of(hostile, bad_addresses)
    return st.builds(
        lambda form, replaced, dropped, extra: {
            k: v for k, v in {**extra, **form, **replaced}.items() if k not in dropped
        },
        st.fixed_dictionaries(valid),
        st.dictionaries(st.sampled_from(names), hostile, max_size=2),
        st.sets(st.sampled_from(names), max_size=2),
        extra_fields,
    )


# Posting --------------------------------------------------------------------------------


def urlencoded(data: FormData) -> bytes:
    """A form body that carries anything, lone surrogates included (as the bytes a
    careless client sends for them)."""
    pairs = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            name = quote(key.encode("utf-8", "surrogatepass"))
            pairs.append(f"{name}={quote(str(item).encode('utf-8', 'surrogatepass'))}")
    return "&".join(pairs).encode()


def encodable(data: FormData) -> bool:
    """Whether the test client's multipart encoder can carry ``data``."""
    values = [v for value in data.values() for v in (value if isinstance(value, list) else [value])]
    try:
        for text in [*data, *map(str, values)]:
            text.encode()
    except UnicodeEncodeError:
        return False
    return True


def path(*parts: object) -> str:
    """A URL path with each part percent-encoded as a browser sends it."""
    return (
        "".join(f"/{quote(str(p).encode('utf-8', 'surrogatepass'), safe='')}" for p in parts) + "/"
    )


@pytest.fixture
def send(
    client: Client,
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> Callable[..., AbstractContextManager[Any]]:
    """Post ``data`` to ``url`` as multipart or urlencoded (the only way to carry lone
    surrogates), running the on-commit work (the emails) as a real request would; check
    what must always hold, give the response to the test's own checks, then undo
    everything, so each example starts from the same cast."""
    caplog.set_level(logging.ERROR, logger="django.request")  # every 4xx, 10,000 characters
    settings.PAPERBOY_MIN_SUBMIT_SECONDS = 0
    settings.PAPERBOY_FORM_RATE_PER_IP = "1000000/h"
    settings.PAPERBOY_FORM_RATE_PER_ADDRESS = "1000000/h"
    settings.PAPERBOY_CONFIRMATIONS_PER_DAY = 1_000_000

    @contextmanager
    def post(url: str, data: FormData, *, multipart: bool) -> Iterator[Any]:
        cache.clear()  # "email me my link" has a daily cap of its own
        mail.outbox.clear()
        data = {k: stamp_issue() if v == FRESH_STAMP else v for k, v in data.items()}
        with transaction.atomic():
            with django_capture_on_commit_callbacks(execute=True):
                if multipart and encodable(data):
                    response = client.post(url, data)
                else:
                    body = urlencoded(data)
                    type_ = "application/x-www-form-urlencoded"
                    response = client.post(url, body, content_type=type_)
            assert response.status_code < 500
            if currently_in_test_context():  # shown by pytest --hypothesis-show-statistics
                event(f"{response.status_code}, {len(mail.outbox)} email(s)")
            assert_nothing_invalid_stored()
            assert_every_email_clean()
            yield response
            transaction.set_rollback(True)

    return post


def sent(data: FormData, name: str) -> str:
    """What a form reads for ``name``: the last value posted, or nothing."""
    value = data.get(name, [])
    values = value if isinstance(value, list) else [value]
    return str(values[-1]) if values else ""


def ignored(data: FormData) -> bool:
    """Whether the guards take the post for a bot's: a honeypot filled in, a stamp that
    is not one the site issued."""
    return sent(data, "website").strip() != "" or sent(data, "stamp") != FRESH_STAMP


# What must hold after every post -------------------------------------------------------


def assert_nothing_invalid_stored() -> None:
    for subscriber in Subscriber.objects.all():
        subscriber.full_clean()
        email = subscriber.email
        assert email == email_normalise(email), email
        assert not any(c in email for c in LINE_BREAKS + "\x00"), email
        assert "\x00" not in subscriber.keywords and len(subscriber.keywords) <= 1000
        assert subscriber.keywords == subscriber.keywords.strip()
        authors = subscriber.authors
        assert isinstance(authors, list) and len(authors) <= 50
        assert len(set(authors)) == len(authors)
        for name in authors:
            assert isinstance(name, str) and 0 < len(name) <= 100, name
            assert name == " ".join(name.split()) and "\x00" not in name, name


def assert_every_email_clean() -> None:
    for message in mail.outbox:
        assert isinstance(message, EmailMessage)
        assert not message.cc and not message.bcc and len(message.to) == 1
        (recipient,) = message.to
        validate_email(recipient)
        assert recipient == email_normalise(recipient)
        assert Subscriber.objects.filter(email=recipient).exists()
        parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
        assert {name.lower() for name in parsed} <= EMAIL_HEADERS, parsed.keys()
        assert len(parsed.get_all("To") or []) == 1
        for name, value in parsed.items():
            assert not any(c in str(value) for c in "\r\n\x00"), (name, value)


# The cast -------------------------------------------------------------------------------


@pytest.fixture
def paper(alice: Subscriber) -> Paper:
    """A paper from alice's last digest: the one her feedback links are for."""
    day = timezone.localdate()
    paper = Paper.objects.create(arxiv_id="2601.00001", title="A paper", catalogue_date=day)
    delivery = Delivery.objects.create(
        subscriber=alice, digest_date=day, period_start=day, period_end=day, status="sent"
    )
    DeliveryItem.objects.create(
        delivery=delivery, subscriber=alice, paper=paper, rank=1, score=1.0, reason="why"
    )
    return paper


@pytest.fixture
def expired_link(bob: Subscriber) -> str:
    """Bob's confirmation link, issued a month ago."""
    with time_machine.travel(timezone.now() - timedelta(days=30)):
        return make_token(bob, purpose="confirm")


# The forms ------------------------------------------------------------------------------

BLANK = {"email": "blank@example.org", "stamp": FRESH_STAMP}


@PROPERTY
@given(
    data=tampered({"email": addresses, **PREFERENCES, **GUARDS}),
    multipart=st.booleans(),
)
# A cleared number box or a script's empty values: the model's defaults, never a blank
# zone or frequency, never a signup lost to a NULL.
@example(data={**BLANK, "frequency": "", "timezone": ""}, multipart=False)
@example(data={**BLANK, "weekly_day": "", "send_hour": "", "max_papers": ""}, multipart=True)
def test_signup_takes_anything_without_an_error_or_a_bad_row(
    send: Callable[..., Any], alice: Subscriber, bob: Subscriber, data: FormData, multipart: bool
) -> None:
    with send(reverse("signup"), data, multipart=multipart) as response:
        assert response.status_code in (200, 302)
        if response.status_code == 302:
            assert response["Location"] == reverse("check_inbox")
        if response.status_code == 302 and not ignored(data):
            address = email_normalise(sent(data, "email"))
            assert [m.to for m in mail.outbox] == [[address]]
            assert Subscriber.objects.filter(email=address).exists()
        else:
            assert not mail.outbox


@PROPERTY
@given(data=tampered(GUARDS), token=st.one_of(st.just(""), texts), multipart=st.booleans())
def test_an_expired_links_resend_button_takes_anything(
    send: Callable[..., Any],
    bob: Subscriber,
    expired_link: str,
    data: FormData,
    token: str,
    multipart: bool,
) -> None:
    url = path("confirm", token or expired_link, "resend")
    with send(url, data, multipart=multipart) as response:
        assert response.status_code in (302, 400, 404)
        fresh_link = response.status_code == 302 and not ignored(data)
        assert [m.to for m in mail.outbox] == ([[bob.email]] if fresh_link else [])


@PROPERTY
@given(data=tampered({"email": cast_addresses | addresses, **GUARDS}), multipart=st.booleans())
def test_email_me_my_link_takes_anything(
    send: Callable[..., Any], alice: Subscriber, carol: Subscriber, data: FormData, multipart: bool
) -> None:
    with send(reverse("link_request"), data, multipart=multipart) as response:
        assert response.status_code in (302, 400)
        expected = []
        if response.status_code == 302 and not ignored(data):
            address = email_normalise(sent(data, "email"))
            if address in (alice.email, carol.email):
                expected = [[address]]
        assert [m.to for m in mail.outbox] == expected


@PROPERTY
@given(data=tampered(PREFERENCES), multipart=st.booleans())
def test_the_manage_page_takes_anything_through_a_valid_link(
    send: Callable[..., Any], alice: Subscriber, data: FormData, multipart: bool
) -> None:
    url = path("manage", make_token(alice, purpose="manage"))
    with send(url, data, multipart=multipart) as response:
        assert response.status_code in (200, 400)
        alice.refresh_from_db()
        assert alice.status == Subscriber.Status.ACTIVE  # preferences never touch it
        if response.status_code == 200:
            topics = data.get("topics", [])
            posted = {str(t) for t in (topics if isinstance(topics, list) else [topics])}
            assert {str(pk) for pk in alice.topics.values_list("pk", flat=True)} <= posted
        assert not mail.outbox


@PROPERTY
@given(
    data=extra_fields,
    paper_id=st.one_of(st.none(), st.none(), st.integers(0, 2**70)),
    vote=st.one_of(st.sampled_from(["up", "down"]), st.sampled_from(["up", "down"]), texts),
    token=st.one_of(st.just(""), st.just(""), texts),
    multipart=st.booleans(),
)
@example(data={}, paper_id=2**63, vote="up", token="", multipart=False)  # past 64 bits
def test_feedback_takes_anything(
    send: Callable[..., Any],
    alice: Subscriber,
    paper: Paper,
    data: FormData,
    paper_id: int | None,
    vote: str,
    token: str,
    multipart: bool,
) -> None:
    link = token or alice.feedback_token()
    url = path("feedback", link, paper.pk if paper_id is None else paper_id, vote)
    with send(url, data, multipart=multipart) as response:
        assert response.status_code in (200, 400, 404)
        votes = set(Feedback.objects.values_list("subscriber", "paper", "vote"))
        assert votes <= {
            (alice.pk, paper.pk, Feedback.Vote.UP),
            (alice.pk, paper.pk, Feedback.Vote.DOWN),
        }
        assert not mail.outbox


@PROPERTY
@given(
    data=st.one_of(extra_fields, st.just({"List-Unsubscribe": "One-Click"})),
    token=st.one_of(st.just(""), texts),
    multipart=st.booleans(),
)
def test_unsubscribe_takes_anything(
    send: Callable[..., Any], alice: Subscriber, data: FormData, token: str, multipart: bool
) -> None:
    link = token or make_token(alice, purpose="unsubscribe")
    with send(path("unsubscribe", link), data, multipart=multipart) as response:
        assert response.status_code in (200, 400, 404)
        alice.refresh_from_db()
        assert (alice.status == Subscriber.Status.UNSUBSCRIBED) == (response.status_code == 200)
        assert not mail.outbox


def test_hostile_values_reach_the_forms_as_sent(send: Callable[..., Any]) -> None:
    """The posting helper itself: a lone surrogate arrives as replacement characters
    (one for each of its three bytes), NUL and CR/LF as themselves, so the properties
    above test what they claim to."""
    data = {"email": "a\ud800\x00\r\n@example.org"}
    with send(reverse("signup"), data, multipart=False) as response:
        assert response.status_code == 200
        assert response.context["form"].data["email"] == "a\ufffd\ufffd\ufffd\x00\r\n@example.org"
        assert not Subscriber.objects.exists()
