#!/usr/bin/env python3
"""Exit 0 when a PostgreSQL server answers at the URL given, 1 otherwise (used by `make test`)."""

from __future__ import annotations

import sys

import psycopg
from sqlalchemy.engine import make_url


def main(url: str) -> int:
    parsed = make_url(url)
    try:
        with psycopg.connect(
            host=parsed.host or "127.0.0.1",
            port=parsed.port or 5432,
            user=parsed.username or "postgres",
            password=parsed.password,
            dbname=parsed.database or "postgres",
            connect_timeout=3,
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return 1  # `make test` says so in one line
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
