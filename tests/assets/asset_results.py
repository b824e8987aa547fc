"""Reading an in-process run's result in the asset tests."""

from __future__ import annotations

from typing import Any

from dagster import ExecuteInProcessResult

from assets._common import metadata_values


def materialization_metadata(result: ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    """Plain metadata values of ``asset``'s materialization in ``result``."""
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            return metadata_values(materialization.metadata)
    raise AssertionError(f"no materialization of {asset}")
