"""Database access: tables, the engines, and one module of queries per resource."""
