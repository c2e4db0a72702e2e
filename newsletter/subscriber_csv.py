"""Subscribers to and from CSV: the admin's export and import.

Export streams rows (a few queries per thousand subscribers, whatever their number).
Import reads a whole file, checks every row, then writes all the valid rows in one
transaction with a fixed number of queries per batch; a dry run does the same checks
and writes nothing. Cells that a spreadsheet would take for a formula are written with
a leading apostrophe, which import strips again, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from newsletter.addresses import BadAddress, address_clean
from newsletter.models import (
    LAST_HOUR,
    Subscriber,
    Topic,
    topic_keys,
    validate_authors,
    validate_interests,
)

EXPORT_COLUMNS = (
    "email",
    "status",
    "topics",
    "keywords",
    "authors",
    "frequency",
    "send_hour",
    "timezone",
    "created",
    "consent_at",
)
IMPORT_COLUMNS = ("email", "topics", "keywords", "authors", "frequency", "send_hour", "timezone")
LIST_SEPARATOR = ";"  # between topics, and between authors
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_CHUNK = 2000
IMPORT_MAX_BYTES = 2 * 1024 * 1024
IMPORT_MAX_ROWS = 20_000
LOOKUP_BATCH = 1000


def spreadsheet_safe(value: str) -> str:
    """Keep spreadsheets from running a cell as a formula (CSV injection)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _unquote(value: str) -> str:
    value = value.strip()
    return value[1:] if value[:1] == "'" and value[1:].startswith(FORMULA_START) else value


class _Echo:
    """A file-like object whose write() hands the line back, for streaming."""

    def write(self, value: str) -> str:
        return value


def export_rows(subscribers: QuerySet[Subscriber]) -> Iterator[list[str]]:
    """The header, then one row per subscriber (topics as slugs, authors, each list
    separated by semicolons; times in ISO 8601, UTC)."""
    yield list(EXPORT_COLUMNS)
    topics = Prefetch("topics", queryset=Topic.objects.order_by("slug").only("slug"))
    rows = subscribers.order_by("pk").prefetch_related(topics)
    for s in rows.iterator(chunk_size=EXPORT_CHUNK):
        yield [
            spreadsheet_safe(value)
            for value in (
                s.email,
                s.status,
                LIST_SEPARATOR.join(t.slug for t in s.topics.all()),
                s.keywords,
                LIST_SEPARATOR.join(s.authors),
                s.frequency,
                str(s.send_hour),
                s.timezone,
                s.created.isoformat(),
                s.consent_at.isoformat() if s.consent_at else "",
            )
        ]


def export_lines(subscribers: QuerySet[Subscriber]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    for row in export_rows(subscribers):
        yield writer.writerow(row)


class ImportProblem(ValueError):
    """The file as a whole cannot be read: nothing in it was checked or written."""


@dataclass
class RowOutcome:
    """What import does (or, in a dry run, would do) with one line of the file."""

    line: int
    email: str
    action: str  # "create", "update", "skip" or "error"
    notes: list[str] = field(default_factory=list)  # errors, changes or why it is skipped


@dataclass
class ImportReport:
    rows: list[RowOutcome]
    dry_run: bool
    consented: bool
    ignored_columns: list[str] = field(default_factory=list)
    created_ids: list[int] = field(default_factory=list)
    updated_ids: list[int] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def created(self) -> int:
        return self.count("create")

    @property
    def updated(self) -> int:
        return self.count("update")

    @property
    def skipped(self) -> int:
        return self.count("skip")

    @property
    def errors(self) -> int:
        return self.count("error")


@dataclass
class _Line:
    number: int  # in the file, the header being line 1 (a spreadsheet's row number)
    cells: dict[str, str]
    overflow: bool  # more cells than the header has columns


@dataclass
class _Row:
    """A checked line: the address and the values its non-empty cells give."""

    outcome: RowOutcome
    values: dict[str, Any]
    topic_ids: set[int] | None  # None: the topics cell was empty


def import_read(data: bytes) -> tuple[list[_Line], list[str]]:
    """The file's non-blank data lines and the columns it has that import does not
    use. Raises ImportProblem for a file that cannot be read."""
    if len(data) > IMPORT_MAX_BYTES:
        raise ImportProblem(f"The file is over {IMPORT_MAX_BYTES // 1024 // 1024} MB; split it.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportProblem("The file is not UTF-8 text; save it as CSV UTF-8.") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [_column(name) for name in next(reader, [])]
        if "email" not in header and any(";" in name for name in header):
            raise ImportProblem(
                "The columns seem to be separated by semicolons: save the file as "
                "comma-separated CSV (semicolons only go between topics or authors)."
            )
        if "email" not in header:
            raise ImportProblem(
                "The first line must name the columns and one of them must be email "
                "(for example: email,topics,frequency)."
            )
        repeated = sorted({name for name in header if name and header.count(name) > 1})
        if repeated:
            raise ImportProblem(f"The column {', '.join(repeated)} appears twice.")
        lines: list[_Line] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if len(lines) == IMPORT_MAX_ROWS:
                raise ImportProblem(f"The file has over {IMPORT_MAX_ROWS:,} rows; split it.")
            overflow = len(cells) > len(header) and any(c.strip() for c in cells[len(header) :])
            lines.append(_Line(reader.line_num, dict(zip(header, cells, strict=False)), overflow))
    except csv.Error as exc:
        raise ImportProblem(f"Line {reader.line_num}: {exc}.") from None
    ignored = [name for name in header if name not in IMPORT_COLUMNS]
    return lines, ignored


def _column(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").split())


class _Checker:
    """Checks cells against the catalogue, loaded once per file."""

    def __init__(self) -> None:
        self.topics = topic_keys()
        self.zones = {name.casefold(): name for name in zoneinfo.available_timezones()}

    def row(self, line: _Line) -> _Row:
        errors: list[str] = []
        if line.overflow:
            errors.append("more cells than the header has columns")
        cells = {k: _unquote(v) for k, v in line.cells.items() if k in IMPORT_COLUMNS}
        cells = {k: v for k, v in cells.items() if v}
        email = self.email(cells.get("email", ""), errors)
        values: dict[str, Any] = {}
        for name, check in (
            ("keywords", self.keywords),
            ("authors", self.authors),
            ("frequency", self.frequency),
            ("send_hour", self.send_hour),
            ("timezone", self.timezone),
        ):
            if cells.get(name):
                values[name] = check(cells[name], errors)
        topic_ids = self.topic_ids(cells["topics"], errors) if cells.get("topics") else None
        outcome = RowOutcome(line.number, email or cells.get("email", ""), "", errors)
        if errors:
            outcome.action = "error"
        return _Row(outcome, values, topic_ids)

    def email(self, raw: str, errors: list[str]) -> str:
        if not raw:
            errors.append("no email address")
            return ""
        try:
            return address_clean(raw)
        except BadAddress as exc:
            errors.append(f"{raw!r} is not a valid email address: {exc}")
            return ""

    def topic_ids(self, raw: str, errors: list[str]) -> set[int]:
        ids = set()
        for name in filter(None, (t.strip() for t in raw.split(LIST_SEPARATOR))):
            pk = self.topics.get(name.casefold())
            if pk is None:
                errors.append(f"unknown topic {name!r} (use a slug or a name from Topics)")
            else:
                ids.add(pk)
        return ids

    def keywords(self, raw: str, errors: list[str]) -> str:
        _check(validate_interests, raw, errors)
        return raw

    def authors(self, raw: str, errors: list[str]) -> list[str]:
        names = [" ".join(n.split()) for n in raw.split(LIST_SEPARATOR)]
        names = list(dict.fromkeys(n for n in names if n))
        _check(validate_authors, names, errors)
        return names

    def frequency(self, raw: str, errors: list[str]) -> str:
        value = raw.lower()
        if value not in Subscriber.Frequency.values:
            errors.append(f"frequency must be daily or weekly, not {raw!r}")
        return value

    def send_hour(self, raw: str, errors: list[str]) -> int:
        hour = raw.removesuffix(":00")
        if not (hour.isdigit() and 0 <= int(hour) <= LAST_HOUR):
            errors.append(f"send_hour must be a whole hour from 0 to {LAST_HOUR}, not {raw!r}")
            return 0
        return int(hour)

    def timezone(self, raw: str, errors: list[str]) -> str:
        zone = self.zones.get(raw.casefold())
        if zone is None:
            errors.append(f"unknown time zone {raw!r} (use a name like Europe/Paris)")
        return zone or raw


def _check(validator: Callable[[Any], None], value: Any, errors: list[str]) -> None:
    """A preference checked by the model's own validator; its message on the row."""
    try:
        validator(value)
    except ValidationError as exc:
        errors.extend(exc.messages)


def _existing(emails: list[str]) -> dict[str, Subscriber]:
    """The subscribers already holding these addresses (compared lower-case, as the
    unique index does), with their topics: two queries per thousand addresses."""
    found: dict[str, Subscriber] = {}
    for i in range(0, len(emails), LOOKUP_BATCH):
        batch = Subscriber.objects.annotate(email_lower=Lower("email")).filter(
            email_lower__in=emails[i : i + LOOKUP_BATCH]
        )
        found.update((s.email.lower(), s) for s in batch.prefetch_related("topics"))
    return found


def _plan(row: _Row, current: Subscriber | None, consented: bool) -> None:
    """Decide what the row does: create, update (and what changes) or skip (and why)."""
    outcome = row.outcome
    if current is None:
        outcome.action = "create"
        outcome.notes = ["active: consent given" if consented else "pending: confirmation email"]
        return
    if current.status not in Subscriber.REACHABLE:  # never those who left or bounced
        outcome.action = "skip"
        outcome.notes = [
            f"{current.get_status_display().lower()}: left alone "
            "(an import never resubscribes anyone)"
        ]
        return
    changes = [name for name, value in row.values.items() if getattr(current, name) != value]
    if row.topic_ids is not None and row.topic_ids != {t.pk for t in current.topics.all()}:
        changes.append("topics")
    if consented and current.status == Subscriber.Status.PENDING:
        changes.append("status: active, consent given")
    outcome.action = "update" if changes else "skip"
    outcome.notes = [", ".join(changes)] if changes else ["already up to date"]


def subscribers_import(*, data: bytes, consented: bool, dry_run: bool) -> ImportReport:
    """Check every line of a CSV file of subscribers and, unless ``dry_run``, write the
    valid ones.

    1. Read the header (``email`` required; ``topics``, ``keywords``, ``authors``,
       ``frequency``, ``send_hour``, ``timezone`` used; other columns ignored).
    2. Check each line's cells: a bad cell makes the line an error, never imported.
       A second line for an address already in the file is an error too.
    3. Compare with the subscribers already there (empty cells leave a value as it
       is): a new address is created, pending (it gets a confirmation email) or, with
       ``consented``, active with ``consent_at`` now; an active, pending or paused one
       is updated (a pending one activated with ``consented``); anyone else
       (unsubscribed, bounced, complained, deleted) is skipped.
    4. Unless ``dry_run``, write creations and updates in one transaction. The caller
       queues confirmation emails for ``created_ids`` once it has committed.
    """
    lines, ignored = import_read(data)
    checker = _Checker()
    rows = [checker.row(line) for line in lines]
    first_line: dict[str, int] = {}
    for row in rows:
        email = row.outcome.email if row.outcome.action != "error" else ""
        if email in first_line:
            row.outcome.action = "error"
            row.outcome.notes.append(f"{email} is already on line {first_line[email]}")
        elif email:
            first_line[email] = row.outcome.line
    valid = [row for row in rows if row.outcome.action != "error"]
    existing = _existing([row.outcome.email for row in valid])
    for row in valid:
        _plan(row, existing.get(row.outcome.email), consented)
    report = ImportReport(
        rows=[row.outcome for row in rows],
        dry_run=dry_run,
        consented=consented,
        ignored_columns=ignored,
    )
    if not dry_run:
        _write(report, valid, existing, consented)
    return report


def _write(
    report: ImportReport, rows: list[_Row], existing: dict[str, Subscriber], consented: bool
) -> None:
    now = timezone.now()
    status = Subscriber.Status.ACTIVE if consented else Subscriber.Status.PENDING
    new = [
        (
            Subscriber(
                email=row.outcome.email,
                status=status,
                consent_at=now if consented else None,
                created=now,
                updated=now,
            ),
            row,
        )
        for row in rows
        if row.outcome.action == "create"
    ]
    changed = [(existing[row.outcome.email], row) for row in rows if row.outcome.action == "update"]
    fields = {"updated"}
    for subscriber, row in new + changed:
        for name, value in row.values.items():
            setattr(subscriber, name, value)
            fields.add(name)
        subscriber.updated = now
    for subscriber, _ in changed:
        if consented and subscriber.status == Subscriber.Status.PENDING:
            subscriber.status, subscriber.consent_at = Subscriber.Status.ACTIVE, now
            fields |= {"status", "consent_at"}
    try:
        with transaction.atomic():
            Subscriber.objects.bulk_create([s for s, _ in new], batch_size=LOOKUP_BATCH)
            Subscriber.objects.bulk_update(
                [s for s, _ in changed], sorted(fields), batch_size=LOOKUP_BATCH
            )
            _set_topics((s.pk, row.topic_ids) for s, row in new + changed)
    except IntegrityError:
        raise ImportProblem(
            "Some of these addresses signed up while the import ran; nothing was imported. "
            "Run the import again."
        ) from None
    report.created_ids = [s.pk for s, _ in new]
    report.updated_ids = [s.pk for s, _ in changed]


def _set_topics(pairs: Iterable[tuple[int, set[int] | None]]) -> None:
    through = Subscriber.topics.through
    given = {pk: ids for pk, ids in pairs if ids is not None}
    through.objects.filter(subscriber_id__in=list(given)).delete()
    through.objects.bulk_create(
        [through(subscriber_id=pk, topic_id=t) for pk, ids in given.items() for t in ids],
        batch_size=LOOKUP_BATCH,
    )
