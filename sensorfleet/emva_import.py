"""EMVA 1288 descriptor data sets -> one landing session.

A data set made for the EMVA 1288 reference tools is a folder with ``EMVA1288_Data.txt`` (the
emva1288 package's simulator names it ``EMVA1288descriptor.txt``) and images. The descriptor
(``#`` starts a comment line):

- ``v RELEASE``: optional, at most once: the release of the standard the data were taken for
  (the simulator writes ``v 4.0``); recorded in the import provenance.
- ``n BITS WIDTH HEIGHT``: bit depth of the data (DN in ``[0, 2**BITS)``) and the image size;
  once, before everything else.
- ``b EXPOSURE_NS PHOTONS``: a bright (flat-field) operating point: exposure time in
  nanoseconds and the mean number of photons per pixel during the exposure (mu_p).
- ``d EXPOSURE_NS``: a dark operating point.
- ``i PATH``: an image of the operating point above it, relative to the descriptor's folder
  (Windows ``\\`` separators are accepted). 8- or 16-bit single-channel PNG or TIFF; wider
  integer images (the simulator's 32-bit TIFFs) are accepted when every value fits 16 bits.

:func:`import_emva` writes them as one landing session: ``cfa_pattern`` ``mono``, exposure in
seconds, one manifest frame per ``i`` line in descriptor order (kind ``dark`` for ``d`` points,
``flat`` for ``b``). PNG images that the ``png`` pixel format holds as they are (grayscale,
non-interlaced, 8-bit for 8-bit sets, else 16-bit, LSB-aligned values) are copied unchanged:
their headers are checked here and every value by the ingest, which decodes each file once (a
decode + re-encode here and a decode there cost 4x the whole analysis on set 003). Other images
(TIFF, left-shifted data, an explicit ``pixel_format``) are decoded, checked and re-encoded into
the bit depth's own format (``raw8``, ``raw10_mipi``, ``raw12_mipi``, ``raw14_mipi``, else
``raw16_le``). 16-bit images of a data set
with fewer bits may hold their values LSB-aligned (``0..2**BITS - 1``, as the reference set 003
does) or left-shifted (MSB-aligned, the low ``16 - BITS`` bits zero); ``alignment="auto"`` takes
them as LSB-aligned unless a value exceeds ``2**BITS - 1`` while every low bit seen is zero, and
then shifts them right. The source folder is only read; the session folder is written under a
hidden temporary name in the landing root and renamed into place when complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PureWindowsPath
from typing import Annotated, Literal

import numpy as np
import typer

from sensorfleet.manifest import MANIFEST_NAME, Manifest, OperatingPoint, parse_manifest

DESCRIPTOR_NAME = "EMVA1288_Data.txt"
DESCRIPTOR_NAMES = (DESCRIPTOR_NAME, "EMVA1288descriptor.txt")
"""Names looked for, in order, when the source is a folder (the second is the simulator's)."""
DEFAULT_PIXEL_PITCH_UM = 5.0
"""Pixel pitch written when the caller gives none: the descriptor format has no field for it."""
DEFAULT_TEMPERATURE_C = 25.0
"""Die temperature written when the caller gives none: the descriptor format has no field for it."""
DEFAULT_STATION_ID = "emva1288-import"
PROVENANCE_NAME = "emva1288_import.json"
"""Written beside the manifest: the source descriptor, its version line, its line numbers and the
alignment used."""

Alignment = Literal["auto", "lsb", "msb"]
_FORMAT_FOR_BITS = {8: "raw8", 10: "raw10_mipi", 12: "raw12_mipi", 14: "raw14_mipi"}
_SESSION_ID_BAD = re.compile(r"[^A-Za-z0-9._-]")


class EmvaImportError(ValueError):
    """A data set that cannot be imported; names the file (and descriptor line) and the problem."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class EmvaImage:
    """One ``i`` line: the image file (absolute) and the descriptor line naming it."""

    path: Path
    line: int


@dataclass(frozen=True)
class EmvaOperatingPoint(OperatingPoint):
    """One ``b`` or ``d`` line and the images following it."""

    line: int
    images: tuple[EmvaImage, ...]


@dataclass(frozen=True)
class EmvaDescriptor:
    """A parsed ``EMVA1288_Data.txt``: geometry, bit depth and operating points in file order.

    ``version`` is the ``v`` line's release (e.g. ``"4.0"``), ``None`` when the file has none.
    """

    path: Path
    bit_depth: int
    width: int
    height: int
    points: tuple[EmvaOperatingPoint, ...]
    version: str | None = None

    @property
    def n_images(self) -> int:
        return sum(len(p.images) for p in self.points)


@dataclass(frozen=True)
class ImportOptions:
    """What the descriptor does not say. ``None`` fields are derived (see :func:`import_emva`)."""

    session_id: str | None = None
    module_id: str | None = None
    station_id: str = DEFAULT_STATION_ID
    captured_at: datetime | None = None
    temperature_c: float = DEFAULT_TEMPERATURE_C
    pixel_pitch_um: float = DEFAULT_PIXEL_PITCH_UM
    lot_id: str = "EMVA"
    wafer_id: str = "EMVA"
    die_x: int = 0
    die_y: int = 0
    pixel_format: str | None = None
    alignment: Alignment = "auto"


@dataclass(frozen=True)
class ImportResult:
    """The published session folder, its manifest and the right shift applied to the pixels."""

    session_dir: Path
    manifest: Manifest
    shift_bits: int
    source_files: tuple[Path, ...] = field(repr=False, default=())


# ---------------------------------------------------------------------------------------------
# descriptor


def _numbers(tokens: list[str], count: int, names: str, path: Path, line: int) -> list[float]:
    if len(tokens) != count:
        raise EmvaImportError(path, f"expected {count} value(s) ({names}), found {len(tokens)}: {' '.join(tokens)!r}", line)
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise EmvaImportError(path, f"expected numbers ({names}), found {' '.join(tokens)!r}", line) from None
    if any(not np.isfinite(v) or v < 0 for v in values):
        raise EmvaImportError(path, f"expected finite non-negative numbers ({names}), found {' '.join(tokens)!r}", line)
    return values


def parse_descriptor(path: Path) -> EmvaDescriptor:
    """Parse an ``EMVA1288_Data.txt``; image paths are resolved against its folder and must exist.

    Raises :class:`EmvaImportError` naming the file and line for: a missing or repeated ``n``
    line, a repeated or malformed ``v`` line, a bit depth outside 8..16, an unknown line type, bad numbers, an ``i`` line before any
    operating point, an operating point without images, a missing image file.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise EmvaImportError(path, f"cannot read the descriptor ({exc.strerror})") from None
    folder = path.parent
    header: tuple[int, int, int] | None = None
    version: str | None = None
    version_line = 0
    points: list[EmvaOperatingPoint] = []
    current: dict[str, object] | None = None
    images: list[EmvaImage] = []

    def close_point() -> None:
        if current is None:
            return
        if not images:
            raise EmvaImportError(path, f"operating point '{current['text']}' has no 'i' image lines", int(str(current["line"])))
        points.append(EmvaOperatingPoint(
            kind="dark" if current["kind"] == "d" else "flat",
            exposure_s=float(str(current["exposure_s"])),
            photons_per_pixel=float(str(current["photons"])),
            line=int(str(current["line"])),
            images=tuple(images),
        ))

    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, _, rest = stripped.partition(" ")
        key = key.strip()
        rest = rest.strip()
        if key == "i":
            if current is None:
                raise EmvaImportError(path, "'i' image line before any 'b' or 'd' operating point", number)
            if not rest:
                raise EmvaImportError(path, "'i' line without an image path", number)
            relative = Path(*PureWindowsPath(rest).parts) if "\\" in rest else Path(rest)
            image = relative if relative.is_absolute() else folder / relative
            if not image.is_file():
                raise EmvaImportError(path, f"image file not found: {rest!r} (looked for {image})", number)
            images.append(EmvaImage(image, number))
            continue
        tokens = rest.split("#", 1)[0].split()
        if key == "v":
            if version is not None:
                raise EmvaImportError(path, f"second 'v' version line (the first is line {version_line})", number)
            if len(tokens) != 1:
                raise EmvaImportError(path, f"expected 'v RELEASE' (one value, e.g. 'v 4.0'), found {stripped!r}", number)
            version, version_line = tokens[0], number
        elif key == "n":
            if header is not None:
                raise EmvaImportError(path, "second 'n' line; a data set has one bit depth and size", number)
            bits, width, height = _numbers(tokens, 3, "bits width height", path, number)
            if not (bits.is_integer() and width.is_integer() and height.is_integer()):
                raise EmvaImportError(path, f"'n' values must be integers, found {rest!r}", number)
            if not 8 <= bits <= 16:
                raise EmvaImportError(path, f"bit depth must be 8..16, found {int(bits)}", number)
            if width < 1 or height < 1:
                raise EmvaImportError(path, f"width and height must be >= 1, found {int(width)} x {int(height)}", number)
            header = (int(bits), int(width), int(height))
        elif key in ("b", "d"):
            if header is None:
                raise EmvaImportError(path, f"'{key}' line before the 'n' line", number)
            close_point()
            if key == "b":
                exposure_ns, photons = _numbers(tokens, 2, "exposure_ns photons", path, number)
            else:
                (exposure_ns,) = _numbers(tokens, 1, "exposure_ns", path, number)
                photons = 0.0
            current = {"kind": key, "exposure_s": exposure_ns / 1e9, "photons": photons, "line": number,
                       "text": stripped}
            images = []
        else:
            raise EmvaImportError(path, f"unknown line type {key!r}; expected 'v', 'n', 'b', 'd', 'i' or '#'", number)
    close_point()
    if header is None:
        raise EmvaImportError(path, "no 'n BITS WIDTH HEIGHT' line")
    if not points:
        raise EmvaImportError(path, "no 'b' or 'd' operating points")
    bits, width, height = header
    return EmvaDescriptor(path, bits, width, height, tuple(points), version)


# ---------------------------------------------------------------------------------------------
# images


def read_image(path: Path) -> np.ndarray:
    """Read one EMVA image file: a single-channel PNG or TIFF -> ``(H, W)`` uint8/uint16 DN.

    8- and 16-bit images are returned as stored; wider integer images (the emva1288 simulator
    writes int32 TIFFs) are narrowed to uint16 when every value is in ``0..65535``.
    """
    suffix = path.suffix.lower()
    try:
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                arr = tif.pages[0].asarray()
        else:
            from PIL import Image

            with Image.open(path) as img:
                mode = img.mode
                if mode not in ("L", "I;16", "I;16L", "I;16B", "I"):
                    raise EmvaImportError(path, f"not a single-channel 8- or 16-bit image (PIL mode {mode})")
                arr = np.asarray(img)  # mode "I": 16-bit PNGs some Pillow versions open as int32
        if arr.ndim == 2 and arr.dtype.kind in "iu" and arr.dtype.itemsize > 2:
            if arr.size and (int(arr.min()) < 0 or int(arr.max()) > 0xFFFF):
                raise EmvaImportError(path, f"{arr.dtype} image with values outside 0..65535: [{arr.min()}, {arr.max()}]")
            arr = arr.astype(np.uint16)
    except EmvaImportError:
        raise
    except Exception as exc:
        raise EmvaImportError(path, f"cannot read the image ({exc})") from None
    if arr.ndim != 2 or arr.dtype not in (np.uint8, np.uint16):
        raise EmvaImportError(path, f"expected a single-channel 8- or 16-bit image, found shape {arr.shape} dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("="))


class _ShiftedData(Exception):
    """Raised inside a LSB pass when the data turn out to be left-shifted (restart with MSB)."""


def _check_geometry(desc: EmvaDescriptor, image: EmvaImage, shape: tuple[int, ...], eight_bit: bool) -> None:
    """Refuse an image whose (H, W) or 8-bit depth disagrees with the ``n`` line."""
    if shape != (desc.height, desc.width):
        raise EmvaImportError(
            desc.path, f"image {image.path.name} has shape (H, W) = {shape}, the 'n' line says ({desc.height}, {desc.width})",
            image.line)
    if eight_bit and desc.bit_depth != 8:
        raise EmvaImportError(desc.path, f"image {image.path.name} is 8-bit, the 'n' line says {desc.bit_depth} bits", image.line)


def _to_dn(arr: np.ndarray, desc: EmvaDescriptor, image: EmvaImage, shift: int, alignment: Alignment,
           low_bits_seen: list[int]) -> np.ndarray:
    """One image -> ``(H, W)`` uint16 DN in ``[0, 2**bit_depth)``, checking size and depth."""
    from sensorfleet import rawio  # the compiled codecs load when a set is imported, not for --help

    where = f"{image.path} (descriptor {desc.path.name} line {image.line})"
    _check_geometry(desc, image, arr.shape, arr.dtype == np.uint8)
    frame = arr.astype(np.uint16, copy=False)
    limit = (1 << desc.bit_depth) - 1
    if arr.dtype == np.uint16 and desc.bit_depth < 16:
        pad_mask = (1 << (16 - desc.bit_depth)) - 1
        low = int(np.bitwise_or.reduce(frame & pad_mask, axis=None)) if frame.size else 0
        if shift:
            if low:
                raise EmvaImportError(
                    desc.path, f"image {image.path.name} is not left-shifted by {shift} bits (low bits set) "
                    f"though other images of the set are", image.line)
            return frame >> shift
        peak = rawio.max_value(frame)
        if peak > limit and alignment == "auto" and low == 0 and low_bits_seen[0] == 0:
            raise _ShiftedData
        low_bits_seen[0] |= low
    try:
        rawio.check_bit_depth(frame, desc.bit_depth, where)
    except rawio.FrameFormatError as exc:
        raise EmvaImportError(desc.path, f"image {image.path.name}: {exc.reason}", image.line) from None
    return frame


# ---------------------------------------------------------------------------------------------
# import


def default_pixel_format(bit_depth: int) -> str:
    """The landing pixel format for a bit depth: its MIPI packed format, raw8, else raw16_le."""
    return _FORMAT_FOR_BITS.get(bit_depth, "raw16_le")


def derive_id(name: str) -> str:
    """A session/module id from a folder name: characters outside ``[A-Za-z0-9._-]`` become ``_``."""
    cleaned = _SESSION_ID_BAD.sub("_", name)[:128].strip("._") or "emva1288"
    return cleaned


def parse_captured_at(text: str) -> datetime:
    """ISO 8601 timestamp with a zone (``2024-05-01T12:00:00Z``, ``...+02:00``) -> aware datetime."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"captured_at {text!r} is not an ISO 8601 timestamp") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"captured_at {text!r} has no time zone; add one, e.g. 'Z' or '+02:00'")
    return value


def _frame_name(index: int, total: int, source: Path, pixel_format: str) -> str:
    ext = {"npy": "npy", "tiff": "tiff", "png": "png"}.get(pixel_format, "raw")
    digits = max(4, len(str(total - 1)))
    return f"{index:0{digits}d}_{_SESSION_ID_BAD.sub('_', source.stem)}.{ext}"


def import_emva(source: Path, landing: Path, options: ImportOptions | None = None) -> ImportResult:
    """Import the EMVA 1288 data set at ``source`` (folder or descriptor file) as one session.

    The session goes to ``landing/<session_id>/`` (``manifest.json`` + one frame file per image +
    ``emva1288_import.json`` provenance). Defaults: ``session_id`` and ``module_id`` from the
    source folder's name, ``captured_at`` now (UTC), lot/wafer ``EMVA``, die (0, 0), pixel pitch
    :data:`DEFAULT_PIXEL_PITCH_UM`, temperature :data:`DEFAULT_TEMPERATURE_C`, pixel format
    ``png`` (files copied) for PNG sets stored LSB-aligned, else :func:`default_pixel_format`. Raises :class:`EmvaImportError` for a bad data set or an
    existing session folder; nothing is left in the landing root then.
    """
    from sensorfleet import rawio

    opts = options or ImportOptions()
    source = Path(source)
    if source.is_file():
        descriptor_path = source
    else:
        found = [source / name for name in DESCRIPTOR_NAMES if (source / name).is_file()]
        if not found:
            raise EmvaImportError(source / DESCRIPTOR_NAME,
                                  f"no EMVA 1288 descriptor here (looked for {' or '.join(DESCRIPTOR_NAMES)})")
        descriptor_path = found[0]
    desc = parse_descriptor(descriptor_path)
    folder_name = descriptor_path.resolve().parent.name
    session_id = opts.session_id or derive_id(folder_name)
    module_id = opts.module_id or derive_id(folder_name)
    captured_at = opts.captured_at or datetime.now(UTC)
    if captured_at.tzinfo is None or captured_at.utcoffset() is None:
        raise EmvaImportError(descriptor_path, f"captured_at {captured_at.isoformat()} has no time zone")
    images = [(point, image) for point in desc.points for image in point.images]
    copy_pngs = opts.pixel_format in (None, "png") and _pngs_as_stored(desc, images, opts.alignment)
    pixel_format = "png" if copy_pngs else (opts.pixel_format or default_pixel_format(desc.bit_depth))
    try:
        bits = rawio.container_bits(pixel_format)
    except ValueError as exc:
        raise EmvaImportError(descriptor_path, str(exc)) from None
    if bits < desc.bit_depth:
        raise EmvaImportError(descriptor_path, f"pixel format {pixel_format} holds {bits} bits, the data set has {desc.bit_depth}")

    landing = Path(landing)
    final = landing / session_id
    if final.exists():
        raise EmvaImportError(final, "session folder already exists in the landing root; choose another --session-id")
    landing.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{session_id}.importing-", dir=landing))
    try:
        shift = (16 - desc.bit_depth) if opts.alignment == "msb" else 0
        while not copy_pngs:
            try:
                frames = _write_frames(desc, images, staging, pixel_format, shift, opts.alignment)
                break
            except _ShiftedData:
                shift = 16 - desc.bit_depth  # left-shifted data: start again, dividing by 2**shift
        if copy_pngs:
            frames = _copy_frames(images, staging, pixel_format)
        manifest_dict = {
            "schema_version": 1,
            "session_id": session_id,
            "module_id": module_id,
            "station_id": opts.station_id,
            "captured_at": captured_at.isoformat(),
            "temperature_c": opts.temperature_c,
            "sensor": {
                "lot_id": opts.lot_id, "wafer_id": opts.wafer_id, "die_x": opts.die_x, "die_y": opts.die_y,
                "width": desc.width, "height": desc.height, "bit_depth": desc.bit_depth,
                "cfa_pattern": "mono", "pixel_pitch_um": opts.pixel_pitch_um,
            },
            "pixel_format": pixel_format,
            "frames": frames,
        }
        text = json.dumps(manifest_dict, indent=2) + "\n"
        try:
            manifest = parse_manifest(text, final / MANIFEST_NAME)
        except ValueError as exc:  # e.g. a --session-id outside the allowed characters
            raise EmvaImportError(descriptor_path, f"the manifest it would write is invalid: {exc}") from None
        provenance = {
            "descriptor": str(descriptor_path.resolve()),
            "descriptor_version": desc.version,
            "bit_depth": desc.bit_depth,
            "alignment": "msb" if shift else "lsb",
            "right_shift_bits": shift,
            "frames": [{"file": f["file"], "source": str(img.path), "descriptor_line": img.line,
                        "operating_point_line": point.line} for f, (point, img) in zip(frames, images, strict=True)],
        }
        (staging / PROVENANCE_NAME).write_text(json.dumps(provenance, indent=2) + "\n")
        (staging / MANIFEST_NAME).write_text(text)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700
        try:
            os.rename(staging, final)
        except OSError as exc:
            raise EmvaImportError(final, f"cannot publish the session folder ({exc.strerror}); does it exist now?") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ImportResult(final, manifest, shift, tuple(img.path for _, img in images))


def _pngs_as_stored(desc: EmvaDescriptor, images: list[tuple[EmvaOperatingPoint, EmvaImage]],
                    alignment: Alignment) -> bool:
    """True when every image is a PNG the ``png`` pixel format holds as it is (grayscale,
    non-interlaced, 8-bit for an 8-bit set, else 16-bit) and its values are LSB-aligned, so the
    files can be copied instead of decoded and re-encoded. Reads the headers only, plus, for
    ``alignment="auto"``, the first image of the brightest operating point (where MSB-aligned
    values exceed ``2**BITS - 1`` first); the ingest checks every value against the bit depth.
    Raises :class:`EmvaImportError` for an image of the wrong size or depth."""
    from sensorfleet import rawio

    if alignment == "msb" or any(img.path.suffix.lower() != ".png" for _, img in images):
        return False
    for _, image in images:
        try:
            header = rawio.png_header(image.path)
        except rawio.FrameFormatError as exc:
            raise EmvaImportError(desc.path, f"image {image.path}: {exc.reason}", image.line) from None
        if header.unsupported() is not None or (header.bit_depth == 16 and desc.bit_depth == 8):
            return False  # decoded by Pillow and re-encoded (or refused there, naming what is wrong)
        _check_geometry(desc, image, (header.height, header.width), header.bit_depth == 8)
    if alignment == "auto":
        point = max(desc.points, key=lambda p: (p.photons_per_pixel, p.exposure_s))
        sample = point.images[0]
        try:
            arr = rawio.decode_png(sample.path.read_bytes(), desc.width, desc.height, sample.path)
            _to_dn(arr, desc, sample, 0, alignment, [0])
        except _ShiftedData:
            return False
        except rawio.FrameFormatError as exc:
            raise EmvaImportError(desc.path, f"image {sample.path}: {exc.reason}", sample.line) from None
    return True


def _copy_frames(images: list[tuple[EmvaOperatingPoint, EmvaImage]], staging: Path,
                 pixel_format: str) -> list[dict[str, object]]:
    """Put every image file unchanged into the session folder (the ``png`` pixel format): a hard
    link where the file system allows one (no bytes copied: 0.13 s of set 003's 82 MB here), else
    a copy. Neither side is ever written again: the ingest notices a source rewritten in place
    (new ctime, new content hash) as a changed session."""
    frames: list[dict[str, object]] = []
    for index, (point, image) in enumerate(images):
        name = _frame_name(index, len(images), image.path, pixel_format)
        try:
            os.link(image.path, staging / name)
        except OSError:  # another file system, or links not allowed there
            shutil.copyfile(image.path, staging / name)
        frames.append(_frame_entry(name, point))
    return frames


def _frame_entry(name: str, point: EmvaOperatingPoint) -> dict[str, object]:
    return {"file": name, "kind": point.kind, "exposure_s": point.exposure_s, "photons_per_pixel": point.photons_per_pixel}


def _write_frames(desc: EmvaDescriptor, images: list[tuple[EmvaOperatingPoint, EmvaImage]], staging: Path,
                  pixel_format: str, shift: int, alignment: Alignment) -> list[dict[str, object]]:
    from sensorfleet import rawio

    frames: list[dict[str, object]] = []
    low_bits_seen = [0]
    for index, (point, image) in enumerate(images):
        try:
            arr = read_image(image.path)
        except EmvaImportError as exc:
            raise EmvaImportError(desc.path, f"image {image.path}: {exc.reason}", image.line) from None
        frame = _to_dn(arr, desc, image, shift, alignment, low_bits_seen)
        name = _frame_name(index, len(images), image.path, pixel_format)
        rawio.write_frame(staging / name, frame, pixel_format)
        frames.append(_frame_entry(name, point))
    return frames


# ---------------------------------------------------------------------------------------------
# CLI


def import_emva_command(
    source: Annotated[Path, typer.Argument(help=f"EMVA 1288 data set folder (holding {' or '.join(DESCRIPTOR_NAMES)}) or the descriptor file")],
    landing: Annotated[Path | None, typer.Option(help="landing root (default: SENSORFLEET_LANDING or <root>/landing)")] = None,
    session_id: Annotated[str | None, typer.Option(help="default: the data set folder's name")] = None,
    module_id: Annotated[str | None, typer.Option(help="default: the data set folder's name")] = None,
    captured_at: Annotated[str | None, typer.Option(help="ISO 8601 with zone, e.g. 2024-05-01T12:00:00Z (default: now, UTC)")] = None,
    station_id: Annotated[str, typer.Option()] = DEFAULT_STATION_ID,
    temperature_c: Annotated[float, typer.Option(help="die temperature, degrees Celsius")] = DEFAULT_TEMPERATURE_C,
    pixel_pitch_um: Annotated[float, typer.Option(help="pixel pitch, micrometres")] = DEFAULT_PIXEL_PITCH_UM,
    lot_id: Annotated[str, typer.Option()] = "EMVA",
    wafer_id: Annotated[str, typer.Option()] = "EMVA",
    pixel_format: Annotated[str | None, typer.Option(
        help="default: png (the files copied) for LSB-aligned grayscale PNGs, else the bit depth's packed format or raw16_le")] = None,
    alignment: Annotated[str, typer.Option(help="16-bit images: auto, lsb (values as stored) or msb (left-shifted)")] = "auto",
) -> None:
    """Import an EMVA 1288 descriptor data set (EMVA1288_Data.txt + images) as one landing session."""

    from sensorfleet.config import resolve_paths

    if alignment not in ("auto", "lsb", "msb"):
        raise typer.BadParameter(f"{alignment!r}; valid: auto, lsb, msb", param_hint="--alignment")
    try:
        when = parse_captured_at(captured_at) if captured_at else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--captured-at") from None
    landing_root = resolve_paths(landing=landing).landing  # refuses a URL before anything is written
    options = ImportOptions(
        session_id=session_id, module_id=module_id, station_id=station_id, captured_at=when,
        temperature_c=temperature_c, pixel_pitch_um=pixel_pitch_um, lot_id=lot_id, wafer_id=wafer_id,
        pixel_format=pixel_format, alignment=alignment,  # type: ignore[arg-type]
    )
    try:
        result = import_emva(source, landing_root, options)
    except EmvaImportError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    m = result.manifest
    typer.echo(
        f"imported {len(m.frames)} frames ({len(m.operating_points())} operating points, "
        f"{m.sensor.width}x{m.sensor.height}, {m.sensor.bit_depth} bit, {m.pixel_format}) -> {result.session_dir}"
    )
