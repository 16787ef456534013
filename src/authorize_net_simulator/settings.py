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

from pydantic import Field, SecretStr, model_validator
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
    # Currencies the merchant account takes; a charge in another one is refused (reason 39).
    accepted_currencies: frozenset[str] = frozenset({"USD"})

    # Answers where the live gateway's behaviour is not documented (docs/gateway-behaviour.md). The
    # defaults are the generous reading; `strict` turns every one to the harsh reading at once.
    strict: bool = False
    send_transref_id: bool = True  # getTransactionDetails echoes the refId as `transrefId`
    send_requested_amount: bool = True  # transaction details carry `requestedAmount`
    send_total_num_in_result_set: bool = True  # transaction lists carry `totalNumInResultSet`
    # Settled-batch dates read as wall time at this UTC offset (merchant-local), whatever offset they carry.
    settlement_date_offset_h: int | None = Field(default=None, ge=-12, le=14)
    nonce_ttl_s: int = Field(default=900, ge=1)
    request_log_size: int = Field(default=200, ge=0)
    first_trans_id: int = 80000000001

    @model_validator(mode="after")
    def _apply_strict(self) -> "SimulatorSettings":
        if self.strict:
            self.send_transref_id = False
            self.send_requested_amount = False
            self.send_total_num_in_result_set = False
            if self.settlement_date_offset_h is None:
                self.settlement_date_offset_h = -8  # US Pacific, where a merchant-local reading is furthest off
        return self
