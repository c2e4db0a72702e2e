"""What every Paperboy command shares: errors are one line on stderr, never a
traceback. Bad usage (an unknown option, a date that is not one) exits 2 with
``<command>: error: <what>``; a failure (``CommandError``) exits 1 with ``CommandError: <what>``;
a closed pipe (``preview_digest ... | head``) ends quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from datetime import date, timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone


class OneLineParser(CommandParser):
    """Django's parser, with usage errors as one line (the usage is in --help)."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
            sys.exit(2)
        raise CommandError(f"Error: {message}", returncode=2)


class Command(BaseCommand):
    """A management command whose errors are one clear line each."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        _one_line(parser)
        return parser

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except BrokenPipeError:
            # The reader of our output has gone (| head): stop, and say nothing more.
            # So that Python's own flush at exit does not complain again (unless stdout
            # is not a file at all: captured).
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            sys.exit(130)


def _one_line(parser: argparse.ArgumentParser) -> None:
    parser.__class__ = OneLineParser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _one_line(sub)


def date_arg(value: str) -> date:
    """A date option: YYYY-MM-DD, "today" or "yesterday" (UTC); anything else is bad
    usage, said in one line."""
    words = {"today": 0, "yesterday": 1}
    if value.strip().lower() in words:
        return timezone.now().date() - timedelta(days=words[value.strip().lower()])
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(
        f"{value!r} is not a date: use YYYY-MM-DD (for example 2026-01-05), today or yesterday"
    )
