"""Everything one simulator instance remembers, in memory.

The ledger, the duplicate window, nonces, scripted faults, webhooks and the bounded buffer of
received requests.

All of it is touched from one event loop, and no handler awaits between reading and writing it,
so no lock is needed.
"""

from collections import deque
from dataclasses import dataclass
from datetime import datetime

from authorize_net_simulator.clock import Clock
from authorize_net_simulator.duplicates import DuplicateWindow
from authorize_net_simulator.faults import FaultBook
from authorize_net_simulator.ledger import Ledger
from authorize_net_simulator.masking import mask_body
from authorize_net_simulator.nonces import NonceStore
from authorize_net_simulator.settings import SimulatorSettings
from authorize_net_simulator.webhooks import WebhookEmitter


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    received_at: datetime
    content_type: str
    body: str  # masked


class SimulatorState:
    def __init__(self, settings: SimulatorSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.webhooks = WebhookEmitter(
            url=settings.webhook_url,
            signature_key=settings.signature_key.get_secret_value(),
            max_attempts=settings.webhook_max_attempts,
            backoff_ms=settings.webhook_backoff_ms,
            timeout_s=settings.webhook_timeout_s,
            clock=clock,
        )
        self.faults = FaultBook()
        self.requests: deque[RecordedRequest] = deque(maxlen=settings.request_log_size)
        self.reset()

    def reset(self) -> None:
        """Forget transactions, duplicates, nonces, faults and recorded requests."""
        self.ledger = Ledger(first_trans_id=self.settings.first_trans_id)
        self.duplicates = DuplicateWindow()
        self.nonces = NonceStore(ttl_s=self.settings.nonce_ttl_s)
        self.faults.clear()
        self.requests.clear()
        self.webhooks.deliveries.clear()

    def record_request(self, body: bytes, content_type: str) -> None:
        if self.requests.maxlen:
            self.requests.append(RecordedRequest(self.clock(), content_type, mask_body(body)))
