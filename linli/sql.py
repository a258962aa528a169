"""SQL text built in Python: the one way a value becomes a string literal."""


def sql_text(value: str) -> str:
    """A SQL string literal holding `value` (quotes doubled), for DuckDB and SQLite alike."""
    return "'" + value.replace("'", "''") + "'"
