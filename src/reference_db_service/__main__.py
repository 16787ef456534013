"""`python -m reference_db_service` runs the `reference-db-service` command."""

from reference_db_service.cli import app

app()
