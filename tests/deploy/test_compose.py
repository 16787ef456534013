"""`deploy/compose.yaml`: the services, their ports and health checks, and settings the code reads."""

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from authorize_net_simulator.settings import SimulatorSettings
from payment_service.settings import Settings
from reference_db_service.settings import ReferenceDbSettings
from tests.conftest import REPO_ROOT

COMPOSE = REPO_ROOT / "deploy" / "compose.yaml"
OURS = ("db-service", "simulator", "api", "worker")
# Read by the OpenTelemetry SDK itself, and by the image's HEALTHCHECK.
OUTSIDE_VARIABLES = frozenset({"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "HEALTHCHECK_URL"})


def services() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, Any] = document["services"]
    return found


def env_file_variables(service: dict[str, Any]) -> dict[str, str]:
    variables = {}
    for line in (COMPOSE.parent / service["env_file"]).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value
    return variables


def environment(service: dict[str, Any]) -> dict[str, str]:
    """What the container gets: its env_file, overridden by `environment`."""
    explicit = {name: str(value) for name, value in service.get("environment", {}).items()}
    return (env_file_variables(service) if "env_file" in service else {}) | explicit


def field_names(model: type[BaseModel]) -> set[str]:
    return {name for name, field in model.model_fields.items()} | {
        field.alias for field in model.model_fields.values() if field.alias
    }


def payments_setting_exists(name: str) -> bool:
    group, _, key = name.removeprefix("PAYMENTS_").lower().partition("__")
    if group not in Settings.model_fields:
        return False
    model = Settings.model_fields[group].annotation
    return isinstance(model, type) and issubclass(model, BaseModel) and key in field_names(model)


def prefixed_setting_exists(name: str, prefix: str, model: type[BaseSettings]) -> bool:
    return name.startswith(prefix) and name.removeprefix(prefix).lower() in field_names(model)


def container_port(mapping: str) -> int:
    return int(mapping.rsplit(":", 1)[1])


class TestCompose:
    def test_the_stack_has_kafka_in_kraft_mode_postgres_the_two_companions_the_api_and_the_worker(self) -> None:
        found = services()
        assert set(found) == {"kafka", "postgres", *OURS}
        assert found["kafka"]["image"].startswith("apache/kafka:")
        assert "controller" in found["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
        assert found["postgres"]["image"].startswith("postgres:")
        assert found["api"]["deploy"]["replicas"] == 2

    @pytest.mark.parametrize("name", OURS)
    def test_each_service_of_ours_runs_the_image_and_is_checked_on_its_own_port(self, name: str) -> None:
        service = services()[name]
        assert service["build"]["dockerfile"] == "deploy/Containerfile"
        assert (COMPOSE.parent / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        health_port = urlsplit(environment(service)["HEALTHCHECK_URL"]).port
        port_option = re.search(r"--port (\d+)", " ".join(service["command"]))
        listening = port_option[1] if port_option else environment(service)["PAYMENTS_WORKER__METRICS_PORT"]
        assert str(health_port) == str(listening)
        assert [container_port(mapping) for mapping in service["ports"]] == [health_port]

    def test_kafka_and_postgres_have_health_checks_that_the_others_wait_for(self) -> None:
        found = services()
        assert found["kafka"]["healthcheck"]["test"]
        assert found["postgres"]["healthcheck"]["test"]
        for name in ("api", "worker"):
            assert {
                dependency: condition["condition"] for dependency, condition in found[name]["depends_on"].items()
            } == {
                "kafka": "service_healthy",
                "postgres": "service_healthy",
                "db-service": "service_healthy",
                "simulator": "service_healthy",
            }

    @pytest.mark.parametrize("name", ["api", "worker"])
    def test_the_payment_services_read_env_example_and_only_settings_that_exist(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        variables = environment(services()[name])
        assert set(env_file_variables(services()[name])) <= set(variables)
        unknown = [v for v in variables if not payments_setting_exists(v) and v not in OUTSIDE_VARIABLES]
        assert unknown == []
        for variable, value in variables.items():
            monkeypatch.setenv(variable, value)
        monkeypatch.chdir(REPO_ROOT / "deploy")  # no developer's .env
        settings = Settings()
        assert settings.api.host == "0.0.0.0"  # noqa: S104 - a container's
        assert urlsplit(settings.gateway.url).netloc == "simulator:8002"
        assert urlsplit(settings.db_service.base_url).netloc == "db-service:8001"
        assert settings.kafka.bootstrap_servers == "kafka:9092"
        assert "kafka:9092" in services()["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
        assert settings.store.database_url.startswith("postgresql+asyncpg://")
        assert settings.db_service.token is not None
        assert (
            settings.db_service.token.get_secret_value() == environment(services()["db-service"])["REFERENCE_DB_TOKEN"]
        )

    def test_the_companions_read_only_settings_that_exist(self) -> None:
        found = services()
        db_names = [v for v in environment(found["db-service"]) if v not in OUTSIDE_VARIABLES]
        assert db_names
        assert all(prefixed_setting_exists(v, "REFERENCE_DB_", ReferenceDbSettings) for v in db_names), db_names
        sim_names = [v for v in environment(found["simulator"]) if v not in OUTSIDE_VARIABLES]
        assert all(prefixed_setting_exists(v, "ANET_SIM_", SimulatorSettings) for v in sim_names), sim_names

    def test_the_postgres_init_script_creates_the_reference_db_services_database(self) -> None:
        database = urlsplit(environment(services()["db-service"])["REFERENCE_DB_DATABASE_URL"]).path.strip("/")
        (mount,) = [v for v in services()["postgres"]["volumes"] if v.startswith("./")]
        script = Path(COMPOSE.parent / mount.split(":")[0]).read_text()
        assert f"CREATE DATABASE {database}" in script
