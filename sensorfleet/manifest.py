"""The landing contract: ``<landing>/<session_id>/manifest.json`` (schema_version 1).

A pydantic model validates the manifest at the edge; everything past it works with typed,
frozen objects. See docs/landing-format.md for the full contract.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from sensorfleet.strict_json import (
    INT64_MAX,
    INT64_MIN,
    MANIFEST_MAX_BYTES,
    StrictJsonError,
    loads_strict,
    read_bounded,
)

PixelFormat = Literal["raw8", "raw10_mipi", "raw12_mipi", "raw14_mipi", "raw16_le", "npy", "tiff", "png"]
CfaPattern = Literal["RGGB", "BGGR", "GRBG", "GBRG", "mono"]
FrameKind = Literal["dark", "flat", "edge_chart"]

PIXEL_FORMATS: tuple[str, ...] = PixelFormat.__args__  # type: ignore[attr-defined]
CFA_PATTERNS: tuple[str, ...] = CfaPattern.__args__  # type: ignore[attr-defined]
SESSION_ID_PATTERN = r"^[A-Za-z0-9._-]{1,128}$"
MANIFEST_NAME = "manifest.json"
ID_MAX_CHARS = 128
FILE_MAX_CHARS = 1024
# ids and names: printable, no control characters (they end up in paths, tables and logs)
ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"


def _no_coercion(kind: str) -> Any:
    """A before-validator that refuses what pydantic's lax mode would turn into ``kind``: text
    (``"64"``), booleans, and for integers also floats (``64.0``)."""

    def check(value: Any) -> Any:
        refused: tuple[type, ...] = (str, bytes, bool) + ((float,) if kind == "integer" else ())
        if isinstance(value, refused):
            raise ValueError(f"expected a JSON {kind}, found {type(value).__name__} {value!r:.40}")
        return value

    return BeforeValidator(check)


def _text_datetime(value: Any) -> Any:
    if not isinstance(value, (str, datetime)):
        raise ValueError(f"expected an ISO 8601 string with a zone, found {type(value).__name__} {value!r:.40}")
    return value


Int64 = Annotated[int, _no_coercion("integer"), Field(ge=INT64_MIN, le=INT64_MAX)]
"""An integer that fits the tables' int64 columns; never text, a boolean or a float."""
Finite = Annotated[float, _no_coercion("number"), Field(allow_inf_nan=False)]
"""A finite number (the tables' float64 columns); never text or a boolean."""
Name = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS, pattern=ID_PATTERN)]
"""An id or name: 1 to 128 characters, no control characters."""

#: frame kinds that make operating points of the EMVA 1288 analysis (edge charts do not)
EMVA_FRAME_KINDS: tuple[str, ...] = ("dark", "flat")


@dataclass(frozen=True)
class OperatingPoint:
    """What makes frames one operating point: frames with the same kind, exposure time (s) and
    mean photons per pixel during the exposure (EMVA 1288 mu_p; 0 for dark) belong together,
    and two or more of them give the temporal noise."""

    kind: FrameKind
    exposure_s: float
    photons_per_pixel: float


class ManifestError(ValueError):
    """A manifest that cannot be read or does not follow the schema; names the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorInfo(_Strict):
    """The sensor die and its readout geometry."""

    lot_id: Name
    wafer_id: Name
    die_x: Int64
    die_y: Int64
    width: Int64 = Field(gt=0, le=65536, description="active pixels per row")
    height: Int64 = Field(gt=0, le=65536, description="active rows")
    bit_depth: Int64 = Field(ge=8, le=16, description="ADC bits; pixel values are in [0, 2**bit_depth)")
    cfa_pattern: CfaPattern
    pixel_pitch_um: Finite = Field(gt=0, description="pixel pitch in micrometres")


class EdgeRegion(_Strict):
    """One slanted edge's region of interest on an ``edge_chart`` frame (sensor pixels)."""

    x: Int64 = Field(ge=0, description="first column")
    y: Int64 = Field(ge=0, description="first row")
    width: Int64 = Field(gt=0, description="columns")
    height: Int64 = Field(gt=0, description="rows")


class FrameEntry(_Strict):
    """One frame file and the operating point it was taken at."""

    file: str = Field(min_length=1, max_length=FILE_MAX_CHARS, pattern=ID_PATTERN,
                      description="path relative to the session folder")
    kind: FrameKind
    exposure_s: Finite = Field(ge=0, description="exposure time in seconds")
    photons_per_pixel: Finite = Field(
        ge=0, description="mean photons reaching one pixel during the exposure (EMVA mu_p)"
    )
    wavelength_nm: Finite | None = Field(default=None, gt=0)
    analog_gain: Finite | None = Field(default=None, gt=0)
    roi: list[EdgeRegion] | None = Field(
        default=None, description="edge_chart only: the edges to analyse; without it the chart's squares are found")

    @model_validator(mode="after")
    def _dark_has_no_light(self) -> FrameEntry:
        if self.kind == "dark" and self.photons_per_pixel != 0:
            raise ValueError(f"dark frame {self.file!r} has photons_per_pixel={self.photons_per_pixel}, expected 0")
        if self.roi is not None and self.kind != "edge_chart":
            raise ValueError(f"frame {self.file!r} of kind {self.kind!r} has an roi list; only edge_chart frames take one")
        return self

    @property
    def operating_point(self) -> tuple[str, float, float]:
        """(kind, exposure_s, photons_per_pixel): frames sharing it form one operating point."""
        return (self.kind, self.exposure_s, self.photons_per_pixel)


class Manifest(_Strict):
    """A capture session as the test station describes it."""

    schema_version: Annotated[Literal[1], _no_coercion("integer")]
    session_id: str = Field(pattern=SESSION_ID_PATTERN)
    module_id: Name
    station_id: Name
    captured_at: Annotated[AwareDatetime, BeforeValidator(_text_datetime)]
    temperature_c: Finite = Field(ge=-60, le=150, description="die temperature in degrees Celsius")
    sensor: SensorInfo
    pixel_format: PixelFormat
    frames: list[FrameEntry] = Field(min_length=1)

    @model_validator(mode="after")
    def _rois_inside_the_sensor(self) -> Manifest:
        for frame in self.frames:
            for box in frame.roi or ():
                if box.x + box.width > self.sensor.width or box.y + box.height > self.sensor.height:
                    raise ValueError(f"frame {frame.file!r}: roi {box.model_dump()} reaches outside the "
                                     f"{self.sensor.width}x{self.sensor.height} sensor")
        return self

    @property
    def capture_date(self) -> str:
        """UTC calendar day of ``captured_at`` (``YYYY-MM-DD``): the partition key."""
        return capture_date(self.captured_at)

    def operating_points(self) -> dict[tuple[str, float, float], list[int]]:
        """Frame indices grouped by operating point, in manifest order."""
        points: dict[tuple[str, float, float], list[int]] = {}
        for index, frame in enumerate(self.frames):
            points.setdefault(frame.operating_point, []).append(index)
        return points

    @property
    def n_operating_points(self) -> int:
        """Distinct (kind, exposure_s, photons_per_pixel) of the frames (:func:`count_operating_points`)."""
        return count_operating_points(frame.operating_point for frame in self.frames)

    def iter_frames(self) -> Iterator[tuple[int, FrameEntry]]:
        yield from enumerate(self.frames)


def count_operating_points(points: Iterable[tuple[str, float, float]]) -> int:
    """Operating points of a session: distinct (kind, exposure_s, photons_per_pixel) among its
    frames', wherever they sit in the frame order (a point split in two runs is still one point;
    the characterization's PTC keeps such runs apart, see ``sensorfleet.emva.maps.operating_points``).
    ``edge_chart`` frames are no operating point (:data:`EMVA_FRAME_KINDS`)."""
    return len({point for point in points if point[0] in EMVA_FRAME_KINDS})


def capture_date(captured_at: datetime) -> str:
    """The partition day of a capture: its UTC calendar date as ``YYYY-MM-DD``."""
    return captured_at.astimezone(UTC).strftime("%Y-%m-%d")


def parse_manifest(data: bytes | str, path: Path | str = MANIFEST_NAME) -> Manifest:
    """Validate manifest JSON; raise :class:`ManifestError` naming ``path`` and each bad field.

    The JSON is read strictly (:func:`sensorfleet.strict_json.loads_strict`: UTF-8 only,
    duplicate keys, ``NaN``/``Infinity``, deep nesting and oversized values refused), then the
    schema admits no coercion (``"64"`` is not a number, ``64.0`` not an integer).
    """
    try:
        raw = loads_strict(data)
    except StrictJsonError as exc:
        raise ManifestError(path, exc.reason) from None
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
        )
        raise ManifestError(path, f"does not follow the manifest schema: {problems}") from None


def read_manifest_bytes(path: Path) -> bytes:
    """The bytes of a manifest file, read without blocking and within ``MANIFEST_MAX_BYTES``.

    Raises :class:`ManifestError` when it is missing (reason ``manifest.json is missing``), not a
    regular file (a FIFO, a device such as ``/dev/zero`` behind a symlink, a folder), too large,
    or unreadable.
    """
    try:
        return read_bounded(path, MANIFEST_MAX_BYTES)
    except FileNotFoundError:
        raise ManifestError(path, f"{MANIFEST_NAME} is missing; expected one in the session folder") from None
    except StrictJsonError as exc:
        raise ManifestError(path, exc.reason) from None
    except OSError as exc:
        raise ManifestError(path, f"cannot be read ({exc.strerror or exc})") from None


def load_manifest(session_dir: Path) -> Manifest:
    """Read (bounded, :func:`read_manifest_bytes`) and validate ``session_dir/manifest.json``."""
    path = Path(session_dir) / MANIFEST_NAME
    return parse_manifest(read_manifest_bytes(path), path)
