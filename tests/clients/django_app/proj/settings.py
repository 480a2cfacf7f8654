"""Settings: the database comes from the environment. SY_SQLITE=PATH for a SQLite file
(Django's own sqlite3 backend), else PostgreSQL at SY_HOST:SY_PORT/SY_NAME as SY_USER."""
import os

SECRET_KEY = "switchyard-test"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions",
    "django.contrib.admin", "django.contrib.messages", "shop",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

if os.environ.get("SY_SQLITE"):
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SY_SQLITE"]}}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("SY_NAME", "app"),
            "HOST": os.environ.get("SY_HOST", "127.0.0.1"),
            "PORT": os.environ["SY_PORT"],
            "USER": os.environ.get("SY_USER", "app"),
            "PASSWORD": os.environ.get("SY_PASSWORD", "secret"),
            "OPTIONS": {"sslmode": "disable"},
        }
    }
