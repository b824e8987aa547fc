"""The SQL of a point-in-time training set: one DuckDB ``ASOF LEFT JOIN`` per feature view.

Two modes of the created-time axis (see docs/features.md):

- ``fixed`` (an ``as_of`` instant): every source table is first cut to rows with
  ``written_at <= as_of``; the view's rows are then ASOF-joined on the struct
  ``(event time, created time, source key)``, so the join takes the greatest event time
  ``<= label_time`` and, among equal event times, the greatest created time, then the greatest
  key: deterministic without a separate de-duplication pass.
- ``label`` (``as_of = label_time`` per spine row): a row is visible once both its event and its
  created time have passed, i.e. at ``greatest(event, created)``. A running ``arg_max`` over
  rows ordered by that time gives, at each instant, the visible row with the greatest
  (event, created, key); the ASOF join on that instant picks it.

The TTL is applied after the join: the chosen row has the greatest visible event time, so if it
is older than ``label_time - ttl`` every visible row is, and the features are null.
Every spine row is kept (LEFT joins), and the result is ordered by the spine's row number.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sensorfleet.features.model import FeatureService, FeatureView

SPINE_COLUMNS = ("module_id", "label_time")
ROW = "__row"


def timestamp_literal(t: datetime) -> str:
    """``t`` (timezone-aware) as a DuckDB TIMESTAMPTZ literal in UTC, to the microsecond."""
    if t.tzinfo is None:
        raise ValueError(f"as_of {t.isoformat()}: expected a timezone-aware time")
    return f"TIMESTAMPTZ '{t.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}+00'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source_sql(view: FeatureView, relations: dict[str, str], as_of: datetime | None) -> str:
    sql = view.source.sql
    for table in view.source.tables:
        relation = relations[table]
        if as_of is not None:
            relation = f"(SELECT * FROM {relation} WHERE written_at <= {timestamp_literal(as_of)})"
        sql = sql.replace("{" + table + "}", relation)
    return sql


def _order_key(view: FeatureView) -> str:
    key = ", ".join(f"CAST({k} AS VARCHAR)" for k in view.source.key)
    return f"{{'e': {view.event_time}, 'w': {view.created_time}, 'k': concat_ws(chr(31), {key})}}"


def _view_cte(view: FeatureView, features: list[str], relations: dict[str, str], as_of: datetime | None) -> str:
    src = _source_sql(view, relations, as_of)
    visible = (f"{view.entity} IS NOT NULL AND {view.event_time} IS NOT NULL "
               f"AND {view.created_time} IS NOT NULL")
    if as_of is not None:
        cols = ", ".join(_ident(f) for f in features)
        return (f"{_ident(view.name)} AS (SELECT {view.entity} AS __e, {view.event_time} AS __t, "
                f"{_order_key(view)} AS __k, {cols} FROM ({src}) "
                f"WHERE {visible} AND {view.created_time} <= {timestamp_literal(as_of)})")
    packed = ", ".join([f"'__t': {view.event_time}", *(f"'{f}': {_ident(f)}" for f in features)])
    return (f"{_ident(view.name)} AS (SELECT __e, __a, arg_max(__v, __k) OVER (PARTITION BY __e ORDER BY __a "
            f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __b FROM ("
            f"SELECT {view.entity} AS __e, greatest({view.event_time}, {view.created_time}) AS __a, "
            f"{_order_key(view)} AS __k, {{{packed}}} AS __v FROM ({src}) WHERE {visible}))")


def training_sql(spine_sql: str, service: FeatureService, relations: dict[str, str], as_of: datetime | None) -> str:
    """The whole query: ``spine_sql`` must yield the spine's columns plus ``__row`` (its order);
    ``relations`` maps each table to the relation reading its files; ``as_of`` None: label mode."""
    ctes, joins, outputs = [], [], []
    for index, sel in enumerate(service.selections):
        view, alias = sel.view, f"__v{index}"
        columns = sel.columns()
        ctes.append(_view_cte(view, [c.name for c in columns], relations, as_of))
        ttl_us = int(view.ttl.total_seconds() * 1_000_000)
        if as_of is not None:
            on = f"__s.module_id = {alias}.__e AND {alias}.__k <= __s.__lk"
            event = f"{alias}.__t"
        else:
            on = f"__s.module_id = {alias}.__e AND {alias}.__a <= __s.label_time"
            event = f"{alias}.__b['__t']"
        joins.append(f"ASOF LEFT JOIN {_ident(view.name)} AS {alias} ON {on}")
        live = f"{event} > __s.label_time - to_microseconds({ttl_us})"
        for c in columns:
            v = f"{alias}.{_ident(c.name)}" if as_of is not None else f"{alias}.__b['{c.name}']"
            outputs.append(f"CAST(CASE WHEN {live} THEN {v} END AS {c.sql_type}) AS {_ident(f'{view.name}__{c.name}')}")
    limit = "TIMESTAMPTZ 'infinity'" if as_of is None else f"{timestamp_literal(as_of)} + to_microseconds(1)"
    spine = (f"__s AS (SELECT *, {{'e': label_time, 'w': {limit}, 'k': ''}} AS __lk "
             f"FROM ({spine_sql}))")
    return (
        "WITH " + ",\n".join([spine, *ctes])
        + f"\nSELECT __s.* EXCLUDE ({ROW}, __lk),\n  " + ",\n  ".join(outputs)
        + "\nFROM __s\n" + "\n".join(joins) + f"\nORDER BY __s.{ROW}"
    )
