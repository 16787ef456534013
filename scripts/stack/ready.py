"""Wait until every process of `make run` answers, then print how to pay a demo order.

Runs as the stack's last process and stays up (honcho stops the whole stack when one process exits).
"""

import os
import signal
import socket
import sys
import time

import httpx

from payment_service.api.auth import mint_token
from payment_service.settings import Settings

DEADLINE_S = 180.0


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _kafka_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> int:
    services = {
        "reference db-service": f"http://127.0.0.1:{_port('STACK_DB_PORT', 8001)}/healthz",
        "Authorize.Net simulator": f"http://127.0.0.1:{_port('STACK_SIM_PORT', 8002)}/healthz",
        "payment API": f"http://127.0.0.1:{_port('STACK_API_PORT', 8000)}/healthz",
    }
    kafka_port = _port("STACK_KAFKA_PORT", 9092)
    deadline = time.monotonic() + DEADLINE_S
    waiting = set(services)
    kafka_up = False
    while waiting or not kafka_up:
        if time.monotonic() > deadline:
            print(f"stack not ready after {DEADLINE_S:.0f} s; still waiting for: {sorted(waiting)}", flush=True)
            return 1
        waiting = {name for name in waiting if not _healthy(services[name])}
        kafka_up = kafka_up or _kafka_answers(kafka_port)
        if waiting or not kafka_up:
            time.sleep(0.5)  # a dev script polling other processes; tests never wait this way

    token = mint_token(Settings().auth, customer_id="42", roles=[], ttl_s=24 * 3600)
    api = f"http://127.0.0.1:{_port('STACK_API_PORT', 8000)}"
    body = '{"order_id": "1001", "payment": {"card": {"number": "4111111111111111", "expiration": "2030-12", "cvv": "123"}}}'
    print(
        "\nThe stack is up: Kafka, reference db-service (seeded), Authorize.Net simulator, payment API, worker.\n"
        "Pay demo order 1001 (customer 42, 3 x 19.99) with a Visa test card:\n\n"
        f"  curl -sS -X POST {api}/payments/pay \\\n"
        f"    -H 'Authorization: Bearer {token}' \\\n"
        "    -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1001' \\\n"
        f"    -d '{body}'\n\n"
        "Orders 1002-1010 are unpaid too. Watch the events: .venv/bin/payment-service events tail\n"
        "Mint other tokens: .venv/bin/payment-service token --customer 42 [--role admin]\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    signal.pause()  # until the stack stops us
    return 0


def _stop(_signum: int, _frame: object) -> None:
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.exit(main())
