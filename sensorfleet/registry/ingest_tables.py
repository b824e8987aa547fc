"""Tables written by ingest: ``sessions``, ``captures``, ``rejections`` (sensorfleet.ingest.day)."""

from __future__ import annotations

from sensorfleet.registry.model import Bound, Column, Table

CAPTURED_AT = Column("captured_at", "ts", "event time: when the session's frames were taken (manifest `captured_at`), UTC")
WRITTEN_AT = Column(
    "written_at", "ts",
    "created time: when this row's content became known (unchanged by a re-run that finds the same content), UTC",
)
SESSION_ID = Column("session_id", "str", "capture session id (= landing folder name)")
MODULE_ID = Column("module_id", "str", "camera module serial (the feature store's entity)")
STATION_ID = Column("station_id", "str", "test station that captured the session")
LOT_ID = Column("lot_id", "str", "wafer lot of the sensor die")
WAFER_ID = Column("wafer_id", "str", "wafer of the sensor die")
DIE_X = Column("die_x", "i64", "die column on the wafer map")
DIE_Y = Column("die_y", "i64", "die row on the wafer map")
TEMPERATURE_C = Column("temperature_c", "f64", "die temperature during the capture", "degC",
                       bound=Bound(-60.0, 150.0), feature=True)
CFA_PATTERN = Column("cfa_pattern", "str", "colour filter array: RGGB, BGGR, GRBG, GBRG or mono")

SESSIONS = Table(
    name="sessions",
    description="One row per capture session of the day: manifest identity, sensor, what ingest did.",
    grain="one row per session",
    produced_by="ingest (asset `captures`)",
    key=("session_id",),
    volatile=("last_run",),
    columns=(
        SESSION_ID, MODULE_ID, STATION_ID, CAPTURED_AT, TEMPERATURE_C,
        Column("schema_version", "i64", "manifest schema version"),
        Column("pixel_format", "str", "raw8, raw10_mipi, raw12_mipi, raw14_mipi, raw16_le, npy or tiff"),
        LOT_ID, WAFER_ID, DIE_X, DIE_Y,
        Column("width", "i64", "pixels per row", "px"),
        Column("height", "i64", "rows", "px"),
        Column("bit_depth", "i64", "ADC bits; values lie in [0, 2^bit_depth)", "bit", bound=Bound(8, 16, True, True)),
        CFA_PATTERN,
        Column("pixel_pitch_um", "f64", "pixel pitch", "um", bound=Bound(0.0, 100.0)),
        Column("n_frames", "i64", "frames in the session"),
        Column("n_operating_points", "i64", "distinct (kind, exposure_s, photons_per_pixel) operating points"),
        Column("status", "str", "`ingested` (a complete zarr group exists) or `rejected` (no group; the latest run refused it)"),
        Column("last_run", "str",
               "what the run that last changed this row did: ingested, rewritten, unchanged or rejected; "
               "null when the landing folder was not seen (e.g. removed after ingest)"),
        Column("n_rejections", "i64", "problems found by the latest run (> 0 with status ingested: a later change of the folder was refused)"),
        Column("zarr_path", "str", "absolute path of `<session_id>.zarr` (its `s3://` URL on an object-store root); null when rejected"),
        Column("content_hash", "str", "`xxh3_128:` + hex XXH3-128 over the manifest bytes and each frame file's digest (detects change)"),
        Column("manifest_sha256", "str", "hex sha256 of manifest.json"),
        Column("bytes_in", "i64", "sum of the frame files (raw input)", "B"),
        Column("bytes_stored", "i64", "the zarr group's chunks on disk", "B"),
        Column("source_dir", "str", "landing folder it was read from"),
        Column("ingested_at", "ts", "when the zarr group was written, UTC"),
        Column("n_rewrites", "i64", "times the session was rewritten with changed content"),
        Column("sensorfleet_version", "str", "sensorfleet version that wrote the group"),
        WRITTEN_AT,
    ),
)

CAPTURES = Table(
    name="captures",
    description="One row per frame of an ingested session: operating point and whole-frame statistics.",
    grain="one row per frame",
    produced_by="ingest (asset `captures`)",
    key=("session_id", "frame_index"),
    columns=(
        SESSION_ID, MODULE_ID,
        Column("frame_index", "i64", "index in the manifest and along axis 0 of `frames`"),
        Column("file", "str", "frame file, relative to the session folder"),
        Column("kind", "str", "dark, flat or edge_chart"),
        Column("exposure_s", "f64", "exposure time", "s", "t_exp", bound=Bound(0.0, 3600.0, low_inclusive=True)),
        Column("photons_per_pixel", "f64", "mean photons reaching one pixel during the exposure (0 for dark)",
               "p", "mu_p", "§2.1", bound=Bound(0.0, 1e9, low_inclusive=True)),
        Column("wavelength_nm", "f64", "illumination wavelength; null when not given", "nm"),
        Column("analog_gain", "f64", "analog gain; null when not given", "1"),
        Column("op_index", "i64", "operating point: index of (kind, exposure_s, photons_per_pixel) in order of first appearance"),
        Column("mean_dn", "f64", "mean over all pixels", "DN"),
        Column("std_dn", "f64", "population standard deviation over all pixels (spatial + temporal)", "DN"),
        Column("min_dn", "i64", "smallest pixel value", "DN"),
        Column("max_dn", "i64", "largest pixel value", "DN"),
        Column("saturated_fraction", "f64", "fraction of pixels at the top code 2^bit_depth - 1", "1",
               bound=Bound(0.0, 1.0, True, True)),
        Column("checksum_xxh3_128", "str", "hex XXH3-128 of the frame file (detects change)"),
        Column("size_bytes", "i64", "size of the frame file", "B"),
        CAPTURED_AT, WRITTEN_AT,
    ),
)

REJECTIONS = Table(
    name="rejections",
    description=(
        "One row per problem found in the input: a landing session (by the latest run of its day) "
        "or a row of a final-test file. The input stays where it is; the reason says what to fix."
    ),
    grain="one row per problem",
    produced_by="ingest (asset `captures`) and labels (asset `final_test`)",
    key=("source", "session_dir", "file", "row_number", "reason"),
    volatile=("rejected_at",),
    columns=(
        Column("source", "str", "`landing` (a capture session) or `final_test` (a row of a final-test file)"),
        Column("session_id", "str", "session id; null when the manifest could not be read or for final-test rows"),
        Column("session_dir", "str", "absolute landing folder (for final-test rows: the final_test folder)"),
        Column("file", "str", "the file at fault, relative to that folder (`manifest.json` for session-level problems)"),
        Column("row_number", "i64", "1-based data row of a final-test file; null for sessions"),
        Column("reason", "str", "what was expected and what was found, with the field or file named"),
        Column("rejected_at", "ts", "when this problem was first found (kept while it persists), UTC"),
        Column("captured_at", "ts", "event time when known (session's captured_at, final-test row's tested_at), else null"),
        WRITTEN_AT,
    ),
)
