"""The db-service adapter: orders, customers and products in; payment status and records out."""
