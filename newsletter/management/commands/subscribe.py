from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction
from django.utils import timezone

from config import cli
from newsletter.addresses import BadAddress, address_clean
from newsletter.models import LAST_HOUR, MAX_PAPERS, MIN_PAPERS, Subscriber, Topic, topic_keys
from newsletter.subscriptions import confirmation_request


class Command(cli.Command):
    help = (
        "Create or update a subscriber (an admin tool). Without --confirmed the reader is "
        "pending and gets a confirmation email (double opt-in)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument(
            "--topic",
            action="append",
            default=[],
            metavar="SLUG",
            help="a topic, by slug or name; repeat for several (see the admin's Topics)",
        )
        parser.add_argument(
            "--keywords",
            default=None,
            metavar="TEXT",
            help='free-text interests, comma-separated: "KV cache, speculative decoding"',
        )
        parser.add_argument(
            "--author",
            action="append",
            default=[],
            metavar="NAME",
            help="an author to follow; repeat for several",
        )
        parser.add_argument("--frequency", choices=Subscriber.Frequency.values, default=None)
        parser.add_argument(
            "--max",
            type=int,
            default=None,
            metavar="N",
            help=f"papers per digest, {MIN_PAPERS} to {MAX_PAPERS} (default 10)",
        )
        parser.add_argument(
            "--send-hour",
            type=int,
            default=None,
            metavar="H",
            help=f"local hour to send, 0 to {LAST_HOUR} (default 7)",
        )
        parser.add_argument(
            "--timezone",
            default=None,
            metavar="ZONE",
            help="IANA time zone, e.g. Europe/Paris (default UTC)",
        )
        parser.add_argument(
            "--confirmed",
            action="store_true",
            help="skip double opt-in: the subscriber is active at once",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            email = address_clean(options["email"])
        except BadAddress as exc:
            raise CommandError(f"{options['email']!r}: {exc}") from None
        keys = topic_keys()
        unknown = [name for name in options["topic"] if name.casefold() not in keys]
        if unknown:
            known = ", ".join(Topic.objects.values_list("slug", flat=True))
            raise CommandError(
                f"unknown topic {', '.join(map(repr, unknown))}; use a slug or a name: {known}",
                returncode=2,
            )
        topics = list(Topic.objects.filter(pk__in={keys[n.casefold()] for n in options["topic"]}))
        with transaction.atomic():
            subscriber, created = Subscriber.objects.get_or_create(email=email)
            self.apply(subscriber, options)
            try:
                subscriber.full_clean()
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                ) from None
            subscriber.save()
            if topics or options["topic"]:
                subscriber.topics.set(topics)
        if not options["confirmed"] and subscriber.status == Subscriber.Status.PENDING:
            confirmation_request(subscriber=subscriber)
        verb = "created" if created else "updated"
        self.stdout.write(f"{verb} {subscriber.email} ({subscriber.status})")

    def apply(self, subscriber: Subscriber, options: dict[str, Any]) -> None:
        fields = {
            "keywords": "keywords",
            "frequency": "frequency",
            "max": "max_papers",
            "send_hour": "send_hour",
            "timezone": "timezone",
        }
        for option, field in fields.items():
            if options[option] is not None:
                setattr(subscriber, field, options[option])
        if options["author"]:
            subscriber.authors = options["author"]
        if options["confirmed"]:
            subscriber.status = Subscriber.Status.ACTIVE
            subscriber.consent_at = subscriber.consent_at or timezone.now()
        subscriber.updated = timezone.now()
