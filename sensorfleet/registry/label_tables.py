"""Tables of labels: ``final_test`` (the yield label, every retest kept)."""

from __future__ import annotations

from sensorfleet.registry.ingest_tables import MODULE_ID, STATION_ID, WRITTEN_AT
from sensorfleet.registry.model import Column, Table

FINAL_TEST = Table(
    name="final_test",
    description=(
        "One row per final test of a module (every retest kept, with its time): the yield label. "
        "From the files under <landing>/final_test/."
    ),
    grain="one row per (module, test time)",
    produced_by="labels (asset `final_test`)",
    key=("module_id", "tested_at"),
    event_time="tested_at",
    partition_column="test_date",
    partition_meaning="UTC day of `tested_at`",
    columns=(
        MODULE_ID,
        Column("tested_at", "ts", "event time: when the final test ran, UTC"),
        Column("passed", "bool", "the module passed final test"),
        Column("fail_bin", "str", "failure bin of a failed test (null when passed)"),
        STATION_ID,
        Column("attempt", "i64", "1 for the module's first final test, 2 for its first retest, ..."),
        Column("source_file", "str", "file under <landing>/final_test/ the row came from"),
        Column("source_row", "i64", "1-based data row in that file"),
        WRITTEN_AT,
    ),
)
