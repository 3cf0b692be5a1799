"""Settings, read once from environment variables prefixed ``VIGIL_``."""

from functools import lru_cache
from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET = "dev-only-secret-change-me"  # noqa: S105 - refused outside dev


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=".env", extra="ignore")

    environment: str = "dev"
    database_url: str = f"sqlite:///{ROOT / 'var' / 'vigil.db'}"
    protocols_dir: Path = ROOT / "protocols"
    secret_key: str = DEV_SECRET
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "info"
    batch_size_max: int = 1000
    # A reading may carry a device clock a little ahead of the server's.
    clock_skew_seconds: int = 300

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> "Settings":
        weak = self.secret_key == DEV_SECRET or len(self.secret_key) < 32
        if self.environment not in {"dev", "test"} and weak:
            raise ValueError(
                "VIGIL_SECRET_KEY must be set to a real secret of 32+ characters outside dev/test "
                f"(VIGIL_ENVIRONMENT={self.environment})"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
