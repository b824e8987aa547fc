"""The SQL of a point-in-time training set: one DuckDB ``ASOF LEFT JOIN`` per group of feature
views that read the same rows (projections of one table, or the same source SQL, with the same
entity, time columns and key): the row a join picks depends on those alone, so the views of a
group share it, and each applies its own TTL afterwards. A projection reads only the columns its
group needs.

Two modes of the created-time axis (see docs/features.md):

- ``fixed`` (an ``as_of`` instant): every source table is first cut to rows with
  ``written_at <= as_of``; the group's rows are then ASOF-joined on the struct
  ``(event time, created time, source key)``, so the join takes the greatest event time
  ``<= label_time`` and, among equal event times, the greatest created time, then the greatest
  key: deterministic without a separate de-duplication pass.
- ``label`` (``as_of = label_time`` per spine row): a row is visible once both its event and its
  created time have passed, i.e. at ``greatest(event, created)``. A running ``max`` of the key
  struct over rows ordered by that time gives, at each instant, the greatest visible
  (event, created, key); a first ASOF join on that instant gives it to each spine row, and a
  second ASOF join on the key struct, bounded by it, picks that very row with its features
  (the window carries only the key, not the feature values).

The TTL is applied after the join: the chosen row has the greatest visible event time, so if it
is older than ``label_time - ttl`` every visible row is, and the features are null.
Every spine row is kept (LEFT joins), and the result is ordered by the spine's row number.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sensorfleet.features.model import FeatureService, FeatureView, Source

SPINE_COLUMNS = ("module_id", "label_time")
ROW = "__row"


def timestamp_literal(t: datetime) -> str:
    """``t`` (timezone-aware) as a DuckDB TIMESTAMPTZ literal in UTC, to the microsecond."""
    if t.tzinfo is None:
        raise ValueError(f"as_of {t.isoformat()}: expected a timezone-aware time")
    return f"TIMESTAMPTZ '{t.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}+00'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _projection(source: Source) -> tuple[str, tuple[str, ...]] | None:
    """``(table, columns)`` when ``source`` is :meth:`Source.table` (a plain projection), else None."""
    if len(source.tables) != 1:
        return None
    table = source.tables[0]
    head, tail = "SELECT ", " FROM {" + table + "}"
    if not (source.sql.startswith(head) and source.sql.endswith(tail)):
        return None
    columns = tuple(source.sql[len(head):-len(tail)].split(", "))
    if not all(c.isidentifier() for c in columns) or Source.table(table, columns, source.key) != source:
        return None
    return table, columns


def _join_group(view: FeatureView) -> tuple[object, ...]:
    """Views with equal groups read the same rows and order them the same way, so one ASOF join
    serves them all: projections of one table, or the same source SQL; the TTL may differ (it
    is applied after the join)."""
    proj = _projection(view.source)
    rows = ("table", proj[0]) if proj else ("sql", view.source.tables, view.source.sql)
    return (rows, view.source.key, view.entity, view.event_time, view.created_time)


def _source_sql(view: FeatureView, features: list[str], relations: dict[str, str], as_of: datetime | None) -> str:
    proj = _projection(view.source)
    if proj is not None:  # read only the columns the joined views need
        needed = [view.entity, view.event_time, view.created_time, *view.source.key, *features]
        source = Source.table(proj[0], tuple(dict.fromkeys(needed)), view.source.key)
    else:
        source = view.source
    if as_of is not None:
        cut = timestamp_literal(as_of)
        relations = {t: f"(SELECT * FROM {relations[t]} WHERE written_at <= {cut})" for t in source.tables}
    return source.render(relations)


def _order_key(view: FeatureView) -> str:
    key = ", ".join(f"CAST({k} AS VARCHAR)" for k in view.source.key)
    return f"{{'e': {view.event_time}, 'w': {view.created_time}, 'k': concat_ws(chr(31), {key})}}"


def _view_ctes(number: int, view: FeatureView, features: list[str], relations: dict[str, str],
               as_of: datetime | None) -> list[str]:
    src = _source_sql(view, features, relations, as_of)
    visible = (f"{view.entity} IS NOT NULL AND {view.event_time} IS NOT NULL "
               f"AND {view.created_time} IS NOT NULL")
    cut = "" if as_of is None else f" AND {view.created_time} <= {timestamp_literal(as_of)}"
    cols = ", ".join(_ident(f) for f in features)
    rows = (f"__j{number} AS (SELECT {view.entity} AS __e, {view.event_time} AS __t, "
            f"{_order_key(view)} AS __k, {cols} FROM ({src}) WHERE {visible}{cut})")
    if as_of is not None:
        return [rows]
    # label mode: the greatest key visible at each instant greatest(event, created), by a running max
    return [rows, (f"__m{number} AS (SELECT __e, __a, max(__k) OVER (PARTITION BY __e ORDER BY __a "
                   f"RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS __b FROM ("
                   f"SELECT {view.entity} AS __e, greatest({view.event_time}, {view.created_time}) AS __a, "
                   f"{_order_key(view)} AS __k FROM ({src}) WHERE {visible}))")]


def training_sql(spine_sql: str, service: FeatureService, relations: dict[str, str], as_of: datetime | None) -> str:
    """The whole query: ``spine_sql`` must yield the spine's columns plus ``__row`` (its order);
    ``relations`` maps each table to the relation reading its files; ``as_of`` None: label mode."""
    groups: dict[tuple[object, ...], list[int]] = {}
    for index, sel in enumerate(service.selections):
        groups.setdefault(_join_group(sel.view), []).append(index)
    alias_of: dict[int, str] = {}
    ctes, joins = [], []
    for number, members in enumerate(groups.values()):
        alias, view = f"__v{number}", service.selections[members[0]].view
        features = list(dict.fromkeys(c.name for i in members for c in service.selections[i].columns()))
        ctes += _view_ctes(number, view, features, relations, as_of)
        bound = "__s.__lk"
        if as_of is None:  # the key to pick: the greatest visible at the label time
            joins.append(f"ASOF LEFT JOIN __m{number} AS __l{number} "
                         f"ON __s.module_id = __l{number}.__e AND __l{number}.__a <= __s.label_time")
            bound = f"__l{number}.__b"
        joins.append(f"ASOF LEFT JOIN __j{number} AS {alias} ON __s.module_id = {alias}.__e AND {alias}.__k <= {bound}")
        alias_of.update(dict.fromkeys(members, alias))
    outputs = []
    for index, sel in enumerate(service.selections):
        view, alias = sel.view, alias_of[index]
        ttl_us = int(view.ttl.total_seconds() * 1_000_000)
        live = f"{alias}.__t > __s.label_time - to_microseconds({ttl_us})"
        for c in sel.columns():
            v = f"{alias}.{_ident(c.name)}"
            outputs.append(f"CAST(CASE WHEN {live} THEN {v} END AS {c.sql_type}) AS {_ident(f'{view.name}__{c.name}')}")
    limit = "TIMESTAMPTZ 'infinity'" if as_of is None else f"{timestamp_literal(as_of)} + to_microseconds(1)"
    spine = (f"__s AS (SELECT *, {{'e': label_time, 'w': {limit}, 'k': ''}} AS __lk "
             f"FROM ({spine_sql}))")
    return (
        "WITH " + ",\n".join([spine, *ctes])
        + f"\nSELECT __s.* EXCLUDE ({ROW}, __lk),\n  " + ",\n  ".join(outputs)
        + "\nFROM __s\n" + "\n".join(joins) + f"\nORDER BY __s.{ROW}"
    )
