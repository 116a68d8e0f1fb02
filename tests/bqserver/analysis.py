"""What a statement reads: which tables, which of their columns, which partitions.

This is where the loopback server decides what real BigQuery would refuse (a query on a
table that requires a partition filter, without one) and how many bytes a query scans.

**The byte estimate.** BigQuery bills the bytes of the columns a query reads, in the
partitions it cannot prune. For every table a statement scans (each ``FROM``/``JOIN``
of every ``SELECT``, and the target of ``DELETE``/``UPDATE``/``MERGE``) the server takes

* the columns read: columns qualified with that table's alias anywhere in the SELECT,
  plus unqualified columns of the SELECT itself whose name is a column of the table;
  ``*``, ``alias.*`` or the alias used as a value (``TO_JSON_STRING(t)``) read every
  column; DML targets read every column (as BigQuery bills DML);
* the partitions scanned: the conjuncts of ``WHERE`` and ``JOIN ... ON`` that reference
  only the table's partition column (plus literals and parameters) prune partitions;
  with none, every partition is scanned;

and sums, over the rows of the scanned partitions, BigQuery's logical sizes: 8 bytes per
non-NULL INT64/FLOAT64/DATE/TIMESTAMP/DATETIME/TIME, 16 per NUMERIC, 1 per BOOL,
2 + UTF-8 length per STRING/BYTES, 0 for NULL. Column pruning through subqueries is not
modelled: a ``SELECT *`` in a subquery counts every column even if the outer query uses
fewer (BigQuery would prune them), so the estimate errs on the high side.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional

from sqlglot import exp


@dataclass
class Scan:
    """One table read by one statement."""

    meta: "object"  # engine.TableMeta
    alias: str
    columns: set[str] = field(default_factory=set)
    all_columns: bool = False
    pruning: list[exp.Expression] = field(default_factory=list)


def conjuncts(e: Optional[exp.Expression]) -> Iterator[exp.Expression]:
    if e is None:
        return
    if isinstance(e, exp.Where):
        yield from conjuncts(e.this)
    elif isinstance(e, exp.And):
        yield from conjuncts(e.left)
        yield from conjuncts(e.right)
    elif isinstance(e, exp.Paren):
        yield from conjuncts(e.this)
    else:
        yield e


def _from_items(select: exp.Select) -> list[exp.Expression]:
    items = []
    frm = select.args.get("from_") or select.args.get("from")
    if frm is not None:
        items.append(frm.this)
    for j in select.args.get("joins") or []:
        items.append(j.this)
    return items


def _prunes(conj: exp.Expression, alias: str, table_name: str, part_col: str) -> bool:
    """Whether a conjunct references only this table's partition column (and constants)."""
    if conj.find(exp.Select) is not None or conj.find(exp.Subquery) is not None:
        return False
    cols = list(conj.find_all(exp.Column))
    if not cols:
        return False
    for c in cols:
        if c.name.lower() != part_col.lower():
            return False
        if c.table and c.table not in (alias, table_name):
            return False
    return True


def _strip_qualifier(conj: exp.Expression) -> exp.Expression:
    out = conj.copy()
    for c in out.find_all(exp.Column):
        c.set("table", None)
        c.set("db", None)
        c.set("catalog", None)
    return out


def plan_scans(stmt: exp.Expression, resolve: Callable[[exp.Table], Optional[object]]) -> list[Scan]:
    """Every table the statement reads, with the columns and partition predicates it uses."""
    scans: list[Scan] = []

    for select in stmt.find_all(exp.Select):
        sources = []
        for item in _from_items(select):
            if isinstance(item, exp.Table):
                meta = resolve(item)
                if meta is not None:
                    sources.append((item, meta))
        if not sources:
            continue
        preds = list(conjuncts(select.args.get("where")))
        for j in select.args.get("joins") or []:
            preds.extend(conjuncts(j.args.get("on")))
        select_star = any(isinstance(e, exp.Star) for e in select.expressions)
        for tbl, meta in sources:
            alias = tbl.alias_or_name
            scan = Scan(meta=meta, alias=alias, all_columns=select_star)
            names = set(meta.column_names)
            lower = {n.lower(): n for n in names}
            for col in select.find_all(exp.Column):
                q = col.table
                if isinstance(col.this, exp.Star):
                    if q in (alias, tbl.name):
                        scan.all_columns = True
                    continue
                if q:
                    if q in (alias, tbl.name) and col.name.lower() in lower:
                        scan.columns.add(lower[col.name.lower()])
                    continue
                if col.find_ancestor(exp.Select) is not select:
                    continue
                if col.name.lower() in lower:
                    scan.columns.add(lower[col.name.lower()])
                elif col.name == alias:
                    scan.all_columns = True  # the row as a value, e.g. TO_JSON_STRING(t)
            if meta.partition_field:
                scan.pruning = [
                    _strip_qualifier(c) for c in preds if _prunes(c, alias, tbl.name, meta.partition_field)
                ]
            scans.append(scan)

    if isinstance(stmt, (exp.Delete, exp.Update)):
        target = stmt.this
        if isinstance(target, exp.Table):
            meta = resolve(target)
            if meta is not None:
                alias = target.alias_or_name
                scan = Scan(meta=meta, alias=alias, all_columns=True)
                if meta.partition_field:
                    scan.pruning = [
                        _strip_qualifier(c)
                        for c in conjuncts(stmt.args.get("where"))
                        if _prunes(c, alias, target.name, meta.partition_field)
                    ]
                scans.append(scan)
    elif isinstance(stmt, exp.Merge):
        for node in (stmt.this, stmt.args.get("using")):
            if isinstance(node, exp.Table):
                meta = resolve(node)
                if meta is not None:
                    scans.append(Scan(meta=meta, alias=node.alias_or_name, all_columns=True))
    return scans


def written_table(stmt: exp.Expression) -> Optional[exp.Table]:
    """The table a DML statement writes, if any."""
    if isinstance(stmt, (exp.Insert,)):
        target = stmt.this
        if isinstance(target, exp.Schema):
            target = target.this
        return target if isinstance(target, exp.Table) else None
    if isinstance(stmt, (exp.Delete, exp.Update, exp.Merge)):
        return stmt.this if isinstance(stmt.this, exp.Table) else None
    return None


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_TIME_KINDS = ("DATE", "TIMESTAMP", "DATETIME")


def parameter_types(config: dict) -> dict[str, str]:
    """``queryParameters`` -> {name: type}; an array as ``ARRAY<elem>``."""
    out = {}
    for p in config.get("queryParameters") or []:
        t = (p.get("parameterType") or {})
        name = str(t.get("type") or "").upper()
        if name == "ARRAY":
            name = f"ARRAY<{str((t.get('arrayType') or {}).get('type') or '').upper()}>"
        out[p.get("name")] = name
    return out


def temporal_mismatch(stmt: exp.Expression, column_types: dict[str, set[str]],
                      param_types: dict[str, str]) -> Optional[str]:
    """BigQuery's "No matching signature" for a DATE column compared with a TIMESTAMP (or
    DATETIME) parameter, which DuckDB would silently cast. *column_types* maps a column name
    to the types it has in the tables the statement reads; a name typed differently in two
    tables is left alone (this is a guard, not a resolver)."""

    def kind(e: exp.Expression) -> Optional[str]:
        if isinstance(e, exp.Column):
            ts = column_types.get(e.name.lower()) or set()
            return next(iter(ts)) if len(ts) == 1 else None
        if isinstance(e, exp.Parameter):
            return param_types.get(e.name)
        return None

    def clash(op: str, a: exp.Expression, b: exp.Expression, elem: bool = False) -> Optional[str]:
        ka, kb = kind(a), kind(b)
        if elem and kb and kb.startswith("ARRAY<"):
            kb = kb[6:-1]
        if ka in _TIME_KINDS and kb in _TIME_KINDS and ka != kb and (
                isinstance(a, exp.Parameter) or isinstance(b, exp.Parameter)):
            return f"No matching signature for operator {op} for argument types: {ka}, {kb}"
        return None

    for node in stmt.find_all(*_COMPARISONS, exp.Between, exp.In):
        if isinstance(node, exp.Between):
            for bound in (node.args.get("low"), node.args.get("high")):
                msg = bound is not None and clash("BETWEEN", node.this, bound)
                if msg:
                    return msg
        elif isinstance(node, exp.In):
            unnest = node.args.get("unnest")
            targets = list(unnest.expressions) if unnest is not None else list(node.expressions)
            for t in targets:
                msg = clash("IN", node.this, t, elem=unnest is not None)
                if msg:
                    return msg
        else:
            op = {exp.EQ: "=", exp.NEQ: "!=", exp.GT: ">", exp.GTE: ">=", exp.LT: "<", exp.LTE: "<="}[type(node)]
            msg = clash(op, node.this, node.expression) or clash(op, node.expression, node.this)
            if msg:
                return msg
    return None
