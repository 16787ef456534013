from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.db_service import DbServiceHandle, run_db_service


@pytest.fixture
def db_service(tmp_path: Path) -> Iterator[DbServiceHandle]:
    with run_db_service(tmp_path) as handle:
        yield handle


@pytest.fixture
def client(db_service: DbServiceHandle) -> Iterator[httpx.Client]:
    with db_service.client() as http:
        yield http
