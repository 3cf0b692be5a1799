"""Settings, read once from environment variables prefixed ``VIGIL_``."""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused outside dev
DEV_ENVIRONMENTS = frozenset({"dev", "test"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=".env", extra="ignore")

    environment: str = "dev"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'vigil.db'}"
    protocols_dir: Path = ROOT / "protocols"
    secret_key: str = DEV_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    # text: one plain line per event; json: one JSON object per line (app/logs.py)
    log_format: Literal["text", "json"] = "text"
    batch_size_max: int = 1000
    # A clinical time may carry a client's clock a little ahead of the server's. It is also the
    # tolerance of a bedside device's clock: a device whose measured clock offset is larger has
    # its readings flagged and a device_clock alert raised (docs/devices.md).
    clock_skew_seconds: int = Field(default=300, ge=0)
    # The oldest consent date a new participant may have, in days before today (10 years).
    consent_max_age_days: int = Field(default=3653, ge=1)

    # --- accounts and credentials
    # A login (web cookie or bearer) lasts this long; then the user signs in again.
    session_ttl_minutes: int = Field(default=720, ge=1)
    # The web client signs a user out after this long without a click or a key (shared tablets).
    web_idle_minutes: int = Field(default=15, ge=1)
    # API tokens always expire: the default and the longest lifetime a caller may ask for.
    api_token_ttl_days: int = Field(default=90, ge=1)
    api_token_max_ttl_days: int = Field(default=365, ge=1)
    # After this many consecutive failed sign-ins the account is locked; each further failure
    # locks it for the next period of login_lockout_minutes (the last one repeats).
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: Annotated[list[int], NoDecode] = [1, 5, 15, 60]
    # Rotating a device token leaves the old one working this long, so a tablet can pick up its
    # new token without losing readings; a rotation may ask for 0 (immediate) instead.
    device_token_overlap_minutes: int = Field(default=60, ge=0, le=10080)
    # A device token not used for this long stops working (a tablet lost or put away).
    device_token_idle_days: int = Field(default=30, ge=1)
    # The session cookie's Secure flag: None = on, except in the dev and test environments.
    cookie_secure: bool | None = None

    # --- HTTP hardening
    # Origins allowed to call the API from a browser (comma-separated); none by default.
    cors_origins: Annotated[list[str], NoDecode] = []
    # Largest request body accepted; a batch of 1000 vital readings is about 0.3 MiB.
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)

    # Requests of one process inside a database transaction at once (the others wait their turn);
    # unset: 1 on SQLite, 2 on PostgreSQL (app/db.py).
    db_concurrency: int | None = Field(default=None, ge=1)

    # --- retried writes
    # Hours the first answer to a write sent with an Idempotency-Key is kept (app/idempotency.py).
    idempotency_keep_hours: int = Field(default=24, ge=1)

    # --- time-driven safety checks and live alerts
    # Seconds between scheduler ticks (overdue measurements, escalation, SAE reporting clocks);
    # 0 turns the scheduler off in this process.
    scheduler_interval_seconds: float = Field(default=10.0, ge=0)
    # Seconds between the live alert feed's reads of the event log when nothing woke it.
    alert_feed_poll_seconds: float = Field(default=5.0, gt=0)

    # --- operations
    # A bearer token that GET /metrics requires (Authorization: Bearer <token>); unset, the
    # metrics (counts only, nothing that names a person or a record) are open to any caller
    # who reaches the port (docs/operations.md).
    metrics_token: str | None = Field(default=None, min_length=16)

    # --- alerts beyond the screen: webhooks and e-mail (app/notifications/, docs/alerts.md)
    # Seconds between the dispatcher's looks for deliveries due when no alert change woke it;
    # 0 turns delivery off in this process (another process delivers).
    outbox_poll_seconds: float = Field(default=1.0, ge=0)
    # A webhook receiver or SMTP server that has not answered after this long has failed.
    outbox_timeout_seconds: float = Field(default=5.0, gt=0)
    # A worker sending a delivery holds it this long; if it dies, another sends it after that.
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    # The pause before the first retry, doubled after each failure up to the maximum.
    outbox_retry_seconds: float = Field(default=5.0, gt=0)
    outbox_retry_max_seconds: float = Field(default=900.0, gt=0)
    # After this many failed attempts a delivery is dead: listed for admins, sent again on demand.
    outbox_max_attempts: int = Field(default=12, ge=1)
    # The SMTP server for e-mail subscriptions; unset, e-mail subscriptions are refused.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "vigil@localhost"
    # Where people reach this Vigil (https://vigil.example.org): links in webhooks and e-mails.
    public_url: str | None = None

    @field_validator("login_lockout_minutes", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("log_format", mode="before")
    @classmethod
    def _known_log_format(cls, value: object) -> object:
        if isinstance(value, str):
            if value.strip().lower() not in ("text", "json"):
                raise ValueError(f"VIGIL_LOG_FORMAT is text or json, not {value!r}")
            return value.strip().lower()
        return value

    @field_validator("login_lockout_minutes")
    @classmethod
    def _positive_periods(cls, value: list[int]) -> list[int]:
        if not value or any(minutes < 1 for minutes in value):
            raise ValueError("VIGIL_LOGIN_LOCKOUT_MINUTES needs one or more periods of 1+ minutes")
        return value

    @field_validator("cors_origins")
    @classmethod
    def _explicit_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if origin == "*" or not origin.startswith(("https://", "http://")):
                raise ValueError(
                    f"VIGIL_CORS_ORIGINS lists origins like https://monitor.example.org; "
                    f"{origin!r} is not one (wildcards are refused)"
                )
        return [origin.rstrip("/") for origin in value]

    @property
    def is_dev(self) -> bool:
        return self.environment in DEV_ENVIRONMENTS

    @property
    def session_cookie_secure(self) -> bool:
        return (not self.is_dev) if self.cookie_secure is None else self.cookie_secure

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        weak = self.secret_key == DEV_SECRET or len(self.secret_key) < 32
        if not self.is_dev and weak:
            raise ValueError(
                "VIGIL_SECRET_KEY must be set to a real secret of 32+ characters outside dev/test "
                f"(VIGIL_ENVIRONMENT={self.environment})"
            )
        if self.outbox_lease_seconds <= self.outbox_timeout_seconds:
            raise ValueError(
                "VIGIL_OUTBOX_LEASE_SECONDS must exceed VIGIL_OUTBOX_TIMEOUT_SECONDS, or a slow "
                "delivery would be sent twice at once"
            )
        if self.api_token_ttl_days > self.api_token_max_ttl_days:
            raise ValueError("VIGIL_API_TOKEN_TTL_DAYS exceeds VIGIL_API_TOKEN_MAX_TTL_DAYS")
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
