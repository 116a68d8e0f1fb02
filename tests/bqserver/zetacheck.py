"""Google's own analyzer over every statement the loopback server receives.

The server runs BigQuery SQL on DuckDB through sqlglot, so by itself it proves that the
backend's SQL *runs*, not that BigQuery would *accept* it: DuckDB is more forgiving (it
compares a DATE with a TIMESTAMP, coerces strings, accepts functions BigQuery lacks).
ZetaSQL is the GoogleSQL analyzer BigQuery is built on; the pip package ``zetasql`` ships it
as WebAssembly run by ``wasmtime``. Each statement of each job is analyzed against a catalog
of the tables the job references, as the server holds them (created by the backend from
``nbcore/schema/``, or staging tables), with the job's declared query parameter types
(the server has already refused unknown tables by then). A rejection becomes the
job's error (``invalidQuery``, "ZetaSQL rejected ...", with the statement), as BigQuery
would reply, and is kept in ``ZetaSQLChecker.rejections``.

Compiling the 34 MB module takes minutes on a small machine, so wasmtime's compilation
cache is switched on (``~/.cache/wasmtime``): the first run on a machine pays it, later
runs load in about a second.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Iterable, Optional

_SERVICE = None
_SERVICE_LOCK = threading.Lock()
# procedures the server runs itself; not statements ZetaSQL's catalog can resolve
_SKIP_PREFIXES = ("CALL BQ.ABORT_SESSION",)


def available() -> bool:
    try:
        import zetasql  # noqa: F401
        import wasmtime  # noqa: F401
    except ImportError:
        return False
    return True


def _service():
    """The process-wide ZetaSQL service, its compiled module taken from wasmtime's cache."""
    global _SERVICE
    with _SERVICE_LOCK:
        if _SERVICE is None:
            import wasmtime
            import zetasql.core.wasm_client as wasm_client
            from zetasql.core import ZetaSqlLocalService

            class CachedConfig(wasmtime.Config):
                def __init__(self) -> None:
                    super().__init__()
                    self.cache = True

            wasm_client.Config = CachedConfig
            _SERVICE = ZetaSqlLocalService.get_instance()
        return _SERVICE


def _kind(name: str):
    from zetasql.types import TypeKind

    return {
        "STRING": TypeKind.TYPE_STRING, "INT64": TypeKind.TYPE_INT64, "INTEGER": TypeKind.TYPE_INT64,
        "FLOAT64": TypeKind.TYPE_DOUBLE, "FLOAT": TypeKind.TYPE_DOUBLE, "NUMERIC": TypeKind.TYPE_NUMERIC,
        "BIGNUMERIC": TypeKind.TYPE_BIGNUMERIC, "BOOL": TypeKind.TYPE_BOOL, "BOOLEAN": TypeKind.TYPE_BOOL,
        "DATE": TypeKind.TYPE_DATE, "TIMESTAMP": TypeKind.TYPE_TIMESTAMP, "DATETIME": TypeKind.TYPE_DATETIME,
        "TIME": TypeKind.TYPE_TIME, "BYTES": TypeKind.TYPE_BYTES, "JSON": TypeKind.TYPE_JSON,
        "GEOGRAPHY": TypeKind.TYPE_GEOGRAPHY, "INTERVAL": TypeKind.TYPE_INTERVAL,
    }[name.upper()]


def field_type(f: dict):
    """A table schema field (REST ``TableFieldSchema``) as a ZetaSQL type."""
    from zetasql.types import ArrayType, StructField, StructType, Type, TypeKind

    if f["type"].upper() in ("RECORD", "STRUCT"):
        t = Type(type_kind=TypeKind.TYPE_STRUCT, struct_type=StructType(field=[
            StructField(field_name=s["name"], field_type=field_type(s)) for s in f.get("fields", [])]))
    else:
        t = Type(type_kind=_kind(f["type"]))
    if (f.get("mode") or "").upper() == "REPEATED":
        t = Type(type_kind=TypeKind.TYPE_ARRAY, array_type=ArrayType(element_type=t))
    return t


def parameter_type(ptype: dict):
    """A query parameter's declared type (REST ``QueryParameterType``) as a ZetaSQL type."""
    from zetasql.types import ArrayType, StructField, StructType, Type, TypeKind

    name = ptype["type"].upper()
    if name == "ARRAY":
        return Type(type_kind=TypeKind.TYPE_ARRAY, array_type=ArrayType(element_type=parameter_type(ptype["arrayType"])))
    if name == "STRUCT":
        return Type(type_kind=TypeKind.TYPE_STRUCT, struct_type=StructType(field=[
            StructField(field_name=s.get("name"), field_type=parameter_type(s["type"]))
            for s in ptype.get("structTypes", [])]))
    return Type(type_kind=_kind(name))


class ZetaSQLChecker:
    """Analyze job texts, each against a registered catalog of the tables it references."""

    def __init__(self) -> None:
        self.statements = 0        # statements analyzed
        self.seconds = 0.0         # time spent analyzing (registration included)
        self.rejections: list[dict] = []
        self._catalog_key: Optional[tuple] = None
        self._catalog_id: Optional[int] = None
        self._catalogs: dict[tuple, int] = {}   # registered catalogs by their tables, oldest first
        self._ok: dict[tuple, int] = {}   # (text, parameter types, catalog key) accepted -> statements
        self._lo = None

    def _language(self):
        from zetasql.types import ResolvedNodeKind as K

        if self._lo is None:
            lo = _service().get_language_options(maximum_features=True)
            lo.supported_statement_kinds = [
                K.RESOLVED_QUERY_STMT, K.RESOLVED_INSERT_STMT, K.RESOLVED_DELETE_STMT, K.RESOLVED_UPDATE_STMT,
                K.RESOLVED_MERGE_STMT, K.RESOLVED_BEGIN_STMT, K.RESOLVED_COMMIT_STMT, K.RESOLVED_ROLLBACK_STMT,
                K.RESOLVED_CREATE_TABLE_STMT, K.RESOLVED_CREATE_TABLE_AS_SELECT_STMT, K.RESOLVED_DROP_STMT,
            ]
            self._lo = lo
        return self._lo

    def _register(self, tables: dict[tuple[str, str, str], list[dict]]) -> int:
        from zetasql.types import SimpleCatalog, SimpleColumn, SimpleTable, ZetaSQLBuiltinFunctionOptions

        key = tuple(sorted((k, repr(v)) for k, v in tables.items()))
        self._catalog_key = key
        if key in self._catalogs:
            self._catalog_id = self._catalogs[key]
            return self._catalog_id
        svc = _service()
        while len(self._catalogs) >= 64:  # staging tables make one-off catalogs: keep the recent ones
            old_key = next(iter(self._catalogs))
            try:
                svc.unregister_catalog(registered_id=self._catalogs.pop(old_key))
            except Exception:  # pragma: no cover - a stale registration costs only memory
                pass

        def table(name: str, fields: list[dict]):
            return SimpleTable(name=name, column=[
                SimpleColumn(name=f["name"], type=field_type(f), is_writable_column=True) for f in fields])

        projects: dict[str, dict[str, list]] = {}
        datasets: dict[str, list] = {}
        root_tables = []
        for (project, dataset, name), fields in tables.items():
            projects.setdefault(project, {}).setdefault(dataset, []).append(table(name, fields))
            datasets.setdefault(dataset, []).append(table(name, fields))
            # one backquoted path (`project.dataset.table`) is a single identifier to the analyzer
            root_tables.append(table(f"{project}.{dataset}.{name}", fields))
            root_tables.append(table(f"{dataset}.{name}", fields))
        subs = [SimpleCatalog(name=p, catalog=[SimpleCatalog(name=d, table=ts) for d, ts in ds.items()])
                for p, ds in projects.items()]
        subs += [SimpleCatalog(name=d, table=ts) for d, ts in datasets.items() if d not in projects]
        root = SimpleCatalog(name="loopback", table=root_tables, catalog=subs,
                             builtin_function_options=ZetaSQLBuiltinFunctionOptions(language_options=self._language()))
        self._catalog_id = self._catalogs[key] = svc.register_catalog(simple_catalog=root).registered_id
        return self._catalog_id

    def check(self, text: str, tables: dict[tuple[str, str, str], list[dict]],
              parameters: Iterable[dict]) -> Optional[str]:
        """None if ZetaSQL accepts every statement of *text*, else "message; statement: ..."."""
        from zetasql.types import AnalyzerOptions, ErrorMessageMode, ParseResumeLocation

        if text.lstrip().upper().startswith(_SKIP_PREFIXES):
            return None
        params = sorted(((p.get("name") or "", repr(p.get("parameterType"))) for p in parameters))
        t0 = time.perf_counter()
        try:
            catalog_id = self._register(tables)
            key = (text, tuple(params), self._catalog_key)
            if key in self._ok:
                self.statements += self._ok[key]
                return None
            opts = AnalyzerOptions(
                language_options=self._language(), error_message_mode=ErrorMessageMode.ERROR_MESSAGE_ONE_LINE,
                query_parameters=[AnalyzerOptions.QueryParameter(name=p["name"], type=parameter_type(p["parameterType"]))
                                  for p in parameters],
            )
            svc = _service()
            data = text.encode("utf-8")
            pos, n = 0, 0
            while pos < len(data) and data[pos:].strip(b" \n\t;"):
                loc = ParseResumeLocation(input=text, byte_position=pos)
                try:
                    resp = svc.analyze(parse_resume_location=loc, options=opts, registered_catalog_id=catalog_id)
                except Exception as e:  # zetasql.core.exceptions.ServerError
                    stmt = data[pos:].decode("utf-8", "replace").split(";")[0].strip()
                    msg = str(e).replace("[INVALID_ARGUMENT] ", "")
                    self.rejections.append({"statement": stmt, "message": msg, "text": text})
                    return f"{msg}; statement: {stmt}"
                self.statements += 1
                n += 1
                new_pos = resp.resume_byte_position
                if new_pos is None or new_pos <= pos:
                    break
                pos = new_pos
            self._ok[key] = n
            return None
        finally:
            self.seconds += time.perf_counter() - t0


def tables_of(engine: Any) -> dict[tuple[str, str, str], list[dict]]:
    """The engine's tables as ``(project, dataset, table) -> fields``."""
    return {k: m.fields for k, m in engine.tables.items()}
