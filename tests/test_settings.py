"""Configuration from the environment, checked in a fresh process as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x7Qm2pZr9LkV4sWn8TbY1cHd6FgJ3eUa5RiOo0PlMqNvXwZs2Kt",
    "DJANGO_ALLOWED_HOSTS": "papers.example.org",
    "SITE_URL": "https://papers.example.org",
    "DATABASE_URL": "postgres://paperboy:secret@db:5432/paperboy",
    "REDIS_URL": "redis://redis:6379/0",
    "DEFAULT_FROM_EMAIL": "Paperboy <digest@papers.example.org>",
    "EMAIL_PROVIDER": "postmark",
    "ANYMAIL_POSTMARK_SERVER_TOKEN": "token",
    "ANYMAIL_WEBHOOK_SECRET": "user:secret",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    for name in ("DATABASE_URL", "REDIS_URL", "SITE_URL", "EMAIL_PROVIDER", "EMAIL_URL"):
        clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings() -> None:
    result = manage("check", "--deploy", env=PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize(
    ("missing", "check_id"),
    [
        ("DJANGO_SECRET_KEY", "paperboy.E001"),
        ("DJANGO_ALLOWED_HOSTS", "paperboy.E002"),
        ("SITE_URL", "paperboy.E003"),
        ("DATABASE_URL", "paperboy.E004"),
        ("REDIS_URL", "paperboy.E005"),
        ("DEFAULT_FROM_EMAIL", "paperboy.E006"),
        ("EMAIL_PROVIDER", "paperboy.E007"),
        ("ANYMAIL_WEBHOOK_SECRET", "paperboy.E010"),
    ],
)
def test_a_missing_production_variable_is_named(missing: str, check_id: str) -> None:
    env = {k: v for k, v in PRODUCTION.items() if k != missing}
    result = manage("check", "--deploy", env=env)
    assert result.returncode != 0
    assert f"({check_id}) {missing} is not set" in result.stderr
    assert f"Set {missing} in the environment." in result.stderr


def test_smtp_needs_an_email_url() -> None:
    result = manage("check", "--deploy", env={**PRODUCTION, "EMAIL_PROVIDER": "smtp"})
    assert "(paperboy.E008) EMAIL_URL is not set" in result.stderr


def test_an_unknown_provider_is_refused() -> None:
    result = manage("check", env={"EMAIL_PROVIDER": "carrier-pigeon"})
    assert "paperboy.E009" in result.stderr


def test_a_bad_boolean_is_refused() -> None:
    result = manage("check", env={"DJANGO_DEBUG": "maybe"})
    assert result.returncode != 0
    assert "DJANGO_DEBUG must be true or false, not 'maybe'" in result.stderr


def test_with_nothing_set_it_runs_on_sqlite_eagerly_with_a_file_outbox() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.DEBUG, s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, "
        "s.EMAIL_BACKEND, s.EMAIL_FILE_PATH)"
    )
    result = manage("shell", "-v", "0", "-c", code, env={})
    debug, engine, eager, backend, outbox = result.stdout.split()
    assert (debug, engine, eager) == ("True", "django.db.backends.sqlite3", "True")
    assert backend == "newsletter.outbox.EmlFileBackend"
    assert outbox.endswith("var/outbox")


def test_email_url_configures_smtp() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
        "s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL)"
    )
    env = {"EMAIL_PROVIDER": "smtp", "EMAIL_URL": "smtp://me%40x.org:p%2Fw@mail.x.org:587?tls=1"}
    result = manage("shell", "-v", "0", "-c", code, env=env)
    assert result.stdout.split() == [
        "newsletter.smtp.EmailBackend",
        "mail.x.org",
        "587",
        "me@x.org",
        "p/w",
        "True",
        "False",
    ]


def test_secrets_can_come_from_files(tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "secret"
    secret.write_text(PRODUCTION["DJANGO_SECRET_KEY"] + "\n")
    env = {k: v for k, v in PRODUCTION.items() if k != "DJANGO_SECRET_KEY"}
    result = manage("check", "--deploy", env={**env, "DJANGO_SECRET_KEY_FILE": str(secret)})
    assert result.returncode == 0, result.stderr


def test_a_webhook_behind_an_smtp_relay_needs_its_secret() -> None:
    env = {**PRODUCTION, "EMAIL_PROVIDER": "smtp", "EMAIL_URL": "smtp://relay.example.org"}
    assert manage("check", "--deploy", env=env).returncode == 0  # no webhook mounted
    relay = {k: v for k, v in env.items() if k != "ANYMAIL_WEBHOOK_SECRET"}
    result = manage("check", env={**relay, "PAPERBOY_WEBHOOK_PROVIDER": "mailgun"})
    assert "(paperboy.E010) ANYMAIL_WEBHOOK_SECRET is not set" in result.stderr
    assert "(paperboy.E010) ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY is not set" in result.stderr
    result = manage("check", env={**relay, "PAPERBOY_WEBHOOK_PROVIDER": "pigeon"})
    assert "paperboy.E011" in result.stderr
