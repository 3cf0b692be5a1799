"""Alerts. Importing the package registers the hooks that announce committed alert changes to the
live streams of every process (app/events/signals.py), wherever the change is made."""

from app.events import signals as _signals  # noqa: F401
