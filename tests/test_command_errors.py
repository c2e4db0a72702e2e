"""Every command-line error is one clear line on stderr, exit 2 for bad usage and 1 for
a failure, never a traceback: each command run as an operator runs it, with bad input."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from config import cli
from papers.ingest import ingest_run
from papers.models import Source
from papers.sources import SourceError
from tests.conftest import ROOT

BAD_DATES = ["2026-13-45", "yesterdayy", "2026-02-30", "2026-1-5"]


@pytest.fixture(scope="module")
def var(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database of its own, with one reader."""
    folder = tmp_path_factory.mktemp("var")
    run(folder, "migrate", "-v", "0")
    run(folder, "subscribe", "reader@example.org", "--topic", "agents", "--confirmed")
    return folder


def run(var: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    for name in ("DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL"):
        env.pop(name, None)
    env["PAPERBOY_VAR_DIR"] = str(var)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, result.stderr
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "bad"),
    [
        *((["preview_digest", "reader@example.org"], bad) for bad in BAD_DATES),
        (["send_digests"], BAD_DATES[0]),
        (["ingest", "hf"], BAD_DATES[2]),
    ],
    ids=[*(f"preview_digest-{bad}" for bad in BAD_DATES), "send_digests", "ingest"],
)
def test_a_bad_date_is_one_line_and_exit_2(var: Path, command: list[str], bad: str) -> None:
    """Every command reads dates through one type (config.cli.date_arg): each bad date on
    one command, one on each of the others."""
    line = one_line_error(run(var, *command, "--date", bad), 2)
    assert f"{bad!r} is not a date: use YYYY-MM-DD" in line


def test_an_unknown_option_is_one_line_and_exit_2(var: Path) -> None:
    line = one_line_error(run(var, "ingest", "hf", "--bogus", "2026-01-05"), 2)
    assert "unrecognized arguments: --bogus" in line


def test_ingest_errors_name_the_file_once(var: Path, tmp_path: Path) -> None:
    line = one_line_error(run(var, "ingest", "jsonl", str(tmp_path)), 2)
    assert "is a folder" in line
    line = one_line_error(run(var, "ingest", "hf", "--file", "README.md", "--no-embed"), 1)
    assert line.count("README.md") == 1 and "not valid JSON" in line
    line = one_line_error(run(var, "ingest", "hf", "--file", "nothing.json"), 2)
    assert "nothing.json: no such file" in line


def test_subscribe_takes_topic_names_as_the_import_does(var: Path) -> None:
    done = run(var, "subscribe", "named@example.org", "--topic", "Agents and tool use")
    assert done.returncode == 0, done.stderr
    done = run(var, "subscribe", "slugged@example.org", "--topic", "AGENTS")
    assert done.returncode == 0, done.stderr
    line = one_line_error(run(var, "subscribe", "x@example.org", "--topic", "astrology"), 2)
    assert "unknown topic 'astrology'" in line


def test_an_unknown_reader_is_one_line_and_exit_1(var: Path) -> None:
    one_line_error(run(var, "preview_digest", "nobody@example.org"), 1)


def test_a_closed_pipe_ends_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    class Shouting(cli.Command):
        requires_system_checks: list[str] = []

        def handle(self, *args: Any, **options: Any) -> None:
            raise BrokenPipeError

    with pytest.raises(SystemExit) as exit_:
        Shouting().run_from_argv(["manage.py", "shouting"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == ""


@pytest.mark.django_db
def test_a_failed_run_logs_its_date_not_a_tuple(caplog: pytest.LogCaptureFixture) -> None:
    def offline() -> Any:
        raise SourceError("connection refused, after 5 attempts")

    with caplog.at_level(logging.WARNING, logger="papers.ingest"):
        ingest_run(source=Source.HF, fetch=offline, window=(date(2026, 1, 5), date(2026, 1, 5)))
    assert "ingest hf 2026-01-05 failed: connection refused" in caplog.text
    assert "datetime.date(" not in caplog.text
