"""SQL files: BigQuery Standard SQL kept in ``nbcore/sql/<stage>/<name>.sql``.

One transformation per file. Values are always query parameters (``@start_date``),
never formatted into the text. Backends ask this module for the text in their dialect:
BigQuery runs it as written, DuckDB gets it through sqlglot. A few statements are generated
from the schema instead of written by hand (``GENERATED``: one ``UNION ALL`` branch per table,
``nbcore/schema/coverage.py``); they are read under a file name like the others.
"""
from __future__ import annotations

from . import cachedir
from .errors import RunbookError

import hashlib
import re
from functools import lru_cache
from pathlib import Path

SQL_DIR = Path(__file__).parent / "sql"
_PARAM = re.compile(r"(?<![@\w])@(\w+)")


class SqlFileError(RunbookError, ValueError):
    """A .sql file is missing or cannot be translated."""


def sql_path(name: str) -> Path:
    """``validate/key_checks`` -> the file ``nbcore/sql/validate/key_checks.sql``."""
    path = SQL_DIR / (name if name.endswith(".sql") else f"{name}.sql")
    if not path.is_file():
        known = sorted([str(p.relative_to(SQL_DIR))[:-4] for p in SQL_DIR.rglob("*.sql")] + list(GENERATED))
        raise SqlFileError(f"no SQL file {path}; known: {', '.join(known)}")
    return path


def _generated() -> dict:
    from .schema import coverage

    return {"validate/present_games": coverage.validate_present_games,
            "derive/present_games": coverage.derive_present_games}


GENERATED = ("validate/present_games", "derive/present_games")


#: where a generated statement comes from: its text changes only when one of these does
_GENERATOR_FILES = ("schema/*.yaml", "schema/__init__.py", "schema/coverage.py")


@lru_cache(maxsize=1)
def _cache() -> Path | None:
    """Where translations and generated statements are kept (``$RUNBOOK_SQL_CACHE``, ``off``: nowhere)."""
    return cachedir.folder("RUNBOOK_SQL_CACHE", "sql")


def _sha(*parts: str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode())
        h.update(b"\0")
    return h.hexdigest()


@lru_cache(maxsize=1)
def _sqlglot_version() -> str:
    """The installed sqlglot's version, from its package metadata (no import of sqlglot): a
    translation is only reused by the sqlglot that made it."""
    from importlib.metadata import version

    return version("sqlglot")


@lru_cache(maxsize=1)
def _generator_hash() -> str:
    base = Path(__file__).parent
    files = sorted(f for pattern in _GENERATOR_FILES for f in base.glob(pattern))
    return _sha(*(f"{f.relative_to(base)}\n{f.read_text()}" for f in files))


@lru_cache(maxsize=None)
def read_sql(name: str) -> str:
    """The BigQuery text of a SQL file (or of a statement generated from the schema; kept in the
    on-disk cache under the hash of the files that generate it, so reading it needs no sqlglot)."""
    key = name[:-4] if name.endswith(".sql") else name
    if key in GENERATED:
        ckey = "gen-" + _sha(key, _generator_hash(), _sqlglot_version())
        text = cachedir.read(_cache(), ckey)
        if text is None:
            text = _generated()[key]()
            cachedir.write(_cache(), ckey, text)
        return text
    return sql_path(name).read_text()


def parameter_names(bigquery_sql: str) -> set[str]:
    """Names of the ``@query_parameters`` a BigQuery statement uses."""
    stripped = re.sub(r"--[^\n]*|'(?:[^'\\]|\\.)*'", "", bigquery_sql)
    return set(_PARAM.findall(stripped))


@lru_cache(maxsize=512)
def to_duckdb(bigquery_sql: str) -> str:
    """Translate BigQuery Standard SQL to DuckDB with sqlglot (``@p`` becomes ``$p``); a text
    translated before, by this sqlglot, is read from the on-disk cache instead (``nbcore.cachedir``)."""
    key = "duckdb-" + _sha(bigquery_sql, _sqlglot_version())
    text = cachedir.read(_cache(), key)
    if text is None:
        text = _translate(bigquery_sql)
        cachedir.write(_cache(), key, text)
    return text


def _translate(bigquery_sql: str) -> str:
    import sqlglot

    try:
        statements = sqlglot.parse(bigquery_sql, read="bigquery")
    except sqlglot.errors.ParseError as e:
        raise SqlFileError(f"cannot parse BigQuery SQL: {e}\n{bigquery_sql[:500]}") from e
    out = []
    for statement in statements:
        if statement is None:
            continue
        out.append(statement.sql(dialect="duckdb"))
    return ";\n".join(out)


def qualify_tables(bigquery_sql: str, project: str | None, dataset_suffix: str = "") -> str:
    """Give every ``dataset.table`` a project and a dataset suffix, for BigQuery."""
    import sqlglot
    from sqlglot import exp

    from .schema import DATASET_ORDER

    def fix(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Table) and node.db in DATASET_ORDER:
            node.set("db", exp.to_identifier(node.db + dataset_suffix))
            if project:
                node.set("catalog", exp.to_identifier(project))
        return node

    statements = sqlglot.parse(bigquery_sql, read="bigquery")
    return ";\n".join(s.transform(fix).sql(dialect="bigquery") for s in statements if s is not None)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def render_template(name: str, **identifiers: str) -> str:
    """A SQL file with ``{{placeholders}}`` for *identifiers* (table and column names from
    ``nbcore.schema``), never for values. Each identifier is checked before it is placed."""
    text = read_sql(name)
    for key, value in identifiers.items():
        parts = [p.strip() for p in re.split(r",|\bIS NULL OR\b|\bIS NULL\b", value) if p.strip()]
        bad = [p for p in parts if not _IDENT.match(p)]
        if bad:
            raise SqlFileError(f"{name}: {key} must be identifiers from the schema, got {bad}")
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise SqlFileError(f"{name}: unfilled placeholder in {text[text.index('{{'):][:40]!r}")
    return text
