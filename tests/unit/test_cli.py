"""`payment-service api` refuses forked workers: one process per API replica (docs/operations.md)."""

from typer.testing import CliRunner

from payment_service.cli import app


def test_api_with_several_workers_is_refused_with_what_to_do_instead() -> None:
    result = CliRunner().invoke(app, ["api", "--workers", "2"])

    assert result.exit_code == 2
    assert "replicas" in result.output
    assert "docs/operations.md" in result.output
