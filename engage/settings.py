"""Engage settings: the only module that reads the environment.

Every variable is documented in ``.env.example``. A ``.env`` file in the project root is read
when present; the process environment wins over it. Without ``DATABASE_URL`` and ``REDIS_URL``
the embedded PostgreSQL and Redis under ``./var/`` are used (``scripts/run`` and
``scripts/test`` start them; see ``engage/embedded.py``). Values are checked when a process
starts (``engage/checks.py``): a missing key or a malformed URL stops it with a message
saying what to set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from engage.embedded import embedded_urls
from engage.env import LOG_LEVELS, database_from_url, env_bool, env_int, env_list, env_path, env_str, load_dotenv
from engage.keys import SECRET_KEY_FILE, TRACKING_KEYS_FILE, read_key_file
from mailcore.options import DEFAULTS as ENGAGEMENT_DEFAULTS

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env")
# Integer settings declare their range where they are read (env_int's minimum / maximum,
# inclusive); engage/checks.py checks every one at start-up (engage.E008). Durations are
# capped at ten years: past that, date arithmetic overflows instead of meaning anything.
_TEN_YEARS = 10 * 365 * 86400

DEBUG = env_bool("ENGAGE_DEBUG", False)
# Relative paths are relative to the project root, whatever the working directory.
ENGAGE_VAR_DIR = str(env_path("ENGAGE_VAR_DIR", BASE_DIR / "var", base=BASE_DIR))
# The secrets: configured, or else the random ones the first start of scripts/run or
# scripts/test made and keeps under ENGAGE_VAR_DIR (engage/keys.py). Never a constant: with
# neither, every process refuses to start and says how to make one (engage/checks.py).
SECRET_KEY = env_str("ENGAGE_SECRET_KEY") or read_key_file(Path(ENGAGE_VAR_DIR) / SECRET_KEY_FILE)
# Comma-separated "kid:secret" pairs; the LAST one signs, all verify (rotate by appending).
ENGAGE_TRACKING_KEYS = env_list("ENGAGE_TRACKING_KEYS", []) or [
    entry.strip() for entry in read_key_file(Path(ENGAGE_VAR_DIR) / TRACKING_KEYS_FILE).split(",") if entry.strip()
]
ALLOWED_HOSTS = env_list("ENGAGE_ALLOWED_HOSTS", ["*"])

# Unset URLs mean the embedded default under ENGAGE_VAR_DIR (./var): scripts/run and
# scripts/test start it; its addresses are fixed by the folder (engage/embedded.py).
_embedded_database_url, _embedded_redis_url = embedded_urls(ENGAGE_VAR_DIR)
DATABASES = {"default": database_from_url(env_str("DATABASE_URL") or _embedded_database_url)}
REDIS_URL = env_str("REDIS_URL") or _embedded_redis_url

INSTALLED_APPS = [
    "engage",  # the start-up checks of every setting (engage/checks.py) and the key commands
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api_keys",
    "templates_app",
    "recipient_lists",
    "suppression",
    "consent",
    "transmissions",
    "tracking",
    "analytics",
    "smtp_injection",
    "console",
]

MIDDLEWARE = [
    "engage.api.middleware.ApiPathMiddleware",
    "engage.api.statement_timeout.ApiStatementTimeoutMiddleware",
    "engage.api.guards.UnstorableUrlMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# First, so its process_exception is the last asked (after the statement timeout's): a view's
# exception is the console's 404/400/500 page (JSON on /api/), never Django's debug page.
MIDDLEWARE.insert(0, "console.middleware.ErrorPagesMiddleware")
# A form whose CSRF check failed: a page that says what to do, not Django's (debug) one.
CSRF_FAILURE_VIEW = "console.views.errors.csrf_failure"
APPEND_SLASH = False

# The routes this web process serves: "all" (API, admin, report and tracking) or "tracking"
# (/f/ /q/ /u/ alone, a plain 404 elsewhere: the tracking processes of scripts/run and compose,
# so no API request takes a thread a click needs).
ENGAGE_SERVE = env_str("ENGAGE_SERVE", "all")
_URLCONFS = {"all": "engage.urls", "tracking": "engage.urls_tracking"}
if ENGAGE_SERVE not in _URLCONFS:
    raise ImproperlyConfigured(f"ENGAGE_SERVE={ENGAGE_SERVE!r} is not one of {', '.join(_URLCONFS)}")
ROOT_URLCONF = _URLCONFS[ENGAGE_SERVE]
# A tracking process answers cookie-less hits of mail clients and link checkers, each carrying
# a signed token: no sessions, auth, messages, CSRF (/u/ is csrf_exempt), static files or
# /api/ guards (its paths hold no data Engage stores). It keeps Host validation and plain
# error answers even under DEBUG (engage/urls_tracking.py), the security headers
# (nosniff, Referrer-Policy), Content-Length, and X-Frame-Options (the unsubscribe form).
# engage/wsgi.py's HttpFramingMiddleware (HEAD, chunked bodies) wraps every process.
TRACKING_MIDDLEWARE = [
    "engage.urls_tracking.PlainErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
if ENGAGE_SERVE == "tracking":
    MIDDLEWARE = TRACKING_MIDDLEWARE
    # The admin's checks ask for the session, auth and messages middleware; this process
    # routes no admin page (engage/urls_tracking.py), so they do not apply here.
    SILENCED_SYSTEM_CHECKS = ["admin.E408", "admin.E409", "admin.E410"]
    # PostgreSQL is only the fallback of a hit's events while Redis is down
    # (tracking/outbox.py): a hung server must cost a click seconds, not libpq's default
    # minutes (found by an attacker: 132 s with both hung). A URL's own connect_timeout wins.
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 2)
    DATABASES["default"]["OPTIONS"].setdefault("options", "-c statement_timeout=2000")
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # a fresh connection (bounded by that timeout) each time
WSGI_APPLICATION = "engage.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # engage/templates is found as the first app's (INSTALLED_APPS), ahead of the admin's: listed
        # in DIRS too, a template that extends its own name ("admin/base_site.html") was read twice.
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# Sign-in is the admin's page (staff_member_required sends there); a sign-in with no usable
# "next" (none, or another site's) lands on the console's overview, not Django's default
# /accounts/profile/, which Engage does not route.
LOGIN_URL = "admin:login"
LOGIN_REDIRECT_URL = "/"
# Logging out (the console's nav, the admin's header: both post to admin:logout) lands on that
# sign-in page, signing in again on the overview; not Django's "Thanks for spending some
# quality time" page, whose link leads to the admin.
LOGOUT_REDIRECT_URL = "/admin/login/?next=/"

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies: the API answers 413 past this many bytes (SparkPost documents 20 MB of
# content plus recipients; 300 MB is SparkPost cloud's hard limit).
ENGAGE_MAX_REQUEST_BYTES = env_int("ENGAGE_MAX_REQUEST_BYTES", 50 * 1024 * 1024, minimum=1024)
# Database statements run for an /api/ request are cancelled past this many milliseconds
# (engage/api/statement_timeout.py): 503 / 1502 saying so. Workers and beat run without it.
ENGAGE_API_STATEMENT_TIMEOUT_MS = env_int("ENGAGE_API_STATEMENT_TIMEOUT_MS", 30_000, minimum=1, maximum=3_600_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = ENGAGE_MAX_REQUEST_BYTES
ENGAGE_MAX_TEMPLATE_CONTENT_BYTES = env_int("ENGAGE_MAX_TEMPLATE_CONTENT_BYTES", 5 * 1024 * 1024, minimum=1024)
# Test sends from the template editor per signed-in user per minute (console/views/template_test_send.py);
# past it the editor says so and sends nothing.
ENGAGE_TEST_SENDS_PER_MINUTE = env_int("ENGAGE_TEST_SENDS_PER_MINUTE", 10, minimum=1, maximum=10_000)

# Requests per API key, DRF's rate syntax (<n>/second|minute|hour|day); 429 past it.
ENGAGE_API_RATE = env_str("ENGAGE_API_RATE", "100000/minute")
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["engage.api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["engage.api.auth.HasGrant"],
    "DEFAULT_PARSER_CLASSES": ["engage.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "engage.api.handler.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["engage.api.auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": ENGAGE_API_RATE},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# The OpenAPI document (engage/api/schema.py): made from the request declarations, served at
# /api/v1/openapi.json with a browsable page at /api/v1/docs (assets served locally).
SPECTACULAR_SETTINGS = {
    "TITLE": "Engage API",
    "DESCRIPTION": "SparkPost-compatible transmissions, templates, recipient lists, events, metrics and webhooks.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "OAS_VERSION": "3.1.0",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "engage.api.schema.public_descriptions"],
}

# The cache holds the API's rate counters and the console's test-send counters; both let a
# request through when Redis does not answer (engage.api.auth.ApiKeyRateThrottle). Without
# socket timeouts, a Redis that accepts connections and never answers held every API request
# forever; with them, each waits at most REDIS_CACHE_TIMEOUT seconds (a healthy Redis answers
# in well under a millisecond).
REDIS_CACHE_TIMEOUT = 1.0
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "engage",
        "OPTIONS": {"socket_timeout": REDIS_CACHE_TIMEOUT, "socket_connect_timeout": REDIS_CACHE_TIMEOUT},
    }
}

# Celery
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = False
# Webhook POSTs wait on other people's servers (up to ENGAGE_WEBHOOK_TIMEOUT per attempt):
# their own queue, served by their own worker, so a slow endpoint never holds up sending.
CELERY_TASK_ROUTES = {"analytics.webhook_batch_deliver": {"queue": "webhooks"}}
ENGAGE_TASK_VISIBILITY_TIMEOUT = env_int("ENGAGE_TASK_VISIBILITY_TIMEOUT", 300, minimum=1, maximum=_TEN_YEARS)
# Seconds the broker (Redis) has to answer a command, and to accept a connection, before the
# call fails (a kombu OperationalError). Without it, a Redis that accepts connections and never
# answers held a publish forever: the SMTP listener's queueing thread (and so its SIGTERM), a
# web request's on_commit enqueue. A publish is tried again twice, on a new connection, so it
# gives up within about four times this (3 s when the broker never answered at all, about
# 13 s against a Redis frozen mid-connection); what it was queueing is stored, and the
# scheduler starts it (transmissions.services.transmissions_due). At least 2: a worker's
# BRPOP waits 1 s.
ENGAGE_BROKER_TIMEOUT = env_int("ENGAGE_BROKER_TIMEOUT", 3, minimum=2, maximum=300)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": ENGAGE_TASK_VISIBILITY_TIMEOUT,
    "socket_timeout": ENGAGE_BROKER_TIMEOUT,
    "socket_connect_timeout": ENGAGE_BROKER_TIMEOUT,
}
# The time kombu spends retrying to open a channel (one attempt of ENGAGE_BROKER_TIMEOUT).
CELERY_BROKER_CONNECTION_TIMEOUT = ENGAGE_BROKER_TIMEOUT
# Celery's default tries a publish 4 times, each retry reconnecting (5 waits of the timeout
# against a frozen Redis). Two retries, 0.2 then 0.6 s apart, get past a connection lost
# mid-publish and a Redis restart of under a second (0.4 s down: published after 0.81 s; with
# one retry at once it failed and waited for the scheduler's minute: an attacker's finding).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.4, "interval_max": 0.6}

# Tracking (SPEC A.2)
ENGAGE_OPEN_TRACKING = env_bool("ENGAGE_OPEN_TRACKING", ENGAGEMENT_DEFAULTS["open_tracking"])
ENGAGE_CLICK_TRACKING = env_bool("ENGAGE_CLICK_TRACKING", ENGAGEMENT_DEFAULTS["click_tracking"])
ENGAGE_TRACKING_BASE_URL = env_str("ENGAGE_TRACKING_BASE_URL", "http://localhost:8000").rstrip("/")
ENGAGE_TRACKING_LINK_EXPIRY = env_int("ENGAGE_TRACKING_LINK_EXPIRY", 31536000, minimum=1, maximum=_TEN_YEARS)
ENGAGE_CLICK_TRACKING_INCLUDE_METADATA = env_bool("ENGAGE_CLICK_TRACKING_INCLUDE_METADATA", True)
ENGAGE_MAX_METADATA_LEN = env_int("ENGAGE_MAX_METADATA_LEN", 1000, minimum=0)
# Tracking consent (SPEC A.5): for a recipient neither the recipient object nor the register
# speaks for; granted (SparkPost's behaviour) or denied (engage.checks E014 checks it).
ENGAGE_TRACKING_CONSENT_DEFAULT = env_str("ENGAGE_TRACKING_CONSENT_DEFAULT", "granted").strip().lower()

# Sending (issue 4)
ENGAGE_RELAY_URL = env_str("ENGAGE_RELAY_URL", "smtp://127.0.0.1:1025")
ENGAGE_SCHEDULED_DELETE_WINDOW = env_int("ENGAGE_SCHEDULED_DELETE_WINDOW", 600, minimum=0, maximum=_TEN_YEARS)

# SMTP injection listener (issue 13, SPEC A.4, SMTP-INJECTION.md §5): `manage.py smtp_listen`.
ENGAGE_SMTP_HOST = env_str("ENGAGE_SMTP_HOST", "127.0.0.1")
ENGAGE_SMTP_PORT = env_int("ENGAGE_SMTP_PORT", 2525, minimum=0, maximum=65535)
# The name in the greeting, EHLO and Received (socket.getfqdn() can block: never called)
ENGAGE_SMTP_HOSTNAME = env_str("ENGAGE_SMTP_HOSTNAME", "localhost")
# PEM files; both unset: a self-signed pair made once under ENGAGE_VAR_DIR/smtp-tls/
ENGAGE_SMTP_TLS_CERT = env_str("ENGAGE_SMTP_TLS_CERT", "")
ENGAGE_SMTP_TLS_KEY = env_str("ENGAGE_SMTP_TLS_KEY", "")
# AUTH without STARTTLS: refused unless this is true AND the listener is bound to loopback
ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH = env_bool("ENGAGE_SMTP_ALLOW_PLAINTEXT_AUTH", False)
ENGAGE_SMTP_OPEN_TRACKING = env_bool("ENGAGE_SMTP_OPEN_TRACKING", False)
ENGAGE_SMTP_CLICK_TRACKING = env_bool("ENGAGE_SMTP_CLICK_TRACKING", False)
ENGAGE_SMTP_POLICY = env_str("ENGAGE_SMTP_POLICY", "")
ENGAGE_SMTP_POLICY_TIMEOUT = env_int("ENGAGE_SMTP_POLICY_TIMEOUT", 2, minimum=1, maximum=60)
# Limits (SMTP-INJECTION.md §5.10)
ENGAGE_SMTP_MAX_MESSAGE_SIZE = env_int("ENGAGE_SMTP_MAX_MESSAGE_SIZE", 20 * 1024 * 1024, minimum=1024, maximum=1024**3)
ENGAGE_SMTP_MAX_LINE_LENGTH = env_int("ENGAGE_SMTP_MAX_LINE_LENGTH", 65536, minimum=1001, maximum=1024 * 1024)
ENGAGE_SMTP_MAX_RCPTS = env_int("ENGAGE_SMTP_MAX_RCPTS", 1000, minimum=1, maximum=100_000)
ENGAGE_SMTP_MAX_CONNECTIONS = env_int("ENGAGE_SMTP_MAX_CONNECTIONS", 500, minimum=1, maximum=100_000)
ENGAGE_SMTP_MAX_CONNECTIONS_PER_KEY = env_int("ENGAGE_SMTP_MAX_CONNECTIONS_PER_KEY", 25, minimum=1, maximum=100_000)
ENGAGE_SMTP_MAX_CONNECTIONS_PER_IP = env_int("ENGAGE_SMTP_MAX_CONNECTIONS_PER_IP", 50, minimum=1, maximum=100_000)
ENGAGE_SMTP_TIMEOUT = env_int("ENGAGE_SMTP_TIMEOUT", 300, minimum=1, maximum=3600)
ENGAGE_SMTP_AUTH_ATTEMPTS = env_int("ENGAGE_SMTP_AUTH_ATTEMPTS", 3, minimum=1, maximum=100)
ENGAGE_SMTP_SHUTDOWN_GRACE = env_int("ENGAGE_SMTP_SHUTDOWN_GRACE", 30, minimum=0, maximum=3600)

# Development SMTP sink (scripts/run): where it stores what it receives.
ENGAGE_SINK_DIR = env_path("ENGAGE_SINK_DIR", BASE_DIR / "var" / "sink", base=BASE_DIR)

# A level name (DEBUG, INFO, WARNING, ERROR, CRITICAL; any case). An unknown one is
# engage.E011 at start-up; it is not handed to logging, whose dictConfig would fail inside
# django.setup() with a traceback before any check could name the variable.
ENGAGE_LOG_LEVEL = env_str("ENGAGE_LOG_LEVEL", "INFO")
_log_level = ENGAGE_LOG_LEVEL.strip().upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _log_level if _log_level in LOG_LEVELS else "INFO"},
    "loggers": {"django.request": {"level": "ERROR"}},
}

# Event buffer and tracking endpoints (tracking/events.py, tracking/views.py)
# Redis stream the events are buffered in, and the consumer group of the landers.
ENGAGE_EVENT_STREAM = env_str("ENGAGE_EVENT_STREAM", "engage:events")
ENGAGE_EVENT_GROUP = env_str("ENGAGE_EVENT_GROUP", "engage-landers")
# Entries a lander read but did not acknowledge for this long are taken over by another.
ENGAGE_EVENT_RECLAIM_MS = env_int("ENGAGE_EVENT_RECLAIM_MS", 30000, minimum=1000, maximum=_TEN_YEARS * 1000)
# Where a tracking process writes a hit's events when neither Redis nor PostgreSQL takes
# them (fsync'd; replayed into Redis when it answers: tracking/outbox.py). Give every
# tracking process and lander on one host the same directory.
ENGAGE_EVENT_SPOOL_DIR = str(env_path("ENGAGE_EVENT_SPOOL_DIR", Path(ENGAGE_VAR_DIR) / "spool", base=BASE_DIR))
# A tracking hit's events go to a file of that directory before the hit is answered, and a
# background thread moves them to Redis within 20 ms (tracking/hitlog.py); false: each hit
# waits for its own Redis round trip (tracking/outbox.py events_record).
ENGAGE_EVENT_HIT_LOG = env_bool("ENGAGE_EVENT_HIT_LOG", True)
# Take the client address of engagement events from the first X-Forwarded-For hop (only
# behind a proxy that sets it); otherwise REMOTE_ADDR.
ENGAGE_TRUST_X_FORWARDED_FOR = env_bool("ENGAGE_TRUST_X_FORWARDED_FOR", False)
# Route /bench/redirect (a bare Django redirect) for bench/click_redirect.py only.
ENGAGE_BENCH_ROUTES = env_bool("ENGAGE_BENCH_ROUTES", False)

CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    # Moves buffered events into PostgreSQL; each run lands for about a second.
    "tracking-land-events": {"task": "analytics.land_events", "schedule": 1.0, "options": {"expires": 5}},
    # Creates today's and tomorrow's event partitions ahead of the events.
    "tracking-event-partitions": {
        "task": "analytics.event_partitions",
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
}

# Transmissions: accepting, generating and sending (transmissions/)
# Request limits (SPEC B §1.1): 422 / 2002 past the substitution data limit, 422 / 1300
# past the metadata limit (transmission metadata, and merged per recipient).
ENGAGE_MAX_SUBSTITUTION_DATA_BYTES = env_int("ENGAGE_MAX_SUBSTITUTION_DATA_BYTES", 100 * 1024, minimum=2)
ENGAGE_MAX_TRANSMISSION_METADATA_BYTES = env_int("ENGAGE_MAX_TRANSMISSION_METADATA_BYTES", 10 * 1024, minimum=2)
ENGAGE_MAX_CONTENT_BYTES = env_int("ENGAGE_MAX_CONTENT_BYTES", 20 * 1024 * 1024, minimum=1024)
# One rendered message, headers included: template preview stops rendering past it (422 /
# 3001), a message whose render or built MIME passes it fails alone (generation_failure).
# SparkPost caps content at 20 MB (SPEC B §1.3); base64 of attachments needs the headroom.
ENGAGE_MAX_MESSAGE_BYTES = env_int("ENGAGE_MAX_MESSAGE_BYTES", 32 * 1024 * 1024, minimum=1024, maximum=1024**3)
ENGAGE_START_TIME_MAX_SECONDS = env_int("ENGAGE_START_TIME_MAX_SECONDS", 31536000, minimum=0, maximum=_TEN_YEARS)
# Recipients per generation task, and per claim inside a task.
ENGAGE_GENERATION_CHUNK_SIZE = env_int("ENGAGE_GENERATION_CHUNK_SIZE", 500, minimum=1, maximum=100_000)
ENGAGE_SEND_BATCH_SIZE = env_int("ENGAGE_SEND_BATCH_SIZE", 50, minimum=1, maximum=10_000)
# A message claimed ("sending") for longer than this by a worker that stopped heartbeating
# is given back to the queue by the recovery task (its worker is presumed dead).
ENGAGE_SEND_CLAIM_TIMEOUT = env_int("ENGAGE_SEND_CLAIM_TIMEOUT", 120, minimum=1, maximum=_TEN_YEARS)
# A message whose claim went stale this many times (its worker died each time) is failed
# with a generation_failure event instead of being claimed again.
ENGAGE_SEND_MAX_CLAIMS = env_int("ENGAGE_SEND_MAX_CLAIMS", 5, minimum=1, maximum=100)
# Relay: seconds per SMTP command; 4xx retries: first delay, doubling, and the attempt cap.
ENGAGE_RELAY_TIMEOUT = env_int("ENGAGE_RELAY_TIMEOUT", 30, minimum=1, maximum=3600)
ENGAGE_RETRY_BASE_SECONDS = env_int("ENGAGE_RETRY_BASE_SECONDS", 60, minimum=1, maximum=_TEN_YEARS)
ENGAGE_RETRY_MAX_SECONDS = env_int("ENGAGE_RETRY_MAX_SECONDS", 3600, minimum=1, maximum=_TEN_YEARS)
ENGAGE_RETRY_MAX_ATTEMPTS = env_int("ENGAGE_RETRY_MAX_ATTEMPTS", 10, minimum=1, maximum=100)
# The mailto: half of List-Unsubscribe (the https: half is the tracked /u/ URL).
ENGAGE_LIST_UNSUBSCRIBE_MAILTO = env_str("ENGAGE_LIST_UNSUBSCRIBE_MAILTO", "")
# How often beat starts due scheduled transmissions and recovers stale claims (seconds).
ENGAGE_SCHEDULER_INTERVAL = env_int("ENGAGE_SCHEDULER_INTERVAL", 5, minimum=1, maximum=3600)

CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "transmissions-start-due": {
        "task": "transmissions.start_due",
        "schedule": float(ENGAGE_SCHEDULER_INTERVAL),
        "options": {"expires": ENGAGE_SCHEDULER_INTERVAL * 2},
    },
    "transmissions-recover-stale": {
        "task": "transmissions.recover_stale",
        "schedule": float(ENGAGE_SCHEDULER_INTERVAL),
        "options": {"expires": ENGAGE_SCHEDULER_INTERVAL * 2},
    },
}

# Webhooks (analytics/webhooks.py): a batch is posted when a webhook has this many events
# waiting, or its oldest waiting event is this old; targets get this long to answer;
# failed batches are retried with exponential backoff (base, doubling, capped at an hour)
# until this many hours after the batch was made, then expire.
ENGAGE_WEBHOOK_BATCH_SIZE = env_int("ENGAGE_WEBHOOK_BATCH_SIZE", 1000, minimum=1, maximum=100_000)
ENGAGE_WEBHOOK_BATCH_SECONDS = env_int("ENGAGE_WEBHOOK_BATCH_SECONDS", 30, minimum=1, maximum=86400)
ENGAGE_WEBHOOK_TIMEOUT = env_int("ENGAGE_WEBHOOK_TIMEOUT", 10, minimum=1, maximum=300)
ENGAGE_WEBHOOK_RETRY_BASE_SECONDS = env_int("ENGAGE_WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=1, maximum=_TEN_YEARS)
ENGAGE_WEBHOOK_RETRY_HOURS = env_int("ENGAGE_WEBHOOK_RETRY_HOURS", 8, minimum=1, maximum=24 * 365)
# Webhook targets may not resolve to loopback, private, link-local, multicast or reserved
# addresses, except these: a comma list of host:port or CIDR blocks (analytics/targets.py).
ENGAGE_WEBHOOK_ALLOWED_TARGETS = env_list("ENGAGE_WEBHOOK_ALLOWED_TARGETS", [])
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "analytics-webhooks-dispatch": {
        "task": "analytics.webhooks_dispatch",
        "schedule": float(min(ENGAGE_WEBHOOK_BATCH_SECONDS, 5)),
        "options": {"expires": 30},
    },
}

# Retention (analytics/retention.py): raw events are dropped a day partition at a time after
# this many days; rollups (what metrics and the report read) are kept this many days.
ENGAGE_EVENT_RETENTION_DAYS = env_int("ENGAGE_EVENT_RETENTION_DAYS", 10, minimum=1, maximum=3650)
ENGAGE_ROLLUP_RETENTION_DAYS = env_int("ENGAGE_ROLLUP_RETENTION_DAYS", 183, minimum=1, maximum=3650)
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "tracking-retention": {"task": "analytics.retention", "schedule": 3600.0, "options": {"expires": 600}},
}
# Beat's tasks go to a queue of their own, served by a worker of its own (scripts/Procfile's
# and compose's ``housekeeping``): in the sending queue, each tick waited behind every
# generation task queued before it and expired after two intervals, so a backlog longer than
# that stopped the landing of events, scheduled sends and the recovery until it drained (an
# attacker's finding). The sending worker serves this queue too, so an installation that runs
# no housekeeping worker still runs them (as before, behind its backlog).
HOUSEKEEPING_QUEUE = "housekeeping"
CELERY_TASK_ROUTES = {
    **CELERY_TASK_ROUTES,
    **{entry["task"]: {"queue": HOUSEKEEPING_QUEUE} for entry in CELERY_BEAT_SCHEDULE.values()},
}
# What a worker started without --queues serves: the sending queue and beat's, so a worker
# set up before beat's queue existed still runs beat's tasks. A worker whose --queues names
# the sending queue and not beat's says so when it starts (engage/celery.py), or nothing
# would land and beat's ticks would pile up in Redis unread (an attacker's finding).
CELERY_TASK_QUEUES = (
    Queue("celery", Exchange("celery"), routing_key="celery"),
    Queue(HOUSEKEEPING_QUEUE, Exchange(HOUSEKEEPING_QUEUE), routing_key=HOUSEKEEPING_QUEUE),
)
