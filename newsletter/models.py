from __future__ import annotations

import calendar
import functools
import re
import time
import uuid
import zoneinfo
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q, Value
from django.db.models.functions import Lower, Replace
from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver
from django.urls import reverse
from django.utils.timezone import now as utcnow

from newsletter.tokens import BadToken, check_token, make_token
from papers.models import Paper


@functools.cache
def known_timezones() -> frozenset[str]:
    """Every zone name of the installed time zone database. Listing them walks the
    database's files (about 10 ms, more than the rest of a signup); they only change
    with a tzdata upgrade, which comes with a restart. "localtime" (the server's own
    zone) and "Factory" are not places a reader lives in."""
    return frozenset(zoneinfo.available_timezones() - {"localtime", "Factory"})


def validate_timezone(value: str) -> None:
    if value not in known_timezones():
        raise ValidationError(f"{value!r} is not a known time zone", code="invalid_timezone")


# A reader's preferences, limited here and only here: the model's validators hold them
# for the admin, and the forms, the CSV import and the subscribe command check them
# through the same validators and numbers.
MAX_INTEREST_CHARS = 1000
MAX_AUTHORS, MAX_AUTHOR_CHARS = 50, 100
MAX_LIKED_PAPERS = 20  # named by arXiv id or link
MIN_PAPERS, MAX_PAPERS = 1, 50  # papers per digest
LAST_HOUR = 23
ARXIV_ID = re.compile(r"(?<![\d.])(\d{4}\.\d{4,5})(?:v\d+)?(?![\d])")


def arxiv_ids(text: str) -> list[str]:
    """The arXiv ids in a text: bare (2501.12345, 2501.12345v2) or inside links."""
    return ARXIV_ID.findall(text)


def validate_interests(value: str) -> None:
    if len(value) > MAX_INTEREST_CHARS:
        raise ValidationError(
            f"Keep your interests under {MAX_INTEREST_CHARS:,} characters.", code="too_long"
        )


def validate_authors(value: object) -> None:
    if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
        raise ValidationError("Authors are a list of names.", code="invalid")
    if len(value) > MAX_AUTHORS:
        raise ValidationError(f"Follow at most {MAX_AUTHORS} authors.", code="too_many")
    if any(len(name) > MAX_AUTHOR_CHARS for name in value):
        raise ValidationError(
            f"An author's name is at most {MAX_AUTHOR_CHARS} characters.", code="too_long"
        )


def validate_liked_papers(value: object) -> None:
    if not (
        isinstance(value, list) and all(isinstance(i, str) and ARXIV_ID.fullmatch(i) for i in value)
    ):
        raise ValidationError("Liked papers are a list of arXiv ids.", code="invalid")
    if len(value) > MAX_LIKED_PAPERS:
        raise ValidationError(f"Name at most {MAX_LIKED_PAPERS} papers.", code="too_many")


class Topic(models.Model):
    """A subject readers can follow, with the curated terms that recognise it."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=80, help_text="Shown on the signup form and in reasons.")
    area = models.CharField(max_length=60, blank=True, help_text="Group on the signup form.")
    description = models.CharField(max_length=200, blank=True, help_text="One line for readers.")
    terms = models.TextField(
        blank=True,
        help_text="Phrases, synonyms and acronyms that signal the topic, one per line. "
        "ALL-CAPS acronyms match case-sensitively.",
    )
    position = models.PositiveSmallIntegerField(default=0, help_text="Order on the signup form.")

    class Meta:
        ordering = ["area", "position", "name"]

    def __str__(self) -> str:
        return self.name

    def term_list(self) -> list[str]:
        return [t.strip() for t in self.terms.replace(",", "\n").splitlines() if t.strip()]


def topic_keys() -> dict[str, int]:
    """Each topic's id by its slug and by its name, case-folded (a slug wins over
    another topic's name): how the CSV import and the subscribe command read topics."""
    keys: dict[str, int] = {}
    for pk, slug, name in Topic.objects.values_list("pk", "slug", "name"):
        keys.setdefault(name.casefold(), pk)
        keys[slug.casefold()] = pk
    return keys


TOPICS_VERSION_KEY = "paperboy.topics.version"
TOPICS_RECHECK = 1.0  # seconds between looks at the shared version
_topics: tuple[object, float, dict[int, Topic]] = (None, 0.0, {})


def topics_by_id() -> dict[int, Topic]:
    """The topic catalogue, kept by each process for as long as it does not change: a
    signup checks the topics it was sent against it, without a query. Saving or deleting
    a topic writes a new version to the shared cache; each process looks at the version
    at most once a second and reloads the catalogue when it has changed (the process
    that saved the topic, at once)."""
    global _topics
    version, checked, catalogue = _topics
    now = time.monotonic()
    if now - checked < TOPICS_RECHECK:
        return catalogue
    latest = cache.get(TOPICS_VERSION_KEY)
    if latest is None:
        cache.add(TOPICS_VERSION_KEY, uuid.uuid4().hex, timeout=None)
        latest = cache.get(TOPICS_VERSION_KEY)
    if latest is None or latest != version:
        catalogue = {topic.pk: topic for topic in Topic.objects.all()}
    _topics = (latest, now, catalogue)
    return catalogue


@receiver(pre_delete, sender="newsletter.Subscriber")
def _subscriber_deleted(instance: Subscriber, **kwargs: object) -> None:
    """Deleting a subscriber (the admin's "Delete", a cleanup) takes their address out
    of the rows that outlive them, as erasure does."""
    instance.traces_erase()


@receiver([post_save, post_delete], sender=Topic)
def _topics_changed(**kwargs: object) -> None:
    """This process reloads at its next look; the others once the change is committed
    (before it, another process could reload the old catalogue under the new version)."""
    global _topics
    _topics = (None, 0.0, {})
    transaction.on_commit(_topics_version_bump)


def _topics_version_bump() -> None:
    global _topics
    cache.set(TOPICS_VERSION_KEY, uuid.uuid4().hex, timeout=None)
    _topics = (None, 0.0, {})


class SubscriberQuerySet(models.QuerySet["Subscriber"]):
    def with_email(self, email: str) -> SubscriberQuerySet:
        """The subscriber with this address, found through the unique index on
        lower(email): a plain ``email=`` filter cannot use it and reads every row."""
        return self.annotate(email_lower=Lower("email")).filter(email_lower=email.lower())

    def from_token(
        self, token: str, *, purpose: str, expired_ok: bool = False
    ) -> tuple[Subscriber, str]:
        """The subscriber a signed link names and its extra part, or BadToken: forged,
        expired (unless ``expired_ok``), or revoked (the reader's token version moved
        on, or the reader is gone)."""
        claim = check_token(token, purpose=purpose, expired_ok=expired_ok)
        subscriber = self.filter(pk=claim.pk).first()
        if subscriber is None or subscriber.token_version != claim.version:
            raise BadToken("this link is no longer valid")
        return subscriber, claim.extra


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending confirmation"
        ACTIVE = "active"
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        PAUSED = "paused"
        DELETED = "deleted", "Deleted (personal data erased)"

    class Frequency(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"

    # The status groups, each named once.
    # Mail stopped by a bounce, a complaint or a refused address: only a fresh opt-in
    # (an expiring link emailed on request) lifts it.
    SUPPRESSED = (Status.BOUNCED, Status.COMPLAINED)
    # Never mailed at all.
    NEVER_MAILED = (*SUPPRESSED, Status.DELETED)
    # Still to be mailed: a bounce, a complaint or a refused address suppresses them (a
    # paused reader too: resuming must not start mail to an address that bounced), and
    # an import may update them.
    REACHABLE = (Status.ACTIVE, Status.PENDING, Status.PAUSED)
    # Signed up for digests, whether or not on a break.
    SUBSCRIBED = (Status.ACTIVE, Status.PAUSED)
    # The manage link's one button starts their digests: the link reached their inbox,
    # and pressing the button is their opt-in.
    RESUBSCRIBABLE = (Status.PENDING, Status.UNSUBSCRIBED)
    # A fresh opt-in link starts their digests.
    REOPTABLE = (*RESUBSCRIBABLE, *SUPPRESSED)
    # The admin's "reactivate": readers who left or paused of their own accord.
    REACTIVATABLE = (Status.UNSUBSCRIBED, Status.PAUSED)

    email = models.EmailField(max_length=254, help_text="Stored lower-case.")
    status = models.CharField(
        max_length=12,
        choices=Status.choices,
        default=Status.PENDING,
        help_text="Only active readers get digests. Paused readers resume from their "
        "manage page; bounced and complained ones only through a fresh confirmation; "
        "deleted ones are anonymous rows kept for the counts.",
    )
    topics = models.ManyToManyField(Topic, blank=True, related_name="subscribers")
    keywords = models.TextField(
        blank=True,
        validators=[validate_interests],
        help_text="Free-text interests: keywords or a sentence, comma-separated.",
    )
    authors = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_authors],
        help_text="Author names to follow.",
    )
    liked_papers = models.JSONField(
        default=list,
        blank=True,
        validators=[validate_liked_papers],
        help_text="arXiv ids of papers the reader named as liked: they count as thumbs up.",
    )
    frequency = models.CharField(max_length=6, choices=Frequency.choices, default=Frequency.DAILY)
    weekly_day = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(6)],
        help_text="Weekly readers get their digest on this day (0 = Monday).",
    )
    max_papers = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(MIN_PAPERS), MaxValueValidator(MAX_PAPERS)],
        help_text=f"Papers per digest, {MIN_PAPERS} to {MAX_PAPERS}.",
    )
    send_hour = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(LAST_HOUR)],
        help_text=f"Local hour, 0 to {LAST_HOUR}.",
    )
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    consent_at = models.DateTimeField(null=True, blank=True, help_text="When they confirmed.")
    pending_preferences = models.JSONField(
        default=dict,
        blank=True,
        editable=False,
        help_text="What a known address asked for when it signed up again: applied only "
        "if the confirmation link is followed (the confirmation email lists it).",
    )
    token_version = models.PositiveIntegerField(
        default=1, help_text="Bumping it revokes every link sent so far."
    )
    confirmation_due = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="A confirmation email is owed since then (or, while one is being sent, "
        "until then); empty when none is.",
    )
    created = models.DateTimeField(default=utcnow)
    updated = models.DateTimeField(default=utcnow)

    objects = SubscriberQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="subscriber_email_unique_ci"),
            models.CheckConstraint(
                condition=Q(max_papers__gte=MIN_PAPERS, max_papers__lte=MAX_PAPERS),
                name="subscriber_max_papers",
            ),
            models.CheckConstraint(
                condition=Q(send_hour__lte=LAST_HOUR), name="subscriber_send_hour"
            ),
            models.CheckConstraint(condition=Q(weekly_day__lte=6), name="subscriber_weekly_day"),
        ]
        indexes = [
            # plan_due_digests: active readers by time zone and hour.
            models.Index(
                fields=["timezone", "send_hour"],
                name="subscriber_active_due_idx",
                condition=Q(status="active"),
            ),
            # The confirmation outbox: the few readers owed a confirmation email.
            models.Index(
                fields=["confirmation_due"],
                name="subscriber_confirm_due_idx",
                condition=Q(confirmation_due__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.email

    def save(self, **kwargs: Any) -> None:
        """An update leaves ``confirmation_due`` and ``pending_preferences`` alone unless
        they are named: they are moved only by conditional updates
        (newsletter/subscriptions.py), and a form or command saving a copy read earlier
        must not undo a request made meanwhile."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            deferred = self.get_deferred_fields()  # as Django does: only what was loaded
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key
                and field.name not in ("confirmation_due", "pending_preferences")
                and field.attname not in deferred
            ]
        super().save(**kwargs)

    def get_constraints(self) -> list[tuple[type[models.Model], Sequence[models.BaseConstraint]]]:
        """What full_clean() validates: the unique address. Django checks each
        CheckConstraint with a query of its own, but the range checks repeat the fields'
        validators (MaxValueValidator, ...), which run first: those queries could never
        fail. The database still enforces every constraint."""
        return [
            (model, [c for c in constraints if not isinstance(c, models.CheckConstraint)])
            for model, constraints in super().get_constraints()
        ]

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def local_date(self, now: datetime | None = None) -> date:
        return (now or utcnow()).astimezone(self.zone).date()

    def preference_lines(self, wanted: dict[str, Any] | None = None) -> list[str]:
        """The reader's preferences in words, one line each (or those ``wanted``, as
        stored in ``pending_preferences``, over the current ones)."""
        values: dict[str, Any] = {
            "topics": [t.pk for t in self.topics.all()] if self.pk else [],
            "keywords": self.keywords,
            "authors": self.authors,
            "frequency": self.frequency,
            "weekly_day": self.weekly_day,
            "send_hour": self.send_hour,
            "timezone": self.timezone,
            "max_papers": self.max_papers,
            **(wanted or {}),
        }
        names = [t.name for t in Topic.objects.filter(pk__in=values["topics"]).order_by("name")]
        day = "Every day"
        if values["frequency"] == self.Frequency.WEEKLY:
            day = f"Every {calendar.day_name[int(values['weekly_day'])]}"
        lines = [
            f"Topics: {', '.join(names) or 'none'}",
            f"Interests: {values['keywords'] or 'none'}",
        ]
        if values["authors"]:
            lines.append(f"Authors: {', '.join(values['authors'])}")
        lines += [
            f"When: {day} at {int(values['send_hour']):02d}:00 ({values['timezone']})",
            f"Papers per digest: at most {values['max_papers']}",
        ]
        return lines

    def keyword_list(self) -> list[str]:
        return [k.strip() for k in self.keywords.replace("\n", ",").split(",") if k.strip()]

    def receives_on(self, day: date) -> bool:
        """Whether the schedule includes a digest dated ``day``."""
        return self.frequency == self.Frequency.DAILY or day.weekday() == self.weekly_day

    def first_period_start(self, day: date) -> date:
        return day - timedelta(days=7 if self.frequency == self.Frequency.WEEKLY else 1)

    def unsubscribe_url(self) -> str:
        token = make_token(self, purpose="unsubscribe")
        return settings.SITE_URL + reverse("unsubscribe", args=[token])

    def confirm_url(self) -> str:
        token = make_token(self, purpose="confirm")
        return settings.SITE_URL + reverse("confirm", args=[token])

    def manage_url(self) -> str:
        token = make_token(self, purpose="manage")
        return settings.SITE_URL + reverse("manage", args=[token])

    def resubscribe_url(self) -> str:
        """A fresh opt-in for a suppressed reader; expires like a confirmation link."""
        token = make_token(self, purpose="resubscribe")
        return settings.SITE_URL + reverse("resubscribe", args=[token])

    def traces_erase(self) -> None:
        """Remove the address from everything that outlives the reader's own row: the
        providers' events about them or their address (address, text and payload), and
        the admin's history (django_admin_log names objects by their str(), which for a
        subscriber, their deliveries and events holds the address)."""
        from django.contrib.admin.models import LogEntry
        from django.contrib.contenttypes.models import ContentType

        email = self.email
        EmailEvent.objects.filter(Q(subscriber_id=self.pk) | Q(recipient__iexact=email)).update(
            recipient="", description="", payload={}
        )
        placeholder = f"subscriber #{self.pk} (erased)"
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Subscriber), object_id=str(self.pk)
        ).update(object_repr=placeholder)
        named = LogEntry.objects.filter(
            Q(object_repr__icontains=email) | Q(change_message__icontains=email)
        )
        named.update(
            object_repr=Replace("object_repr", Value(email), Value(placeholder)),
            change_message=Replace("change_message", Value(email), Value(placeholder)),
        )
        named.update(object_repr=placeholder, change_message="")  # other spellings of it

    def feedback_token(self) -> str:
        """One token per digest; the paper and the vote go in the path, and a vote only
        counts for a paper that was sent to this reader."""
        return make_token(self, purpose="feedback")


def _duration(seconds: int) -> str:
    """120 -> "2 minutes", 3600 -> "1 hour", 90 -> "90 seconds"."""
    if seconds and seconds % 3600 == 0:
        count, unit = seconds // 3600, "hour"
    elif seconds and seconds % 60 == 0:
        count, unit = seconds // 60, "minute"
    else:
        count, unit = seconds, "second"
    return f"{count} {unit}{'' if count == 1 else 's'}"


class Delivery(models.Model):
    """One digest for one subscriber and one period, with its ranked items."""

    class Status(models.TextChoices):
        PLANNED = "planned"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped", "Skipped (nothing to send)"
        UNKNOWN = "unknown", "Outcome unknown"

    public_id = models.UUIDField(
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="Opaque id for links and provider metadata.",
    )
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    digest_date = models.DateField(help_text="The date the digest is for, in the reader's zone.")
    period_start = models.DateField(help_text="First catalogue date covered.")
    period_end = models.DateField(help_text="Last catalogue date covered.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PLANNED)
    created = models.DateTimeField(default=utcnow)
    sent_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a worker last claimed it for sending."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its send task was last put on the queue."
    )
    queue_epoch = models.CharField(
        max_length=32,
        blank=True,
        help_text="The queue's identity then: a Redis that restarted empty has a new one.",
    )
    lease_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text="A worker holds it until then (renewed while it sends); past it, "
        "recovery sends it again.",
    )
    retry_at = models.DateTimeField(
        null=True, blank=True, help_text="After a transient error: when it is tried again."
    )
    recoveries = models.PositiveSmallIntegerField(
        default=0,
        help_text="Times recovery took it back from a dead worker, a lost task or an "
        "unknown outcome.",
    )
    resends = models.PositiveSmallIntegerField(
        default=0, help_text="Times it was sent again after an unknown outcome."
    )
    message_id = models.CharField(max_length=255, blank=True, help_text="Message-ID header.")
    provider_id = models.CharField(max_length=255, blank=True, help_text="The provider's id.")
    error = models.TextField(blank=True)
    link_version = models.PositiveIntegerField(
        default=1,
        editable=False,
        help_text="The reader's token version when it was planned: its web copy works "
        'while the reader\'s links do, and dies with "sign out my links".',
    )

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "digest_date"], name="delivery_one_per_subscriber_period"
            ),
            models.CheckConstraint(
                condition=Q(period_start__lte=models.F("period_end")),
                name="delivery_period_ordered",
            ),
        ]
        indexes = [
            # send_deliveries: planned deliveries of a digest date.
            models.Index(
                fields=["digest_date"],
                name="delivery_planned_idx",
                condition=Q(status="planned"),
            ),
            # recover_deliveries: leases that ran out, and unknown outcomes to resend.
            models.Index(
                fields=["lease_until"],
                name="delivery_lease_idx",
                condition=Q(status__in=["planned", "sending"]),
            ),
            models.Index(
                fields=["claimed_at"], name="delivery_unknown_idx", condition=Q(status="unknown")
            ),
            # The dashboard's "recovered" count.
            models.Index(
                fields=["digest_date"],
                name="delivery_recovered_idx",
                condition=Q(recoveries__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber} {self.digest_date} {self.status}"

    def web_url(self) -> str:
        """The "view in browser" copy; the random public id is the key to it."""
        return settings.SITE_URL + reverse("digest_web", args=[self.public_id])

    def waiting_reason(self, now: datetime | None = None) -> str:
        """Why a delivery not yet settled waits, in words, for the admin."""
        now = now or utcnow()
        lease = self.lease_until
        if self.status == self.Status.PLANNED:
            if self.retry_at and self.retry_at > now:
                why = self.error.split("\n", 1)[0][:120]
                return f"tried again at {self.retry_at:%H:%M:%S} UTC ({why})"
            if lease and lease > now:
                return "its chunk is with a worker"
            if lease:
                return "its worker stopped: recovery sends it again at its next run"
            if self.queued_at:
                return f"queued at {self.queued_at:%H:%M:%S} UTC, waiting for a worker"
            return "planned, not queued yet: recovery queues it"
        if self.status == self.Status.SENDING:
            if lease and lease > now:
                return "being sent now"
            return "its worker stopped mid-send: recovery sends it again at its next run"
        if self.status == self.Status.UNKNOWN:
            if self.resends < settings.PAPERBOY_UNKNOWN_RESENDS:
                after = _duration(settings.PAPERBOY_UNKNOWN_RESEND_AFTER)
                return (
                    "the answer to the send was lost: sent again with the same Message-ID "
                    f"{after} after it, unless a provider event settles it first"
                )
            return f"still unknown after {self.resends} resends: settle it by hand"
        return ""

    def web_copy_open(self) -> bool:
        """Whether its web copy may be shown: not skipped, the reader not erased and
        their links not signed out since it was planned."""
        subscriber = self.subscriber
        return (
            self.status != self.Status.SKIPPED
            and subscriber.status != Subscriber.Status.DELETED
            and subscriber.token_version == self.link_version
        )


class DeliveryItem(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="items")
    # Denormalised from the delivery so the database itself refuses a paper sent twice.
    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="+")
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()
    reason = models.CharField(max_length=300)

    class Meta:
        ordering = ["delivery", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "paper"], name="item_paper_once"),
            models.UniqueConstraint(fields=["delivery", "rank"], name="item_rank_unique"),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.paper_id} ({self.score:.2f})"


class EmailEvent(models.Model):
    """A provider's tracking event (delivered, bounced, complained, ...), stored once."""

    provider = models.CharField(max_length=32)
    event_id = models.CharField(max_length=255, blank=True)
    event_type = models.CharField(max_length=32)
    recipient = models.EmailField(max_length=254, blank=True)
    delivery = models.ForeignKey(
        Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    subscriber = models.ForeignKey(
        Subscriber, null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    timestamp = models.DateTimeField(default=utcnow)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    created = models.DateTimeField(default=utcnow)

    class Meta:
        ordering = ["-timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "event_id"], name="event_once", condition=~Q(event_id="")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.event_type} {self.recipient}"


class Feedback(models.Model):
    class Vote(models.IntegerChoices):
        UP = 1, "Thumbs up"
        DOWN = -1, "Thumbs down"

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="feedback")
    paper = models.ForeignKey(Paper, on_delete=models.CASCADE, related_name="feedback")
    vote = models.SmallIntegerField(choices=Vote.choices)
    created = models.DateTimeField(default=utcnow)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscriber", "paper"], name="feedback_once"),
            models.CheckConstraint(condition=Q(vote__in=[1, -1]), name="feedback_vote"),
        ]

    def __str__(self) -> str:
        return f"{self.subscriber_id} {self.get_vote_display()} {self.paper_id}"


class InterestVector(models.Model):
    """The sentence embedding of one interest text, shared by every reader who typed it
    and made once, when planning first meets the text (a new or changed interest)."""

    key = models.CharField(max_length=64, unique=True, help_text="sha256 of model and text.")
    model = models.CharField(max_length=100)
    vector = models.BinaryField()
    created = models.DateTimeField(default=utcnow)

    def __str__(self) -> str:
        return f"{self.model} {self.key[:12]}"


class ControlRun(models.Model):
    """An action an operator started from the admin's control room, run by a worker as
    a Celery task: who asked, for what, and what came of it."""

    class Action(models.TextChoices):
        INGEST = "ingest", "Ingest papers"
        DRY_RUN = "dry_run", "Dry run: what would be sent"
        PLAN_SEND = "plan_send", "Plan and send digests"
        RETRY = "retry", "Retry failed and unknown deliveries"

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    action = models.CharField(max_length=12, choices=Action.choices)
    params = models.JSONField(default=dict, blank=True, help_text="What the operator chose.")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    result = models.TextField(blank=True, help_text="What the task reported, one line each.")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=utcnow)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.describe()}"

    def describe(self) -> str:
        """The action and its choices in words: "Ingest papers (hf, 2026-01-05)"."""
        shown = [str(v) for v in self.params.values() if v not in ("", None)]
        label = self.get_action_display()
        return f"{label} ({', '.join(shown)})" if shown else label

    def summary(self) -> str:
        return self.result.splitlines()[0] if self.result else ""


class TaskBeat(models.Model):
    """The latest run of one scheduled task, written by the worker that ran it: the
    control room's "last run" (and whether beat and the workers keep up)."""

    class State(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    task = models.CharField(max_length=200, unique=True)
    state = models.CharField(max_length=8, choices=State.choices)
    started = models.DateTimeField()
    finished = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True)
    runs = models.PositiveIntegerField(default=0, help_text="Runs recorded since the first.")

    def __str__(self) -> str:
        return f"{self.task} {self.state} {self.started:%Y-%m-%d %H:%M}"

    def seconds(self) -> float | None:
        return (self.finished - self.started).total_seconds() if self.finished else None
