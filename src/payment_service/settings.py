"""Configuration: one root, a group per outside system, read from `PAYMENTS_…` environment variables.

`PAYMENTS_GATEWAY__TRANSACTION_KEY=…` sets `settings.gateway.transaction_key`. The original service's
variable names (`BOOTSTRAP_SERVER`, `KAFKA_PAYMENT_TOPIC`, `KAFKA_NOTIFICATION_TOPIC`,
`KAFKA_PAYMENT_CONSUMER_GROUP_ID`, `API_LOGIN_ID`, `TRANSACTION_KEY`) are read too, below the
`PAYMENTS_` names, so its deployments keep working. Defaults run against the local stack of
`make run`: the bundled simulator, the reference db-service, a broker on 127.0.0.1:9092.
"""

import os
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Shared with `authorize-net-simulator serve` and `make run`; for local use only.
DEV_GATEWAY_LOGIN_ID = "sim-api-login"
DEV_GATEWAY_TRANSACTION_KEY = "simTransKey00001"
DEV_GATEWAY_SIGNATURE_KEY = "A1" * 64
DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef"  # noqa: S105 - documented dev default
DEV_FINGERPRINT_SECRET = "dev-only-fingerprint-secret-change-me-0123456789"  # noqa: S105 - documented dev default

GATEWAY_ENDPOINTS = {
    "sandbox": "https://apitest.authorize.net/xml/v1/request.api",
    "production": "https://api.authorize.net/xml/v1/request.api",
}


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # Raw card numbers put the service in PCI scope; deployments using Accept.js switch this off.
    allow_raw_card: bool = True
    idempotency_ttl_s: int = 24 * 3600
    # Keys the digest of card number and expiry that tells two requests under one Idempotency-Key apart.
    fingerprint_secret: SecretStr = SecretStr(DEV_FINGERPRINT_SECRET)
    # Refused before parsing or authentication: a larger body answers 413, larger headers 431.
    # A pay request is under 10 KiB (opaque data values are at most 8 KiB).
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)


class AuthSettings(BaseModel):
    algorithm: Literal["HS256", "HS384", "HS512", "RS256", "ES256"] = "HS256"
    secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    public_key: str | None = None  # PEM, for RS256/ES256
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    leeway_s: int = 30
    token_ttl_s: int = 3600


class GatewaySettings(BaseModel):
    # A URL, or "sandbox" / "production" for Authorize.Net's own endpoints.
    endpoint: str = "http://127.0.0.1:8002/xml/v1/request.api"
    login_id: str = DEV_GATEWAY_LOGIN_ID
    transaction_key: SecretStr = SecretStr(DEV_GATEWAY_TRANSACTION_KEY)
    signature_key: SecretStr = SecretStr(DEV_GATEWAY_SIGNATURE_KEY)
    connect_timeout_s: float = 3.0
    read_timeout_s: float = 20.0
    # Must outlast the reconciler's not-found grace plus its skew margin (checked at start): a retry after
    # a wrong "not charged" is then still refused by the gateway as a duplicate. At most 28800.
    duplicate_window_s: int = Field(default=1800, ge=0, le=28800)
    max_connections: int = 200
    # ISO 4217 codes the merchant account takes; an order in another currency is refused before sending.
    accepted_currencies: frozenset[str] = frozenset({"USD"})

    @property
    def url(self) -> str:
        return GATEWAY_ENDPOINTS.get(self.endpoint, self.endpoint)


class DbServiceSettings(BaseModel):
    base_url: str = "http://127.0.0.1:8001"
    token: SecretStr | None = None
    connect_timeout_s: float = 2.0
    read_timeout_s: float = 5.0
    max_retries: int = 3
    backoff_ms: int = 100
    max_connections: int = 200


class KafkaSettings(BaseModel):
    bootstrap_servers: str = "127.0.0.1:9092"
    payment_topic: str = "payments"
    notification_topic: str = "notifications"
    dlq_topic: str = "payments.dlq"
    consumer_group: str = "payment-service"
    topic_partitions: int = 3
    replication_factor: int = 1
    linger_ms: int = 5
    request_timeout_ms: int = 15000
    # Payment consumer, per partition: records from the lowest unfinished one to the newest started one
    # (concurrent across keys, one at a time per key); also how many come again after a crash.
    consumer_max_in_flight: int = Field(default=64, ge=1)
    # Payment consumer, over every partition: handler calls (db-service writes) at once. Keep it at or
    # below `db_service.max_connections`, or the surplus waits for a pooled connection.
    consumer_max_in_flight_total: int = Field(default=128, ge=1)


class StoreSettings(BaseModel):
    # SQLite (WAL) serves one host; use postgresql+asyncpg://… for several instances.
    database_url: str = "sqlite+aiosqlite:///./var/payment-service.sqlite3"
    echo: bool = False
    # PostgreSQL: connections one process keeps open at most. Every transaction is a statement or a
    # few, never held across a call to another service, so a few serve hundreds of payments a second;
    # more only add server backends contending for the same pages (bench/topology.py: with two APIs,
    # 10 each cost the server 15-25% more CPU per payment than 5, and 50 more still, for no more
    # throughput).
    max_connections: int = Field(default=5, ge=1)


class RelaySettings(BaseModel):
    sweep_interval_s: float = 1.0
    batch_size: int = 500
    max_backoff_s: float = 10.0
    # Published outbox rows are kept this long (Kafka holds the events; the rows serve inspection), then
    # deleted by the worker's housekeeping, so the table stays the size of one retention period.
    retention_s: float = Field(default=604800.0, gt=0)


class ReconcilerSettings(BaseModel):
    interval_s: float = 30.0
    # An attempt still `processing` this long after sending is treated like `unknown` (a crash).
    processing_grace_s: float = 60.0
    not_found_grace_s: float = 600.0
    # Gateway rows submitted this long before our `sent_at` are still searched: the clock skew between us
    # and the gateway that is tolerated (measured skew beyond half of it is logged as an error).
    lookback_margin_s: float = 900.0
    # A duplicate (reason 11) points at an earlier charge, at most the duplicate window (max 8 h) back.
    duplicate_lookback_s: float = 28800.0
    page_size: int = 100
    batch_size: int = 200
    max_backoff_s: float = 300.0
    # How long a worker's reconciler holds the payments of one round (a dead worker's wait this long).
    lease_s: float = 300.0
    # An approved payment whose order was not told by then (a crash, the db-service down) is told by the
    # worker's order update sweep, and its refused charge given back; the sweep tries this many reversals
    # before it leaves the charge for a person.
    order_update_grace_s: float = 60.0
    reversal_attempts: int = Field(default=3, ge=1)


class WebhookSettings(BaseModel):
    # Authorize.Net notifications are a few hundred bytes; anything far larger is refused unread.
    max_body_bytes: int = Field(default=65536, ge=1024)
    # The worker takes notifications the API did not finish (a crash) this often.
    sweep_interval_s: float = 5.0
    # A notification taken by a processor is left to others after this long (the processor died).
    lease_s: float = 60.0
    # A notification that could not be applied (its payment still charging, the gateway unreachable) is
    # taken again this long after.
    retry_s: float = 5.0
    batch_size: int = Field(default=50, ge=1)


class WorkerSettings(BaseModel):
    # Prometheus endpoint of the worker process (consumer, relay, reconciler); None turns it off.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = 9102
    # How often expired idempotency keys (their lifetime is `api.idempotency_ttl_s`) and published outbox
    # rows past `relay.retention_s` are deleted.
    idempotency_sweep_interval_s: float = 3600.0


class LogSettings(BaseModel):
    level: str = "INFO"
    json_output: bool = Field(default=True, alias="json")


_LEGACY_NAMES: dict[str, tuple[str, str]] = {
    "BOOTSTRAP_SERVER": ("kafka", "bootstrap_servers"),
    "KAFKA_PAYMENT_TOPIC": ("kafka", "payment_topic"),
    "KAFKA_NOTIFICATION_TOPIC": ("kafka", "notification_topic"),
    "KAFKA_PAYMENT_CONSUMER_GROUP_ID": ("kafka", "consumer_group"),
    "API_LOGIN_ID": ("gateway", "login_id"),
    "TRANSACTION_KEY": ("gateway", "transaction_key"),
}


class LegacyEnvSource(PydanticBaseSettingsSource):
    """The original service's variable names, mapped into their groups."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, dict[str, str]] = {}
        for name, (group, key) in _LEGACY_NAMES.items():
            if (value := os.environ.get(name)) is not None:
                values.setdefault(group, {})[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PAYMENTS_", env_nested_delimiter="__", env_file=".env", extra="ignore", env_parse_none_str="null"
    )

    api: ApiSettings = ApiSettings()
    auth: AuthSettings = AuthSettings()
    gateway: GatewaySettings = GatewaySettings()
    db_service: DbServiceSettings = DbServiceSettings()
    kafka: KafkaSettings = KafkaSettings()
    store: StoreSettings = StoreSettings()
    relay: RelaySettings = RelaySettings()
    reconciler: ReconcilerSettings = ReconcilerSettings()
    worker: WorkerSettings = WorkerSettings()
    webhooks: WebhookSettings = WebhookSettings()
    log: LogSettings = LogSettings()

    @model_validator(mode="after")
    def _duplicate_window_outlasts_grace(self) -> "Settings":
        needed_s = self.reconciler.not_found_grace_s + self.reconciler.lookback_margin_s
        if self.gateway.duplicate_window_s < needed_s:
            raise ValueError(
                f"gateway.duplicate_window_s ({self.gateway.duplicate_window_s}) must be at least "
                f"reconciler.not_found_grace_s + reconciler.lookback_margin_s ({needed_s:g}): otherwise a retry "
                "after a charge wrongly called not charged passes the gateway's duplicate check and charges twice"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win: explicit arguments, PAYMENTS_ variables, .env, then the legacy names.
        return init_settings, env_settings, dotenv_settings, LegacyEnvSource(settings_cls), file_secret_settings
