"""Type plumbing between BigQuery's REST shapes and DuckDB values.

BigQuery sends and receives typed values as JSON strings (``"42"``, ``"2024-03-25"``,
``"true"``); query parameters carry their type beside the value. These helpers turn
parameters into Python values DuckDB can bind, DuckDB result types into BigQuery schema
fields, and Python values back into the ``{"f": [{"v": ...}]}`` row format.
"""
from __future__ import annotations

import base64
import math
import re
from datetime import date, datetime, time, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Optional

from .errors import BQError

# BigQuery type (either spelling) -> DuckDB column type.
BQ_TO_DUCK = {
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "INTEGER": "BIGINT",
    "INT64": "BIGINT",
    "FLOAT": "DOUBLE",
    "FLOAT64": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "DECIMAL": "DECIMAL(38, 9)",
    "BIGNUMERIC": "DECIMAL(38, 9)",
    "BOOLEAN": "BOOLEAN",
    "BOOL": "BOOLEAN",
    "DATE": "DATE",
    "DATETIME": "TIMESTAMP",
    "TIMESTAMP": "TIMESTAMP",
    "TIME": "TIME",
    "JSON": "VARCHAR",
    "GEOGRAPHY": "VARCHAR",
}

# Standard SQL names -> the legacy names the REST API returns in table schemas.
LEGACY = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN", "STRUCT": "RECORD", "DECIMAL": "NUMERIC"}

# Bytes per value BigQuery bills for fixed-width types (STRING/BYTES: 2 + length).
FIXED_BYTES = {
    "INTEGER": 8, "FLOAT": 8, "NUMERIC": 16, "BIGNUMERIC": 32, "BOOLEAN": 1,
    "DATE": 8, "DATETIME": 8, "TIMESTAMP": 8, "TIME": 8,
}


def legacy(bq_type: str) -> str:
    t = bq_type.upper()
    return LEGACY.get(t, t)


def duck_type_for(field: dict) -> str:
    t = legacy(field.get("type", "STRING"))
    if t == "RECORD":
        raise BQError(501, "notImplemented", f"RECORD/STRUCT column {field.get('name')!r} is not supported by the loopback server")
    duck = BQ_TO_DUCK.get(t)
    if duck is None:
        raise BQError(400, "invalid", f"Invalid field type {field.get('type')!r} for field {field.get('name')!r}")
    if (field.get("mode") or "NULLABLE").upper() == "REPEATED":
        duck += "[]"
    return duck


def bq_field_for_duck(name: str, duck_type: str) -> dict:
    """A result column's BigQuery schema field from its DuckDB type name."""
    t = str(duck_type).upper()
    mode = "NULLABLE"
    if t.endswith("[]"):
        t, mode = t[:-2], "REPEATED"
    if t.startswith("DECIMAL"):
        scale = re.search(r",\s*(\d+)\)", t)
        bq = "INTEGER" if scale and scale.group(1) == "0" else "NUMERIC"
    elif t in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "UHUGEINT"):
        bq = "INTEGER"
    elif t in ("DOUBLE", "FLOAT", "REAL"):
        bq = "FLOAT"
    elif t in ("BOOLEAN",):
        bq = "BOOLEAN"
    elif t == "DATE":
        bq = "DATE"
    elif t.startswith("TIMESTAMP"):
        bq = "TIMESTAMP"
    elif t == "TIME":
        bq = "TIME"
    elif t == "BLOB":
        bq = "BYTES"
    elif t in ("NULL", '"NULL"'):
        bq = "INTEGER"
    else:  # VARCHAR, JSON, INTERVAL, STRUCT(...), UUID ...: shown as text
        bq = "STRING"
    return {"name": name, "type": bq, "mode": mode}


# -- query parameters ----------------------------------------------------------
_INT = re.compile(r"^[+-]?\d+$")


def _scalar(type_name: str, raw: Any, pname: str) -> Any:
    t = legacy(type_name)
    if raw is None:
        return None
    try:
        if t == "INTEGER":
            if isinstance(raw, bool) or not _INT.match(str(raw).strip()):
                raise ValueError
            value = int(str(raw))
            if not -(2**63) <= value < 2**63:
                raise ValueError
            return value
        if t == "FLOAT":
            return float(raw)
        if t in ("NUMERIC", "BIGNUMERIC"):
            return Decimal(str(raw))
        if t == "BOOLEAN":
            s = str(raw).lower()
            if s not in ("true", "false"):
                raise ValueError
            return s == "true"
        if t == "STRING":
            return str(raw)
        if t == "BYTES":
            return base64.b64decode(str(raw))
        if t == "DATE":
            return date.fromisoformat(str(raw).strip())
        if t in ("TIMESTAMP", "DATETIME"):
            s = str(raw).strip().replace("T", " ")
            if s.endswith(" UTC"):
                s = s[:-4] + "+00:00"
            if s.endswith("Z"):
                s = s[:-1] + "+00:00"
            value = datetime.fromisoformat(s)
            if value.tzinfo is not None:
                value = value.astimezone(timezone.utc).replace(tzinfo=None)
            return value
        if t == "TIME":
            return time.fromisoformat(str(raw))
    except (ValueError, TypeError, InvalidOperation):
        raise BQError(400, "invalidQuery", f"Invalid {type_name} value {raw!r} for query parameter @{pname}") from None
    raise BQError(400, "invalidQuery", f"Unsupported query parameter type {type_name!r} for @{pname}")


def decode_parameters(config: dict) -> dict[str, Any]:
    """``configuration.query.queryParameters`` -> {name: python value}; malformed ones are rejected."""
    params = config.get("queryParameters") or []
    mode = (config.get("parameterMode") or "NAMED").upper()
    if params and mode != "NAMED":
        raise BQError(400, "invalidQuery", "Positional query parameters are not supported by the loopback server; use named @parameters")
    out: dict[str, Any] = {}
    for p in params:
        if not isinstance(p, dict):
            raise BQError(400, "invalid", f"Invalid query parameter {p!r}")
        name = p.get("name")
        if not name or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(name)):
            raise BQError(400, "invalid", f"Query parameter must have a valid name when parameterMode is NAMED, got {name!r}")
        ptype = p.get("parameterType") or {}
        type_name = str(ptype.get("type") or "").upper()
        if not type_name:
            raise BQError(400, "invalid", f"Query parameter @{name} has no parameterType.type")
        value = p.get("parameterValue") or {}
        if type_name == "ARRAY":
            elem = (ptype.get("arrayType") or {}).get("type")
            if not elem:
                raise BQError(400, "invalid", f"Array query parameter @{name} has no arrayType")
            items = value.get("arrayValues")
            if items is None:
                out[name] = [] if "arrayValues" in value else None
                continue
            if str(elem).upper() == "STRUCT":
                fields = _struct_fields(ptype["arrayType"], name)
                out[name] = [_struct(fields, item, name) for item in items]
                continue
            if str(elem).upper() == "ARRAY":
                raise BQError(501, "notImplemented", f"ARRAY<ARRAY> parameters are not supported by the loopback server (@{name})")
            values = []
            for item in items:
                v = _scalar(elem, (item or {}).get("value"), name)
                if v is None:
                    raise BQError(400, "invalidQuery", f"Array query parameter @{name} cannot have a NULL element")
                values.append(v)
            out[name] = values
        elif type_name == "STRUCT":
            out[name] = _struct(_struct_fields(ptype, name), value, name)
        else:
            if "arrayValues" in value:
                raise BQError(400, "invalidQuery", f"Query parameter @{name} of type {type_name} has an array value")
            out[name] = _scalar(type_name, value.get("value"), name)
    return out


def _struct_fields(ptype: dict, pname: str) -> list[tuple[str, str]]:
    fields = []
    for f in ptype.get("structTypes") or []:
        t = str((f.get("type") or {}).get("type") or "").upper()
        if not f.get("name") or not t:
            raise BQError(400, "invalid", f"STRUCT query parameter @{pname} needs a name and a type for every field")
        if t in ("ARRAY", "STRUCT"):
            raise BQError(501, "notImplemented", f"nested {t} in STRUCT parameters is not supported by the loopback server (@{pname})")
        fields.append((f["name"], t))
    if not fields:
        raise BQError(400, "invalid", f"STRUCT query parameter @{pname} has no fields")
    return fields


def _struct(fields: list[tuple[str, str]], value: Optional[dict], pname: str) -> Optional[dict]:
    if value is None:
        return None
    values = value.get("structValues") or {}
    unknown = set(values) - {n for n, _ in fields}
    if unknown:
        raise BQError(400, "invalidQuery", f"STRUCT query parameter @{pname} has values for unknown fields {sorted(unknown)}")
    return {n: _scalar(t, (values.get(n) or {}).get("value"), pname) for n, t in fields}


# -- result rows ------------------------------------------------------------------
_EPOCH = datetime(1970, 1, 1)


def _micros(value: datetime) -> int:
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def encode_value(value: Any, field: dict, int64_timestamp: bool) -> Any:
    if value is None:
        return None
    if field.get("mode") == "REPEATED":
        inner = dict(field, mode="NULLABLE")
        return [{"v": encode_value(v, inner, int64_timestamp)} for v in value]
    t = field["type"]
    if t == "INTEGER":
        return str(int(value))
    if t == "FLOAT":
        f = float(value)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        return repr(f)
    if t == "NUMERIC":
        return format(Decimal(value).normalize(), "f") if not isinstance(value, float) else repr(value)
    if t == "BOOLEAN":
        return "true" if value else "false"
    if t == "DATE":
        return value.isoformat() if isinstance(value, date) else str(value)
    if t == "TIMESTAMP":
        if not isinstance(value, datetime):
            return str(value)
        micros = _micros(value)
        return str(micros) if int64_timestamp else f"{micros / 1e6:.6f}"
    if t == "TIME":
        return value.isoformat()
    if t == "BYTES":
        return base64.b64encode(bytes(value)).decode()
    return str(value)
