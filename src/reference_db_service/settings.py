"""Settings of the reference db-service, read from `REFERENCE_DB_*` environment variables."""

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/reference-db.sqlite3"


class ReferenceDbSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REFERENCE_DB_", extra="ignore")

    # SQLite (aiosqlite, WAL) by default; `postgresql+asyncpg://…` for PostgreSQL.
    database_url: str = DEFAULT_DATABASE_URL
    # When set, every endpoint except /healthz requires `Authorization: Bearer <token>`.
    token: SecretStr | None = None
    # How long a SQLite writer waits for another process's write lock before failing.
    sqlite_busy_timeout_ms: int = 5000
