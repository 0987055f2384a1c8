"""Vigil storage: schema migrations, connection pools, aggregates and the embedded PostgreSQL."""
