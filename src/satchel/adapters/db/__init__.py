"""PostgreSQL through SQLAlchemy 2 (async, psycopg 3), with Alembic migrations."""
