"""Labels layer: final-test results under ``<landing>/final_test/`` -> table ``final_test``.

Thin over :func:`sensorfleet.labels.ingest_final_test`. Not partitioned: the label files are not
organised by capture day, and the table is rebuilt from every file (unchanged files are not
re-read, unchanged days not rewritten). Depends on ``captures`` because a label is checked
against the module's ingested sessions (unknown module, test before capture).
"""

# No `from __future__ import annotations`: Dagster reads the resource annotation at decoration time.
import json
from collections.abc import Iterator
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from assets.captures import CAPTURES
from assets.resources import StorageResource
from assets.table_metadata import row_count_metadata, table_spec
from sensorfleet.labels import ingest_final_test
from sensorfleet.labels.final_test import file_fingerprint, final_test_files
from sensorfleet.registry import FINAL_TEST

GROUP = "labels"
CODE_VERSION = "1"
"""Version of this layer's code as Dagster sees it: bump it when a change alters what the
step writes, and every day materialized with the old one shows as stale in the UI."""
FINAL_TEST_ASSET = FINAL_TEST.name
CHECK_LABEL_ROWS = "no_rejected_label_rows"
FILES_STATE_METADATA_KEY = "files_state"
"""Metadata key of the label files' state (:func:`final_test_files_state`) a materialization read."""


def final_test_files_state(landing: Path) -> str:
    """The label files under ``<landing>/final_test/`` as ``{name: fingerprint}`` JSON, with the
    fingerprint the ingest's cache uses: changes iff a file is added, removed or rewritten (what
    the sensor and the CLI's no-change path compare)."""
    state = {p.name: file_fingerprint(p) for p in final_test_files(landing)}
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def build_label_assets() -> AssetsDefinition:
    """The ``final_test`` asset and its check (rows rejected -> warning naming file and row)."""

    @multi_asset(
        name="ingest_final_test",
        specs=[table_spec(
            FINAL_TEST_ASSET, group=GROUP, code_version=CODE_VERSION, deps=[CAPTURES], owner="team:test-engineering",
            description="Table `final_test`: every final test and retest of a module (the yield label), "
                        "from the files under <landing>/final_test/ (parquet or CSV).",
        )],
        check_specs=[AssetCheckSpec(
            CHECK_LABEL_ROWS, asset=FINAL_TEST_ASSET,
            description="Every row of the final-test files was accepted (rejected rows are in `rejections`).",
        )],
    )
    def ingest_final_test_step(context: AssetExecutionContext, storage: StorageResource) -> Iterator[MaterializeResult | AssetCheckResult]:
        paths = storage.paths()
        files_state = final_test_files_state(paths.landing)
        report = ingest_final_test(paths)
        context.log.info(f"final test: {report.rows} rows, {report.rejected} rejected, files read {list(report.files_read)}")
        yield MaterializeResult(asset_key=FINAL_TEST_ASSET, metadata={
            **row_count_metadata(report.rows, partitioned=False),
            "files_read": MetadataValue.json(list(report.files_read)),
            "files_unchanged": MetadataValue.int(len(report.files_reused)),
            "days_rewritten": MetadataValue.json(list(report.days_written)),
            "rows_rejected": MetadataValue.int(report.rejected),
            FILES_STATE_METADATA_KEY: MetadataValue.text(files_state),
        })
        yield AssetCheckResult(
            asset_key=FINAL_TEST_ASSET, check_name=CHECK_LABEL_ROWS, passed=report.rejected == 0,
            severity=AssetCheckSeverity.WARN, metadata={"rows_rejected": MetadataValue.int(report.rejected)},
        )

    return ingest_final_test_step
