"""Wait until every process of `make run` answers, then print how to pay a demo order.

Runs as the stack's last process and stays up (honcho stops the whole stack when one process exits).
The printed request pays with Accept.js opaque data that the simulator minted for a test card, and a
short-lived token: the stack's log never holds a card number or a long-lived credential.
"""

import json
import os
import signal
import socket
import sys
import time
from datetime import UTC, datetime

import httpx

from payment_service.api.auth import mint_token
from payment_service.settings import Settings

DEADLINE_S = 180.0
TOKEN_TTL_S = 15 * 60  # as long as an Accept.js nonce lives


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

    token = mint_token(Settings().auth, customer_id="42", roles=[], ttl_s=TOKEN_TTL_S)
    api = f"http://127.0.0.1:{_port('STACK_API_PORT', 8000)}"
    nonces = f"http://127.0.0.1:{_port('STACK_SIM_PORT', 8002)}/_sim/nonces"
    descriptor, value = _mint_opaque_data(nonces)
    body = json.dumps({"order_id": "1001", "payment": {"opaque_data": {"descriptor": descriptor, "value": value}}})
    print(
        "\nThe stack is up: Kafka, reference db-service (seeded), Authorize.Net simulator, payment API, worker.\n"
        "Pay demo order 1001 (customer 42, 3 x 19.99) with Accept.js opaque data the simulator minted for a Visa\n"
        f"test card (token and opaque data valid {TOKEN_TTL_S // 60} minutes):\n\n"
        f"  curl -sS -X POST {api}/payments/pay \\\n"
        f"    -H 'Authorization: Bearer {token}' \\\n"
        "    -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1001' \\\n"
        f"    -d '{body}'\n\n"
        "Orders 1002-1010 are unpaid too. Watch the events: .venv/bin/payment-service events tail\n"
        f"Mint other opaque data: curl -sS -X POST {nonces} -H 'Content-Type: application/json' \\\n"
        """    -d '{"cardNumber": "<test card>", "expirationDate": "<YYYY-MM>", "cardCode": "<CVV>"}'\n"""
        "Mint other tokens: .venv/bin/payment-service token --customer 42 [--role admin]\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    signal.pause()  # until the stack stops us
    return 0


def _mint_opaque_data(nonces_url: str) -> tuple[str, str]:
    """Opaque data for Visa's test card, from the simulator's Accept.js stand-in."""
    expiration = f"{datetime.now(UTC).year + 3}-12"
    card = {"cardNumber": "4111111111111111", "expirationDate": expiration, "cardCode": "123"}
    response = httpx.post(nonces_url, json=card, timeout=5.0)
    response.raise_for_status()
    minted = response.json()
    return str(minted["dataDescriptor"]), str(minted["dataValue"])


def _stop(_signum: int, _frame: object) -> None:
    sys.exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.exit(main())
