"""The shape of the feature store: a :class:`FeatureView` declares where a group of features comes
from and how it is joined in time; a :class:`FeatureService` is the named, versioned set of
features one model uses. Feature columns are registry :class:`~sensorfleet.registry.Column`s
(the registry's ``feature=True`` columns, or derived columns declared the same way), so type,
unit and meaning are declared once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sensorfleet.registry import Column

ENTITY = "module_id"
"""The one entity of the store: the camera module. Spines name it in this column."""


@dataclass(frozen=True)
class Source:
    """Rows of a view: ``sql`` selects them from registry tables named as ``{table}``
    placeholders (each replaced by that table's parquet files); ``key`` identifies a row and
    breaks the last tie between rows of equal event and created time, so joins are deterministic.
    """

    tables: tuple[str, ...]
    sql: str
    key: tuple[str, ...]

    def render(self, relations: dict[str, str]) -> str:
        """The SQL with each ``{table}`` placeholder replaced by its relation in ``relations``."""
        sql = self.sql
        for table in self.tables:
            sql = sql.replace("{" + table + "}", relations[table])
        return sql

    @staticmethod
    def table(name: str, columns: tuple[str, ...], key: tuple[str, ...]) -> Source:
        """A registry table itself, projected to ``columns``."""
        return Source((name,), f"SELECT {', '.join(columns)} FROM {{{name}}}", key)


@dataclass(frozen=True)
class FeatureView:
    """A group of features of the entity ``module_id`` with two time axes.

    A spine row at ``label_time`` sees the source row of its module with the greatest event time
    such that event time <= label_time, created time <= as_of and event time > label_time - ttl;
    among equal event times the greatest created time wins, then the greatest ``source.key``.
    ``join_keys``: the cohort keys the source carries (lot, wafer, station), by which aggregate
    views group; they are not joined on the spine, whose only key is the entity.
    """

    name: str
    version: int
    description: str
    source: Source
    features: tuple[Column, ...]
    ttl: timedelta
    entity: str = ENTITY
    join_keys: tuple[str, ...] = ("lot_id", "wafer_id", "station_id")
    event_time: str = "captured_at"
    created_time: str = "written_at"

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature view {self.name!r}: features declared twice")
        if "__" in self.name or not self.name.isidentifier():
            raise ValueError(f"feature view name {self.name!r}: expected an identifier without '__'")
        if self.ttl <= timedelta(0):
            raise ValueError(f"feature view {self.name!r}: ttl must be positive, got {self.ttl}")

    def feature(self, name: str) -> Column:
        """The feature called ``name``; the error lists the valid names."""
        for f in self.features:
            if f.name == name:
                return f
        valid = ", ".join(f.name for f in self.features)
        raise KeyError(f"feature view {self.name!r} has no feature {name!r}; features: {valid}")

    def definition(self) -> dict[str, Any]:
        """Everything that decides the view's values, as JSON-able data (for manifests)."""
        return {
            "name": self.name, "version": self.version, "entity": self.entity,
            "join_keys": list(self.join_keys), "event_time": self.event_time,
            "created_time": self.created_time, "ttl_s": self.ttl.total_seconds(),
            "source": {"tables": list(self.source.tables), "sql": self.source.sql, "key": list(self.source.key)},
            "features": [{"name": f.name, "dtype": f.dtype, "unit": f.unit, "description": f.description}
                         for f in self.features],
        }


@dataclass(frozen=True)
class Selection:
    """Features of one view in a service; empty ``features`` means all of them."""

    view: FeatureView
    features: tuple[str, ...] = ()

    def columns(self) -> tuple[Column, ...]:
        if not self.features:
            return self.view.features
        return tuple(self.view.feature(n) for n in self.features)


@dataclass(frozen=True)
class FeatureService:
    """The named, versioned set of features one model reads (Feast's feature service)."""

    name: str
    version: int
    description: str
    selections: tuple[Selection, ...]

    def __post_init__(self) -> None:
        views = [s.view.name for s in self.selections]
        if len(set(views)) != len(views):
            raise ValueError(f"feature service {self.name!r}: a view is selected twice: {views}")

    def output_columns(self) -> list[str]:
        """The feature columns of a training set, ``<view>__<feature>``, in service order."""
        return [f"{s.view.name}__{c.name}" for s in self.selections for c in s.columns()]

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version,
            "views": [{**s.view.definition(), "selected": [c.name for c in s.columns()]}
                      for s in self.selections],
        }
