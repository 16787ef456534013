"""Alembic migrations of the local store, shipped in the package so an installed service has them.

`store/schema.py` applies them on start; `env.py` runs them on the connection it is handed.
"""
