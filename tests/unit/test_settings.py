import os
from pathlib import Path

import pytest

from payment_service.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def _example_variables() -> dict[str, str]:
    variables = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value
    return variables


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("PAYMENTS_") or name in {"BOOTSTRAP_SERVER", "TRANSACTION_KEY", "API_LOGIN_ID"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(ENV_EXAMPLE.parent / "tests")  # no .env of a developer's is read
    return monkeypatch


class TestSettings:
    def test_every_variable_of_env_example_names_a_setting(self, clean_env: pytest.MonkeyPatch) -> None:
        settings = Settings().model_dump()
        for name, value in _example_variables().items():
            group, _, key = name.removeprefix("PAYMENTS_").lower().partition("__")
            assert group in settings, name
            assert key in settings[group] or (group, key) == ("log", "json"), name
            clean_env.setenv(name, value)
        loaded = Settings()
        assert loaded.kafka.consumer_max_in_flight == 64
        assert loaded.gateway.transaction_key.get_secret_value() == "simTransKey00001"

    def test_the_original_services_names_are_read_below_the_prefixed_ones(self, clean_env: pytest.MonkeyPatch) -> None:
        clean_env.setenv("BOOTSTRAP_SERVER", "legacy:9092")
        clean_env.setenv("KAFKA_PAYMENT_TOPIC", "legacy-payments")
        clean_env.setenv("TRANSACTION_KEY", "legacy-key")
        clean_env.setenv("PAYMENTS_KAFKA__PAYMENT_TOPIC", "new-payments")
        settings = Settings()
        assert settings.kafka.bootstrap_servers == "legacy:9092"
        assert settings.kafka.payment_topic == "new-payments"
        assert settings.gateway.transaction_key.get_secret_value() == "legacy-key"

    def test_null_turns_the_worker_metrics_endpoint_off(self, clean_env: pytest.MonkeyPatch) -> None:
        clean_env.setenv("PAYMENTS_WORKER__METRICS_PORT", "null")
        assert Settings().worker.metrics_port is None

    def test_secrets_are_masked_in_the_settings_repr(self, clean_env: pytest.MonkeyPatch) -> None:
        clean_env.setenv("PAYMENTS_GATEWAY__TRANSACTION_KEY", "very-secret-key-1")
        assert "very-secret-key-1" not in repr(Settings())
