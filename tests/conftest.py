"""Session-wide fixtures shared by every test package."""

import atexit
import functools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# The container image tests need an image built first: `make image-test` builds one and names it here.
collect_ignore = [] if os.environ.get("PAYMENTS_TEST_IMAGE") else ["image"]

# --- Kafka -----------------------------------------------------------------------------------------

KAFKA_SCRIPT = REPO_ROOT / "scripts" / "kafka" / "kafka.sh"
# kafka.sh bounds the broker's readiness itself; this also covers the first jar download.
KAFKA_SCRIPT_TIMEOUT_S = 600


@dataclass(frozen=True, slots=True)
class KafkaBroker:
    """The session's broker. ``script_env`` is what kafka.sh was run with; None for an outside broker."""

    bootstrap: str
    script_env: dict[str, str] | None


def run_kafka_script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 (a fixed script of this repository)
        [str(KAFKA_SCRIPT), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=KAFKA_SCRIPT_TIMEOUT_S,
        check=False,
    )


def free_tcp_ports(count: int) -> list[int]:
    # All bound at once so they differ; the broker binds them right after they are released.
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def start_session_kafka() -> KafkaBroker:
    port, controller_port = free_tcp_ports(2)
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="kafka-test-", dir=REPO_ROOT / "var")
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_DATA_DIR": data_dir,
    }
    # Registered before starting: a broker left half-started is stopped too when the process exits.
    cleanup = functools.partial(stop_session_kafka, env)
    atexit.register(cleanup)
    hint = (
        f"Could not start a Kafka broker with `scripts/kafka/kafka.sh start` "
        f"(KAFKA_PORT={port} KAFKA_CONTROLLER_PORT={controller_port} KAFKA_DATA_DIR={data_dir}); "
        "it needs Java 17+ and Maven. Or point PAYMENTS_TEST_KAFKA_BOOTSTRAP at a running broker."
    )
    try:
        result = run_kafka_script("start", env)
    except subprocess.TimeoutExpired as exc:
        result = subprocess.CompletedProcess(exc.cmd, -1, "", f"timed out after {exc.timeout} s")
    if result.returncode != 0:
        # The data dir stays, with the broker's logs, for whoever reads this failure.
        atexit.unregister(cleanup)
        stop_session_kafka(env, keep_data=True)
        pytest.fail(f"{hint}\n{result.stdout}{result.stderr}", pytrace=False)
    return KafkaBroker(bootstrap=f"127.0.0.1:{port}", script_env=env)


def stop_session_kafka(env: dict[str, str], *, keep_data: bool = False) -> None:
    """Stop the broker and delete its data. Idempotent: also the atexit fallback."""
    data_dir = Path(env["KAFKA_DATA_DIR"])
    if not data_dir.exists():
        return
    result = run_kafka_script("stop", env)
    if result.returncode == 0 and not keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """A Kafka broker for the whole session, started on first use only.

    PAYMENTS_TEST_KAFKA_BOOTSTRAP=host:port uses a running broker instead. Otherwise kafka.sh starts
    one on free ports with a fresh data dir under var/, so a `make run` broker on 9092 is left alone.
    """
    outside = os.environ.get("PAYMENTS_TEST_KAFKA_BOOTSTRAP")
    if outside:
        yield KafkaBroker(bootstrap=outside, script_env=None)
        return
    broker = start_session_kafka()
    assert broker.script_env is not None
    try:
        yield broker
    finally:
        stop_session_kafka(broker.script_env)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: KafkaBroker) -> str:
    """``host:port`` of the session's Kafka broker (see `kafka_broker`)."""
    return kafka_broker.bootstrap
