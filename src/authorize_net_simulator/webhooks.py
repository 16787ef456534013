"""Webhook deliveries: signed JSON notifications posted in the background, retried with backoff.

Signature (NOTES §10): header ``X-ANET-Signature: sha512=<HEX>``, the upper-case hex HMAC-SHA512 of
the exact body bytes keyed with the Signature Key's text (ASCII, not hex-decoded). Payload numbers
(`responseCode`, `authAmount`) are JSON numbers, as on the real gateway.
"""

import asyncio
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import httpx
import orjson
import structlog

from authorize_net_simulator.clock import Clock

log = structlog.get_logger(__name__)


def sign(body: bytes, signature_key: str) -> str:
    """The X-ANET-Signature header value for `body`."""
    digest = hmac.new(signature_key.encode("ascii"), body, hashlib.sha512).hexdigest().upper()
    return f"sha512={digest}"


@dataclass(slots=True)
class Delivery:
    notification_id: str
    event_type: str
    trans_id: str
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None


def _event_date(now: datetime) -> str:
    return f"{now:%Y-%m-%dT%H:%M:%S}.{now.microsecond:06d}0Z"


class WebhookEmitter:
    def __init__(
        self, *, url: str | None, signature_key: str, max_attempts: int, backoff_ms: int, timeout_s: float, clock: Clock
    ) -> None:
        self._url = url
        self._signature_key = signature_key
        self._max_attempts = max_attempts
        self._backoff_s = backoff_ms / 1000
        self._timeout_s = timeout_s
        self._clock = clock
        self._webhook_id = str(uuid.uuid4())
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.deliveries: list[Delivery] = []

    def emit(
        self,
        event_type: str,
        *,
        trans_id: str,
        response_code: str,
        auth_code: str,
        avs_result: str,
        amount: Decimal,
        invoice_number: str | None,
        fraud_action: str | None = None,
    ) -> None:
        """Queue a notification; a no-op when no webhook URL is configured. Needs a running loop."""
        if self._url is None:
            return
        payload: dict[str, object] = {
            "responseCode": int(response_code),
            "authCode": auth_code,
            "avsResponse": avs_result,
            "authAmount": orjson.Fragment(str(amount).encode()),
        }
        if invoice_number is not None:
            payload["invoiceNumber"] = invoice_number
        if fraud_action is not None:
            payload["fraudList"] = [{"fraudFilter": "Amount Filter", "fraudAction": fraud_action}]
        payload["entityName"] = "transaction"
        payload["id"] = trans_id
        notification_id = str(uuid.uuid4())
        body = orjson.dumps(
            {
                "notificationId": notification_id,
                "eventType": event_type,
                "eventDate": _event_date(self._clock()),
                "webhookId": self._webhook_id,
                "payload": payload,
            }
        )
        delivery = Delivery(notification_id, event_type, trans_id)
        self.deliveries.append(delivery)
        if len(self.deliveries) > 1000:
            del self.deliveries[:100]
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, self._url, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, delivery: Delivery, url: str, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-ANET-Signature": sign(body, self._signature_key)}
        delay_s = self._backoff_s
        for attempt in range(1, self._max_attempts + 1):
            delivery.attempts = attempt
            try:
                response = await self._http().post(url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                log.warning(
                    "webhook.delivery_failed",
                    notification_id=delivery.notification_id,
                    attempt=attempt,
                    error=type(exc).__name__,
                )
            else:
                delivery.last_status = response.status_code
                if response.is_success:
                    delivery.delivered = True
                    return
                log.warning(
                    "webhook.delivery_rejected",
                    notification_id=delivery.notification_id,
                    attempt=attempt,
                    status=response.status_code,
                )
            if attempt < self._max_attempts:
                await asyncio.sleep(delay_s)
                delay_s *= 2
        log.error("webhook.delivery_abandoned", notification_id=delivery.notification_id, attempts=self._max_attempts)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        return self._client

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
