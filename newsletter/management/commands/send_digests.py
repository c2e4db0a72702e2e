from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from config import cli
from newsletter.control import digests_dry_run, digests_start


class Command(cli.Command):
    help = (
        "Plan and send digests. With --date D: the digest dated D to every active reader whose "
        "schedule includes D (daily readers; weekly readers on their day), whatever the hour. "
        "Without it: what beat does, the readers due now. Running it again sends nothing twice. "
        "The admin's control room does the same."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--date",
            type=cli.date_arg,
            default=None,
            help="digest date: YYYY-MM-DD, today or yesterday",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="show who would get how many papers; write and send nothing",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            lines = digests_dry_run(options["date"], shown=None)
        else:
            lines = digests_start(options["date"])
        for line in lines:
            self.stdout.write(line)
