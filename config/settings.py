"""Paperboy settings: one file, driven by the environment.

With nothing set it runs on SQLite under ``var/``, runs Celery tasks eagerly and writes
emails to ``var/outbox/``. ``deploy/.env.example`` lists every variable. Missing or bad
production settings are reported by the system checks in ``newsletter/checks.py``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import dj_database_url
from celery.schedules import crontab
from jinja2 import StrictUndefined

from config.env import ConfigError, envbool, envfloat, envint, envlist, envraw, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("PAPERBOY_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # SQLite and the outbox live here by default

# pytest sets PYTEST_VERSION while it runs: the suite uses TEST_DATABASE_URL (or SQLite)
# and runs Celery tasks eagerly unless a test asks for a real worker.
TESTING = "PYTEST_VERSION" in os.environ

DEBUG = envbool("DJANGO_DEBUG", True)
# Placeholder only; the system check paperboy.E001 refuses it when DEBUG is off.
INSECURE_SECRET_KEY = "dev-only-insecure-key-set-DJANGO_SECRET_KEY-in-production"  # noqa: S105
SECRET_KEY = envstr("DJANGO_SECRET_KEY", INSECURE_SECRET_KEY)

SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
SITE_NAME = envstr("PAPERBOY_SITE_NAME", "Paperboy")
_site = urlsplit(SITE_URL)
SITE_DOMAIN = _site.hostname or "localhost"

ALLOWED_HOSTS = envlist(
    "DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = [f"{_site.scheme}://{_site.netloc}"]

INSTALLED_APPS = [
    "config.apps.PaperboyAdminConfig",  # django.contrib.admin with Paperboy's site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "anymail",
    "papers",
    "newsletter",
]

MIDDLEWARE = [
    "newsletter.middleware.ProxyHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "newsletter.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

# Pages and the admin use Django templates; emails use two Jinja2 engines, one that
# escapes HTML and one for plain text. StrictUndefined: a missing variable fails in
# tests, not in somebody's inbox.
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "newsletter.context_processors.site",
            ],
        },
    },
    {
        "NAME": "email_html",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"autoescape": True, "undefined": StrictUndefined},
    },
    {
        "NAME": "email_text",
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {
            "autoescape": False,
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        },
    },
]

# Database ----------------------------------------------------------------------------
_sqlite_url = f"sqlite:///{VAR_DIR / 'paperboy.sqlite3'}"
if TESTING:
    _database_url = envstr("TEST_DATABASE_URL", f"sqlite:///{VAR_DIR / 'test.sqlite3'}")
else:
    _database_url = envstr("DATABASE_URL", _sqlite_url)
DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 20}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True  # the Django 6 default, for the admin's URL fields

# Redis: Celery broker and the cache (rate limits, locks) --------------------------------
REDIS_URL = envstr("REDIS_URL")
if REDIS_URL and not TESTING:
    CACHES = {
        "default": {
            "BACKEND": "config.cache.RedisCache",  # one client per pool, not per call
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "paperboy",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL or TESTING
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A worker takes a task only when a process is free to run it: a task waiting in a
# worker's hands holds no lease, and a SIGKILL would strand it until the broker's
# visibility timeout. A running send task holds its deliveries under a lease instead.
CELERY_WORKER_DISABLE_PREFETCH = True
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 300)
# A task that is not acknowledged within this many seconds is handed to another worker;
# every retry countdown stays well under it.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Beat runs the delivery recovery this often (seconds): leases that ran out, send tasks
# lost with the queue, unknown outcomes to send again.
PAPERBOY_RECOVER_EVERY = envfloat("PAPERBOY_RECOVER_EVERY", 30)
CELERY_BEAT_SCHEDULE = {
    # Fetch today's and yesterday's Hugging Face daily papers, so upvotes stay fresh.
    "ingest-hf-hourly": {
        "task": "papers.tasks.ingest_hf_recent",
        "schedule": crontab(minute=7),
        "options": {"expires": 50 * 60},
    },
    # Fetch the last three days of arXiv submissions in the configured categories.
    "ingest-arxiv-daily": {
        "task": "papers.tasks.ingest_arxiv_recent",
        "schedule": crontab(hour=2, minute=17),
        "options": {"expires": 6 * 60 * 60},
    },
    # Send again what a dead worker held (its lease ran out), what was planned but whose
    # send task was lost (a Redis that restarted empty), and unknown outcomes.
    "recover-deliveries": {
        "task": "newsletter.tasks.recover_deliveries",
        "schedule": PAPERBOY_RECOVER_EVERY,
        "options": {"expires": max(1.0, PAPERBOY_RECOVER_EVERY - 1)},
    },
    # Plan the digests of readers whose local send hour has come, then fan out sending.
    "plan-due-digests": {
        "task": "newsletter.tasks.plan_due_digests",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    # Send the confirmation emails still owed: web processes ask for a send soon after
    # each signup, and this sweep catches any whose request was lost or whose send met
    # a provider outage.
    "send-due-confirmations": {
        "task": "newsletter.tasks.send_due_confirmations",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    # Delete signups never confirmed within PAPERBOY_CONFIRM_MAX_AGE_DAYS.
    "expire-pending-signups": {
        "task": "newsletter.tasks.expire_pending_signups",
        "schedule": crontab(hour=3, minute=41),
        "options": {"expires": 6 * 60 * 60},
    },
}

# Email -------------------------------------------------------------------------------
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", f"{SITE_NAME} <digest@{SITE_DOMAIN}>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_PROVIDER = envstr("EMAIL_PROVIDER", "file").lower()
EMAIL_FILE_PATH = str(VAR_DIR / "outbox")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 30)
ANYMAIL: dict[str, str] = {
    name.removeprefix("ANYMAIL_").removesuffix("_FILE"): envraw(name.removesuffix("_FILE")) or ""
    for name in os.environ
    if name.startswith("ANYMAIL_")
}
ANYMAIL_WEBHOOK_SECRET = envstr("ANYMAIL_WEBHOOK_SECRET")
# The one provider whose tracking webhook is mounted (/anymail/<provider>/tracking/):
# the ESP sending the mail, or, with smtp through an ESP's relay, that ESP. Empty: none.
PAPERBOY_WEBHOOK_PROVIDER = envstr(
    "PAPERBOY_WEBHOOK_PROVIDER",
    "" if EMAIL_PROVIDER in ("file", "console", "smtp") else EMAIL_PROVIDER,
).lower()
PAPERBOY_WEBHOOK_MAX_BYTES = envint("PAPERBOY_WEBHOOK_MAX_BYTES", 1024 * 1024)


def _email_backend(provider: str) -> str:
    if provider == "file":
        return "newsletter.outbox.EmlFileBackend"
    if provider == "console":
        return "django.core.mail.backends.console.EmailBackend"
    if provider == "smtp":
        return "newsletter.smtp.EmailBackend"
    return f"anymail.backends.{provider}.EmailBackend"


EMAIL_BACKEND = _email_backend(EMAIL_PROVIDER)
EMAIL_URL = envstr("EMAIL_URL")
if EMAIL_URL:
    _mail = urlsplit(EMAIL_URL)
    _mail_options = parse_qs(_mail.query)
    EMAIL_HOST = _mail.hostname or "localhost"
    EMAIL_PORT = _mail.port or 25
    EMAIL_HOST_USER = unquote(_mail.username or "")
    EMAIL_HOST_PASSWORD = unquote(_mail.password or "")
    EMAIL_USE_TLS = _mail_options.get("tls", ["0"])[0] in ("1", "true")
    EMAIL_USE_SSL = _mail_options.get("ssl", ["0"])[0] in ("1", "true")

# Digests -----------------------------------------------------------------------------
PAPERBOY_POSTAL_ADDRESS = envstr("PAPERBOY_POSTAL_ADDRESS")
PAPERBOY_SEND_CHUNK = envint("PAPERBOY_SEND_CHUNK", 50)
PAPERBOY_PLAN_CHUNK = envint("PAPERBOY_PLAN_CHUNK", 5000)
PAPERBOY_SOFT_BOUNCE_LIMIT = envint("PAPERBOY_SOFT_BOUNCE_LIMIT", 3)
# Messages per second across all workers together (0: as fast as the provider takes).
PAPERBOY_SEND_RATE = envfloat("PAPERBOY_SEND_RATE", 0)
# A message refused with a transient error (4xx) is tried again in the same chunk after
# the others, up to this many times, the first after about this many seconds (doubling,
# with jitter); what still fails goes back to the queue.
PAPERBOY_SEND_QUICK_RETRIES = envint("PAPERBOY_SEND_QUICK_RETRIES", 2)
PAPERBOY_SEND_QUICK_RETRY_DELAY = envfloat("PAPERBOY_SEND_QUICK_RETRY_DELAY", 0.5)
# Back on the queue: a few failures wait up to this many seconds; an outage (the provider
# cannot be reached) waits up to this, doubling each time, capped at 2 minutes.
PAPERBOY_SEND_RETRY_BASE = envfloat("PAPERBOY_SEND_RETRY_BASE", 15)
# A delivery still refused for now this many seconds after it was planned fails, with
# its last reason (a digest a day late is stale).
PAPERBOY_SEND_GIVE_UP_AFTER = envint("PAPERBOY_SEND_GIVE_UP_AFTER", 24 * 3600)
# A provider's throttling answer (SMTP 421 or 454, HTTP 429) pauses every worker this
# many seconds, doubling while it goes on, at most 30.
PAPERBOY_SEND_THROTTLE_PAUSE = envfloat("PAPERBOY_SEND_THROTTLE_PAUSE", 2)
# A worker holds its chunk's deliveries for this many seconds, renewed every third of it
# while it sends (at least two mail timeouts: a send that hangs never outlives it). When
# the lease runs out (the worker died), recovery sends them again.
PAPERBOY_SEND_LEASE = envint("PAPERBOY_SEND_LEASE", 2 * EMAIL_TIMEOUT + 30)
# A planned delivery whose send task never reached the queue is queued after this long.
PAPERBOY_QUEUE_GRACE = envint("PAPERBOY_QUEUE_GRACE", 300)
# A send whose answer was lost (the connection dropped after the message went out) and
# that no provider event settles is sent again, with the same Message-ID, this many
# seconds later, at most this many times. With a tracking webhook the provider's event
# usually settles it first, so the wait is longer.
PAPERBOY_UNKNOWN_RESEND_AFTER = envint(
    "PAPERBOY_UNKNOWN_RESEND_AFTER", 3600 if PAPERBOY_WEBHOOK_PROVIDER else 120
)
PAPERBOY_UNKNOWN_RESENDS = envint("PAPERBOY_UNKNOWN_RESENDS", 2)
# Confirmation links work this many days; signups never confirmed are deleted after it.
PAPERBOY_CONFIRM_MAX_AGE_DAYS = envint("PAPERBOY_CONFIRM_MAX_AGE_DAYS", 7)
# Public forms (signup, a fresh confirmation link, "email me my link"): a form sent back
# faster than this many seconds after it was shown is treated as a bot's (no error shown,
# nothing done); posts per client IP and per email address (COUNT/PERIOD, the period
# in s, m, h or d: "20/h", "10/15m"); confirmation emails to one address per day.
PAPERBOY_MIN_SUBMIT_SECONDS = envint("PAPERBOY_MIN_SUBMIT_SECONDS", 2)
# Every accepted or quietly ignored post of a public form (signup, "email me my link", a
# fresh confirmation link) is answered no sooner than this after it arrived, so the
# time it takes never tells a known address from an unknown one. (0 in the test suite,
# whose timing tests set it.)
PAPERBOY_FORM_ANSWER_SECONDS = envfloat("PAPERBOY_FORM_ANSWER_SECONDS", 0.0 if TESTING else 0.15)
PAPERBOY_FORM_RATE_PER_IP = envstr("PAPERBOY_FORM_RATE_PER_IP", "20/h")
# IPv6 clients also count per /48 (one site's allocation): rotating /64s inside it ends here.
PAPERBOY_FORM_RATE_PER_NETWORK = envstr("PAPERBOY_FORM_RATE_PER_NETWORK", "60/h")
PAPERBOY_FORM_RATE_PER_ADDRESS = envstr("PAPERBOY_FORM_RATE_PER_ADDRESS", "5/h")
PAPERBOY_CONFIRMATIONS_PER_DAY = envint("PAPERBOY_CONFIRMATIONS_PER_DAY", 3)
# Sources: where they are and how politely to ask (seconds between requests).
PAPERBOY_HF_API_URL = envstr("PAPERBOY_HF_API_URL", "https://huggingface.co/api/daily_papers")
PAPERBOY_HF_MIN_INTERVAL = float(envstr("PAPERBOY_HF_MIN_INTERVAL", "1.0"))
PAPERBOY_ARXIV_API_URL = envstr("PAPERBOY_ARXIV_API_URL", "https://export.arxiv.org/api/query")
PAPERBOY_ARXIV_MIN_INTERVAL = float(envstr("PAPERBOY_ARXIV_MIN_INTERVAL", "3.0"))
PAPERBOY_ARXIV_CATEGORIES = envlist(
    "PAPERBOY_ARXIV_CATEGORIES", ["cs.LG", "cs.CL", "cs.CV", "cs.AI"]
)
# Semantic matching: the sentence-embedding model (the bundled all-MiniLM-L6-v2, or a
# directory with an ONNX export), and the prefix some models want before a query.
PAPERBOY_EMBEDDING_MODEL = envstr("PAPERBOY_EMBEDDING_MODEL", "all-MiniLM-L6-v2")
PAPERBOY_EMBEDDING_QUERY_PREFIX = os.environ.get("PAPERBOY_EMBEDDING_QUERY_PREFIX", "")

# Auth, i18n, static ------------------------------------------------------------------
# Failed admin logins allowed per client IP and per username in a window, as
# COUNT/PERIOD with a period in s, m, h or d ("10/15m": 10 every 15 minutes); then 429.
PAPERBOY_ADMIN_LOGIN_RATE = envstr("PAPERBOY_ADMIN_LOGIN_RATE", "10/15m")
for _name in (
    "PAPERBOY_ADMIN_LOGIN_RATE",
    "PAPERBOY_FORM_RATE_PER_IP",
    "PAPERBOY_FORM_RATE_PER_NETWORK",
    "PAPERBOY_FORM_RATE_PER_ADDRESS",
):
    if not re.fullmatch(r"[1-9][0-9]*/([1-9][0-9]*)?[smhd]", globals()[_name]):
        raise ConfigError(
            f"{_name} must be COUNT/PERIOD such as 10/15m or 20/h, not {globals()[_name]!r}"
        )
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security: strict whenever DEBUG is off ---------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# A form sent without its CSRF cookie or token: a page that says what to do, still 403.
CSRF_FAILURE_VIEW = "newsletter.views.csrf_failure"
# Behind the TLS-terminating proxy, a client's address is the last hop of X-Forwarded-For
# (newsletter.abuse.client_ip); otherwise REMOTE_ADDR, and the header is not trusted.
PAPERBOY_BEHIND_PROXY = not DEBUG and envbool("DJANGO_BEHIND_PROXY", True)
# The proxies whose X-Forwarded-* headers are believed (addresses or networks): from
# any other peer those headers are dropped, so a client that reaches gunicorn directly
# cannot pick its own address or claim https.
PAPERBOY_TRUSTED_PROXIES = envlist("DJANGO_TRUSTED_PROXIES", ["127.0.0.1", "::1"])
for _proxy in PAPERBOY_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ConfigError(
            f"DJANGO_TRUSTED_PROXIES: {_proxy!r} is not an IP address or network"
        ) from None
if not DEBUG:
    SECURE_SSL_REDIRECT = envbool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = envbool("DJANGO_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if PAPERBOY_BEHIND_PROXY:
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        # Rate limits per client IP: the address the proxy saw, not the proxy's own.
        RATELIMIT_IP_META_KEY = "newsletter.abuse.client_ip"
        SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},  # a line per request: the sources log what matters
        "pylatexenc": {"level": "WARNING"},  # it reports every tolerated parse error
    },
}
