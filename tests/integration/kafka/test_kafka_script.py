"""scripts/kafka/kafka.sh as a developer and the test session use it."""

import socket
from pathlib import Path

import pytest

from tests.conftest import KafkaBroker, free_tcp_ports, run_kafka_script


def script_env(kafka_broker: KafkaBroker) -> dict[str, str]:
    if kafka_broker.script_env is None:
        pytest.skip("the broker comes from PAYMENTS_TEST_KAFKA_BOOTSTRAP, not from kafka.sh")
    return kafka_broker.script_env


def idle_env(data_dir: Path) -> dict[str, str]:
    port, controller_port = free_tcp_ports(2)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller_port),
        "KAFKA_DATA_DIR": str(data_dir),
    }


class TestKafkaScript:
    def test_status_reports_the_running_broker_and_its_bootstrap(self, kafka_broker: KafkaBroker) -> None:
        result = run_kafka_script("status", script_env(kafka_broker))

        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("running ")
        assert f"bootstrap={kafka_broker.bootstrap}" in result.stdout

    def test_second_start_leaves_the_running_broker_alone(self, kafka_broker: KafkaBroker) -> None:
        env = script_env(kafka_broker)
        pid_before = (Path(env["KAFKA_DATA_DIR"]) / "kafka.pid").read_text()

        result = run_kafka_script("start", env)

        assert result.returncode == 0, result.stderr
        assert "already running" in result.stdout
        assert (Path(env["KAFKA_DATA_DIR"]) / "kafka.pid").read_text() == pid_before

    def test_status_without_a_broker_says_stopped_and_exits_3(self, tmp_path: Path) -> None:
        result = run_kafka_script("status", idle_env(tmp_path))

        assert result.returncode == 3
        assert result.stdout.startswith("stopped ")

    def test_stop_without_a_broker_succeeds(self, tmp_path: Path) -> None:
        result = run_kafka_script("stop", idle_env(tmp_path))

        assert result.returncode == 0
        assert "not running" in result.stdout

    def test_start_on_a_port_in_use_fails_naming_the_port(self, tmp_path: Path) -> None:
        env = idle_env(tmp_path)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
            taken.bind(("127.0.0.1", int(env["KAFKA_PORT"])))
            taken.listen()

            result = run_kafka_script("start", env)

        assert result.returncode == 1
        assert f"port {env['KAFKA_PORT']} is in use" in result.stderr
