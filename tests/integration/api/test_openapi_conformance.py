"""The served API agrees with its own OpenAPI document: Schemathesis, every check, every phase.

The API is served by uvicorn on 127.0.0.1 with the real simulator, a seeded reference db-service that
requires a service token, and the session's Kafka broker (so `/readyz` is ready). Schemathesis runs as
its command line does (`st run`), with the bearer token of the seeded customer, so generated bodies pay
real orders too. `make test` runs a bounded number of examples per operation; `make fuzz` sets
`PAYMENTS_FUZZ_EXAMPLES` higher. The run's summary (cases generated, failures) is printed.
"""

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from payment_service.api.app import create_app
from payment_service.api.auth import mint_token
from tests.integration.conftest import build_settings
from tests.support.db_service import run_db_service
from tests.support.events import fresh_kafka_settings
from tests.support.servers import serve_app
from tests.support.simulator import SimulatorHandle

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "tests" / "schemathesis" / "schemathesis.toml"
EXAMPLES = int(os.environ.get("PAYMENTS_FUZZ_EXAMPLES", "15"))
SEEDED_CUSTOMER = "42"
DB_SERVICE_TOKEN = "conformance-db-service-token"
RUN_DEADLINE_S = float(os.environ.get("PAYMENTS_FUZZ_DEADLINE_S", "300"))


@pytest.fixture(scope="module")
def served_api(
    tmp_path_factory: pytest.TempPathFactory, simulator: SimulatorHandle, kafka_bootstrap: str
) -> Iterator[tuple[str, str]]:
    """(base URL, a bearer token of the seeded customer, with the admin role) of an API served over TCP."""
    with run_db_service(tmp_path_factory.mktemp("db-service"), token=DB_SERVICE_TOKEN) as db:
        db.seed()
        settings = build_settings(tmp_path_factory.mktemp("api"), simulator, db)
        kafka = asyncio.run(fresh_kafka_settings(kafka_bootstrap))
        settings = settings.model_copy(update={"kafka": kafka})
        # An admin customer: pays its own orders and may refund them, so every operation is reached.
        token = mint_token(settings.auth, customer_id=SEEDED_CUSTOMER, roles=("admin",), ttl_s=3600)
        with serve_app(create_app(settings)) as url:
            yield url, token


class TestOpenApiConformance:
    def test_schemathesis_finds_nothing(self, served_api: tuple[str, str], tmp_path: Path) -> None:
        url, token = served_api
        command = [
            str(Path(sys.executable).parent / "st"),
            "--config-file",
            str(CONFIG),
            "--no-color",
            "run",
            f"{url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES),
            "--header",
            f"Authorization: Bearer {token}",
            "--report-dir",
            str(tmp_path),
        ]

        run = subprocess.run(  # noqa: S603 - our own virtualenv's Schemathesis, fixed arguments
            command, capture_output=True, text=True, timeout=RUN_DEADLINE_S, check=False, cwd=tmp_path
        )

        summary = re.search(r"(\d+) generated, .*", run.stdout)
        print(f"schemathesis: {summary[0] if summary else 'no summary'}")  # noqa: T201 - the run's figures
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
        assert summary is not None
        assert int(summary[1]) > 0
