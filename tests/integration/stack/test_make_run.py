"""`make run`'s process set (Procfile): every process starts, answers, and stops on Ctrl-C.

The stack runs on free ports and its own data directory, beside any stack a developer has running.
"""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import jwt
import pytest

from tests.support.servers import bind_free_socket

ROOT = Path(__file__).resolve().parents[3]
READY_LINE = "The stack is up"
START_DEADLINE_S = 240.0
STOP_DEADLINE_S = 60.0
VISA = "4111111111111111"


def _free_ports(count: int) -> list[int]:
    sockets = [bind_free_socket() for _ in range(count)]
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _pump(stream: IO[str], lines: "queue.Queue[str | None]") -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


class Stack:
    def __init__(self, process: subprocess.Popen[str], ports: dict[str, int]) -> None:
        self.process = process
        self.ports = ports
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        assert process.stdout is not None
        self.reader = threading.Thread(target=_pump, args=(process.stdout, self.lines), daemon=True)
        self.reader.start()

    def wait_for_line(self, text: str, deadline_s: float) -> str:
        end = time.monotonic() + deadline_s
        while (remaining := end - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                pytest.fail("the stack exited before it was ready:\n" + "".join(self.output[-60:]))
            self.output.append(line)
            if text in line:
                return line
        pytest.fail(f"no {text!r} within {deadline_s:.0f} s:\n" + "".join(self.output[-60:]))


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    api, db, sim, kafka, controller, worker_metrics = _free_ports(6)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "STACK_VAR_DIR": str(tmp_path / "var"),
        "STACK_API_PORT": str(api),
        "STACK_DB_PORT": str(db),
        "STACK_SIM_PORT": str(sim),
        "STACK_KAFKA_PORT": str(kafka),
        "STACK_KAFKA_CONTROLLER_PORT": str(controller),
        "STACK_WORKER_METRICS_PORT": str(worker_metrics),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(  # noqa: S603 - our own Procfile runner, fixed arguments
        [str(Path(sys.executable).parent / "honcho"), "--procfile", "Procfile", "--app-root", ".", "start"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Stack(process, {"api": api, "db": db, "simulator": sim, "kafka": kafka, "worker": worker_metrics})
    try:
        yield running
    finally:
        if process.poll() is None:
            # SIGINT first: honcho stops its children (each in a process group of its own); SIGKILL would orphan them.
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        running.reader.join(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _banner(stack: Stack) -> str:
    stack.wait_for_line("Ctrl-C stops everything", 10)
    start = min(i for i, line in enumerate(stack.output) if "curl -sS -X POST" in line)
    return "".join(stack.output[start:])


class TestMakeRun:
    @staticmethod
    def _the_banner_pays_with_opaque_data_and_a_short_lived_token(stack: Stack, banner: str) -> None:
        token_match = re.search(r"Authorization: Bearer ([\w.-]+)", banner)
        body_match = re.search(r"-d '(\{.*\})'", banner)
        assert token_match is not None
        assert body_match is not None
        token, body = token_match[1], json.loads(body_match[1])
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= 15 * 60
        assert set(body["payment"]) == {"opaque_data"}
        assert VISA not in banner

        paid = httpx.post(
            f"http://127.0.0.1:{stack.ports['api']}/payments/pay",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

        assert paid.status_code == 201, paid.text
        assert paid.json()["gateway"]["account_number"] == "XXXX1111"

    def test_every_process_answers_and_ctrl_c_stops_them_all(self, stack: Stack) -> None:
        stack.wait_for_line(READY_LINE, START_DEADLINE_S)
        curl = stack.wait_for_line("curl -sS -X POST", 10)
        assert f"127.0.0.1:{stack.ports['api']}/payments/pay" in curl
        banner = _banner(stack)
        self._the_banner_pays_with_opaque_data_and_a_short_lived_token(stack, banner)
        # The reference db-service takes only the stack's service token, which the payment service sends.
        anonymous = httpx.get(f"http://127.0.0.1:{stack.ports['db']}/orders/1002", timeout=5)
        assert anonymous.status_code == 401

        for name in ("api", "db", "simulator"):
            response = httpx.get(f"http://127.0.0.1:{stack.ports[name]}/healthz", timeout=5)
            assert response.status_code == 200, name
        # The worker has no HTTP API; its metrics endpoint shows it runs the payment consumer.
        metrics = httpx.get(f"http://127.0.0.1:{stack.ports['worker']}/metrics", timeout=5)
        assert "payment_service_consumer_records_total" in metrics.text
        _pay_demo_order_and_see_its_webhook_accepted(stack)

        assert VISA not in "".join(stack.output)
        os.killpg(stack.process.pid, signal.SIGINT)
        stack.process.wait(timeout=STOP_DEADLINE_S)
        for port in stack.ports.values():
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=2).close()


def _pay_demo_order_and_see_its_webhook_accepted(stack: Stack) -> None:
    """The simulator's notification of a charge reaches the API, signed with the key the API checks."""
    from payment_service.api.auth import mint_token
    from payment_service.settings import Settings

    token = mint_token(Settings().auth, customer_id="42", ttl_s=600)
    card = {"number": "4111111111111111", "expiration": "2030-12", "cvv": "123"}
    paid = httpx.post(
        f"http://127.0.0.1:{stack.ports['api']}/payments/pay",
        json={"order_id": "1002", "payment": {"card": card}},  # 1001 is paid by the banner's command
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert paid.status_code == 201, paid.text
    deliveries_url = f"http://127.0.0.1:{stack.ports['simulator']}/_sim/webhooks"
    end = time.monotonic() + 20
    while time.monotonic() < end:
        deliveries = httpx.get(deliveries_url, timeout=5).json()
        if any(d["transId"] == paid.json()["gateway"]["transaction_id"] and d["delivered"] for d in deliveries):
            assert {d["lastStatus"] for d in deliveries} == {200}
            return
        time.sleep(0.1)  # another process's state, polled under a deadline
    pytest.fail(f"no accepted webhook delivery: {deliveries}")
