"""Settings of the Authorize.Net simulator (environment variables with the `ANET_SIM_` prefix).

Default credentials, shared with the payment service's defaults and `make run` (development only,
never valid anywhere real):

* API login id: ``sim-api-login``               (``ANET_SIM_LOGIN_ID``)
* transaction key: ``simTransKey00001``         (``ANET_SIM_TRANSACTION_KEY``)
* signature key: ``"A1" * 64`` (128 hex chars)  (``ANET_SIM_SIGNATURE_KEY``), which signs webhooks and
  ``transHashSha2``.

Merchant filter settings (which AVS and card-code results decline a charge) and the fraud-hold
amount filter are configuration too, as they are merchant settings on the real gateway.
"""

from decimal import Decimal
from typing import Final

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_LOGIN_ID: Final = "sim-api-login"
DEFAULT_TRANSACTION_KEY: Final = "simTransKey00001"
DEFAULT_SIGNATURE_KEY: Final = "A1" * 64


class SimulatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ANET_SIM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8002
    login_id: str = DEFAULT_LOGIN_ID
    transaction_key: SecretStr = SecretStr(DEFAULT_TRANSACTION_KEY)
    signature_key: SecretStr = SecretStr(DEFAULT_SIGNATURE_KEY)

    webhook_url: str | None = None
    webhook_max_attempts: int = Field(default=5, ge=1, le=20)
    webhook_backoff_ms: int = Field(default=200, ge=0)  # doubled after each failed attempt
    webhook_timeout_s: float = 5.0

    # Merchant filter settings: AVS / card-code results that make the gateway decline (27, 65, 45),
    # and card-code results the processor itself declines (44).
    avs_reject_codes: frozenset[str] = frozenset({"N"})
    cvv_reject_codes: frozenset[str] = frozenset({"N"})
    cvv_processor_reject_codes: frozenset[str] = frozenset()
    # Fraud detection amount filter: charges above this are authorised and held for review (253).
    hold_amount_over: Decimal | None = None

    transaction_details_api_enabled: bool = True
    nonce_ttl_s: int = Field(default=900, ge=1)
    request_log_size: int = Field(default=200, ge=0)
    first_trans_id: int = 80000000001
