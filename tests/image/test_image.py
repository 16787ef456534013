"""The container image of `deploy/Containerfile`, built by `make image-test` (which names it in PAYMENTS_TEST_IMAGE).

Commands run inside the image with `buildah run --isolation chroot`, on the host's network: the API from the
image serves against the real simulator, reference db-service and Kafka broker of this test run.
"""

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from payment_service.api.auth import mint_token
from payment_service.settings import AuthSettings
from tests.conftest import free_tcp_ports
from tests.support.db_service import DbServiceHandle, run_db_service
from tests.support.events import fresh_kafka_settings, header, read_topic
from tests.support.simulator import SimulatorHandle, run_simulator

IMAGE = os.environ.get("PAYMENTS_TEST_IMAGE", "")
USER_ID = 10001
START_DEADLINE_S = 60
VISA = "4111111111111111"
BUILDAH = shutil.which("buildah") or "/usr/bin/buildah"
COMMANDS = ("payment-service", "reference-db-service", "authorize-net-simulator")


def buildah(*args: str, timeout_s: float = 120) -> str:
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [BUILDAH, *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    assert result.returncode == 0, f"buildah {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


def run_inside(container: str, *command: str) -> str:
    return buildah("run", "--isolation", "chroot", "--network", "host", container, "--", *command)


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    if not IMAGE:
        pytest.fail("PAYMENTS_TEST_IMAGE is not set: run these tests with `make image-test`", pytrace=False)
    name = buildah("from", "--pull=never", IMAGE).strip()
    try:
        yield name
    finally:
        buildah("rm", name)


@pytest.fixture(scope="module")
def image_config() -> dict[str, Any]:
    inspected: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", IMAGE))
    return inspected


@pytest.fixture(scope="module")
def root_filesystem(container: str) -> Iterator[Path]:
    mount = Path(buildah("mount", container).strip())
    try:
        yield mount
    finally:
        buildah("umount", container)


class TestImageContents:
    @pytest.mark.parametrize("command", COMMANDS)
    def test_each_command_answers_help(self, container: str, command: str) -> None:
        assert "Usage:" in run_inside(container, command, "--help")

    def test_processes_run_as_an_unprivileged_user(self, container: str, image_config: dict[str, Any]) -> None:
        assert image_config["Docker"]["config"]["User"] == f"{USER_ID}:{USER_ID}"
        assert run_inside(container, "id", "-u").strip() == str(USER_ID)

    def test_labels_healthcheck_and_default_command(self, image_config: dict[str, Any]) -> None:
        config = image_config["Docker"]["config"]
        assert config["Labels"]["org.opencontainers.image.title"] == "payment-service"
        assert config["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
        assert "HEALTHCHECK_URL" in " ".join(config["Healthcheck"]["Test"])
        assert config["Cmd"] == ["payment-service", "api"]

    def test_no_repository_files_tests_caches_secrets_or_compilers(self, root_filesystem: Path) -> None:
        ours = [root_filesystem / "opt" / "payment-service", root_filesystem / "app"]
        found = [
            path.relative_to(root_filesystem)
            for top in ours
            for path in top.rglob("*")
            if path.name in {".git", "__pycache__", ".env", "conftest.py", ".pytest_cache", ".mypy_cache", "id_rsa"}
            or path.suffix in {".pyc", ".sqlite3"}
        ]
        assert found == []
        # The project's tests and benchmarks (third-party packages may ship test modules of their own).
        site_packages = next((root_filesystem / "opt" / "payment-service").glob("lib/python3*/site-packages"))
        assert sorted(p.name for p in site_packages.iterdir() if p.name in {"tests", "bench", "scripts"}) == []
        assert not (root_filesystem / "app" / "tests").exists()
        private_keys = [
            path.relative_to(root_filesystem)
            for top in ours
            for path in [*top.rglob("*.pem"), *top.rglob("*.key")]
            if b"PRIVATE KEY" in path.read_bytes()
        ]
        assert private_keys == []
        for leftover in ("src", "wheels", "root/.cache", "app/var/payment-service.sqlite3", ".git"):
            assert not (root_filesystem / leftover).exists(), leftover
        assert not list((root_filesystem / "opt" / "payment-service").glob("lib/python3*/site-packages/pip"))
        for compiler in ("gcc", "cc", "c++", "x86_64-linux-gnu-gcc", "make"):
            assert not (root_filesystem / "usr" / "bin" / compiler).exists(), compiler


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorHandle]:
    with run_simulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def db_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DbServiceHandle]:
    with run_db_service(tmp_path_factory.mktemp("db-service")) as handle:
        yield handle


def uids_of_api_processes(port: int) -> set[int]:
    """Real uids of the Python processes running `payment-service api --port <port>` (visible on the host)."""
    uids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text()
        except OSError:
            continue
        # Not `buildah run …` itself (root by design), the Python interpreter it started in the image.
        if Path(argv[0].decode()).name.startswith("python") and b"api" in argv and str(port).encode() in argv:
            (uid_line,) = [line for line in status.splitlines() if line.startswith("Uid:")]
            uids.add(int(uid_line.split()[1]))
    return uids


@contextmanager
def serving_api(
    container: str, env: dict[str, str], *, port: int, log_path: Path
) -> Iterator["subprocess.Popen[bytes]"]:
    """`payment-service api` inside the image on the host's network, stopped with SIGTERM at the end."""
    env_args = [arg for name, value in env.items() for arg in ("--env", f"{name}={value}")]
    command = [BUILDAH, "run", "--isolation", "chroot", "--network", "host", *env_args, container, "--"]
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(  # noqa: S603 - fixed arguments
            [*command, "payment-service", "api", "--port", str(port)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield server
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


class TestApiFromTheImage:
    async def test_pays_an_order_against_the_stack_on_the_host(
        self,
        tmp_path: Path,
        container: str,
        simulator: SimulatorHandle,
        db_service: DbServiceHandle,
        kafka_bootstrap: str,
    ) -> None:
        kafka = await fresh_kafka_settings(kafka_bootstrap)
        (port,) = free_tcp_ports(1)
        env = {
            "PAYMENTS_API__HOST": "127.0.0.1",
            "PAYMENTS_GATEWAY__ENDPOINT": simulator.api_url,
            "PAYMENTS_GATEWAY__LOGIN_ID": simulator.login_id,
            "PAYMENTS_GATEWAY__TRANSACTION_KEY": simulator.transaction_key,
            "PAYMENTS_GATEWAY__SIGNATURE_KEY": simulator.signature_key,
            "PAYMENTS_DB_SERVICE__BASE_URL": db_service.base_url,
            "PAYMENTS_KAFKA__BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PAYMENTS_KAFKA__PAYMENT_TOPIC": kafka.payment_topic,
            "PAYMENTS_KAFKA__NOTIFICATION_TOPIC": kafka.notification_topic,
            "PAYMENTS_KAFKA__DLQ_TOPIC": kafka.dlq_topic,
            "PAYMENTS_STORE__DATABASE_URL": f"sqlite+aiosqlite:////tmp/payments-{port}.sqlite3",
        }
        if db_service.token:
            env["PAYMENTS_DB_SERVICE__TOKEN"] = db_service.token
        log_path = tmp_path / "api.log"
        base_url = f"http://127.0.0.1:{port}"
        with serving_api(container, env, port=port, log_path=log_path) as server:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
                await wait_ready(client, server, log_path)
                assert uids_of_api_processes(port) == {USER_ID}

                customer = str(db_service.create_customer()["id"])
                product = db_service.create_product("Blue mug", "19.99")
                order_id = str(db_service.create_order(customer, [(str(product["id"]), 3)])["id"])
                token = mint_token(AuthSettings(), customer_id=customer, roles=(), ttl_s=600)
                body = {
                    "order_id": order_id,
                    "payment": {"card": {"number": VISA, "expiration": "2031-12", "cvv": "123"}},
                }
                response = await client.post("/payments/pay", json=body, headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 201, response.text
                payment = response.json()
                assert (payment["status"], payment["amount"]) == ("approved", "59.97")
                metrics = (await client.get("/metrics")).text
                assert "payment_service_payments_total" in metrics
                # The API's relay publishes the payment's event; wait for it while the API runs.
                async with asyncio.timeout(START_DEADLINE_S):
                    (record,) = await read_topic(kafka_bootstrap, kafka.payment_topic, at_least=1)
        assert header(record, "ce_type") == "payment.approved"
        ledger = [t for t in simulator.transactions() if t.get("transId") == payment["gateway"]["transaction_id"]]
        assert len(ledger) == 1
        assert VISA.encode() not in log_path.read_bytes()


async def wait_ready(client: httpx.AsyncClient, server: "subprocess.Popen[bytes]", log_path: Path) -> None:
    async with asyncio.timeout(START_DEADLINE_S):
        while True:
            if server.poll() is not None:
                raise AssertionError(f"the API in the image exited ({server.returncode}); its output: {log_path}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
