"""PostgreSQL schema migrations (a package only so the .sql files ship with it)."""
