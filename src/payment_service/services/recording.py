"""PaymentRecorder: writes consumed payment events to the db-service, idempotently.

The db-service's `PUT /payments/{id}` is an upsert guarded by `version`, so the same event twice,
or an older version after a newer one, leaves the newer record in place: redelivery is harmless and
nothing here keeps state. What is not here: polling, offsets and retries (`messaging/consumer.py`).
"""

import structlog

from payment_service.db_service.client import DbServiceClient
from payment_service.messaging.codec import CloudEvent, decode_payment

log = structlog.get_logger(__name__)


class PaymentRecorder:
    def __init__(self, db_service: DbServiceClient) -> None:
        self._db_service = db_service

    async def record(self, event: CloudEvent) -> None:
        """Upsert the payment an event carries. Idempotent.

        Raises:
            InvalidEvent: the event is not a payment event, or its data is off the schema.
            DbServiceUnavailable: retriable; try the same event again later.
            DbServiceError: the db-service refused the record for good.
        """
        payment = decode_payment(event)
        created = await self._db_service.put_payment(payment)
        log.info(
            "payment_record.upserted",
            payment_id=payment.id,
            order_id=payment.order_id,
            status=payment.status.value,
            version=payment.version,
            created=created,
        )
