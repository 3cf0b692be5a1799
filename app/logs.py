"""How a Vigil server process logs: one line per event on stderr, as plain text or, with
VIGIL_LOG_FORMAT=json, as one JSON object per line; anything that looks like a secret redacted
(app/security.py). uvicorn's own lines go the same way, except its access log, which is off:
app/request_log.py writes the line of every request, without the query string.
"""

import logging.config
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from app.config import Settings

TEXT_FORMAT = "%(levelname)s:     %(name)s - %(message)s"


def json_formatter() -> JsonFormatter:
    """level, logger, message and time, then the record's extra fields (a request line's
    method, path, status, duration_ms and request_id) as keys of their own."""
    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],  # uvicorn's, with terminal colours
    )


def _formatter(log_format: str) -> dict[str, Any]:
    return {"()": json_formatter} if log_format == "json" else {"format": TEXT_FORMAT}


def logging_config(settings: Settings) -> dict[str, Any]:
    """The process's logging, for logging.config.dictConfig (and uvicorn's ``log_config``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "app.security.RedactSecrets"}},
        "formatters": {"vigil": _formatter(settings.log_format)},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "vigil",
                "filters": ["redact"],
            }
        },
        "root": {"level": settings.log_level.upper(), "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            "httpx": {"level": "WARNING"},  # not a line per demo tablet post
            "alembic": {"level": "WARNING"},  # not its plugins at every start
        },
    }


def configure(settings: Settings) -> dict[str, Any]:
    """Set up this process's logging; returns the configuration (for uvicorn to apply again)."""
    config = logging_config(settings)
    logging.config.dictConfig(config)
    return config
