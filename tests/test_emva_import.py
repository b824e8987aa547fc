"""EMVA 1288 descriptor import: the reference data set 003, small synthetic sets, refusals."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner, Result

from sensorfleet import rawio
from sensorfleet.cli import app
from sensorfleet.emva_import import (
    EmvaImportError,
    ImportOptions,
    import_emva,
    parse_captured_at,
    parse_descriptor,
)
from sensorfleet.manifest import load_manifest

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "emva1288-reference-003"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} not available")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def tree_fingerprint(folder: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every entry under ``folder``, the folder itself included."""
    entries = {".": (0, folder.stat().st_mtime_ns)}
    for p in sorted(folder.rglob("*")):
        st = p.stat()
        entries[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return entries


def png16(path: Path, arr: np.ndarray) -> None:
    Image.fromarray(arr.astype(np.uint16)).save(path)


# ---------------------------------------------------------------------------------------------
# the reference data set


@pytest.fixture(scope="module")
def reference_import(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[int, int]], str]:
    landing = tmp_path_factory.mktemp("landing")
    before = tree_fingerprint(REFERENCE)
    digest = hashlib.sha256((REFERENCE / "EMVA1288_Data.txt").read_bytes()).hexdigest()
    result = import_emva(REFERENCE, landing, ImportOptions(captured_at=WHEN))
    assert tree_fingerprint(REFERENCE) == before
    assert hashlib.sha256((REFERENCE / "EMVA1288_Data.txt").read_bytes()).hexdigest() == digest
    return result.session_dir, before, digest


def descriptor_lines() -> list[tuple[str, list[str]]]:
    """The reference descriptor read independently of the importer: (b/d line, image names)."""
    points: list[tuple[str, list[str]]] = []
    for line in (REFERENCE / "EMVA1288_Data.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith(("b ", "d ")):
            points.append((line.strip(), []))
        elif line.startswith("i "):
            points[-1][1].append(line[2:].strip().replace("\\", "/"))
    return points


@needs_reference
def test_reference_manifest(reference_import: tuple[Path, dict[str, tuple[int, int]], str]) -> None:
    session, _, _ = reference_import
    assert session.name == "emva1288-reference-003"
    assert not [p for p in session.parent.iterdir() if p.name.startswith(".")]  # no staging left
    m = load_manifest(session)
    assert (m.session_id, m.module_id) == ("emva1288-reference-003", "emva1288-reference-003")
    assert m.captured_at == WHEN and m.capture_date == "2024-05-01"
    assert (m.sensor.width, m.sensor.height, m.sensor.bit_depth, m.sensor.cfa_pattern) == (640, 480, 12, "mono")
    assert (m.sensor.lot_id, m.sensor.wafer_id, m.sensor.die_x, m.sensor.die_y) == ("EMVA", "EMVA", 0, 0)
    assert m.pixel_format == "png"  # LSB-aligned 16-bit grayscale PNGs: copied, not re-encoded
    assert len(m.frames) == 302

    expected = []
    for line, names in descriptor_lines():
        parts = line.split()
        kind = "flat" if parts[0] == "b" else "dark"
        photons = float(parts[2]) if kind == "flat" else 0.0
        expected += [(Path(n).stem, kind, int(parts[1]) / 1e9, photons) for n in names]
    got = [(re.sub(r"^\d+_", "", Path(f.file).stem), f.kind, f.exposure_s, f.photons_per_pixel) for f in m.frames]
    assert got == expected  # descriptor order, kinds, seconds, photons

    points = m.operating_points()
    assert len(points) == 51  # 50 illumination steps (b_s_024 repeats step 24) + one dark point
    assert len(points[("dark", 0.001, 0.0)]) == 102
    assert len(points[("flat", 0.001, 39831.8)]) == 102
    assert len(points[("flat", 0.001, 1659.7)]) == 2
    assert max(f.photons_per_pixel for f in m.frames) == 82983.0
    assert all(f.exposure_s == 0.001 for f in m.frames)
    provenance_frames = json.loads((session / "emva1288_import.json").read_text())["frames"]
    for f, prov in zip(m.frames, provenance_frames, strict=True):
        assert (session / f.file).read_bytes() == Path(prov["source"]).read_bytes()

    provenance = json.loads((session / "emva1288_import.json").read_text())
    assert provenance["alignment"] == "lsb" and provenance["right_shift_bits"] == 0


@needs_reference
@pytest.mark.parametrize("index", [0, 101, 149, 200, 301])
def test_reference_frames_equal_source_pixels(reference_import: tuple[Path, dict[str, tuple[int, int]], str],
                                              index: int) -> None:
    session, _, _ = reference_import
    m = load_manifest(session)
    frame = m.frames[index]
    source = REFERENCE / "images" / (re.sub(r"^\d+_", "", Path(frame.file).stem) + ".png")
    with Image.open(source) as img:
        truth = np.asarray(img).astype(np.uint16)
    assert truth.max() <= 4095  # set 003 stores its 12-bit values LSB-aligned in 16-bit PNGs
    decoded = rawio.read_frame(session / frame.file, m.pixel_format, 640, 480)
    np.testing.assert_array_equal(decoded, truth)


# ---------------------------------------------------------------------------------------------
# small synthetic sets


def make_set(folder: Path, bits: int, frames: dict[str, list[np.ndarray]], writer: str = "png16",
             header: str | None = None) -> Path:
    """A tiny descriptor data set; keys like 'b 40000 120.5' or 'd 40000' -> its images."""
    (folder / "images").mkdir(parents=True)
    first = next(iter(frames.values()))[0]
    lines = ["# tiny test set", header or f"n {bits} {first.shape[1]} {first.shape[0]}"]
    count = 0
    for point, images in frames.items():
        lines.append(point)
        for arr in images:
            count += 1
            if writer == "tiff":
                name = f"img_{count:03d}.tif"
                tifffile.imwrite(folder / "images" / name, arr)
            else:
                name = f"img_{count:03d}.png"
                Image.fromarray(arr).save(folder / "images" / name)
            lines.append(f"i images\\{name}")
    (folder / "EMVA1288_Data.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_left_shifted_16bit_pngs_are_shifted_back(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dark = [rng.integers(20, 60, (5, 7), dtype=np.uint16) for _ in range(2)]  # fits 12 bits even shifted
    flat = [rng.integers(2000, 4096, (5, 7), dtype=np.uint16) for _ in range(2)]
    src = make_set(tmp_path / "shifted set", 12, {"d 40000": [a << 4 for a in dark],
                                                    "b 40000 1500": [a << 4 for a in flat]})
    result = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    assert result.shift_bits == 4
    m = result.manifest
    assert m.session_id == "shifted_set" and m.pixel_format == "raw12_mipi"
    for f, truth in zip(m.frames, dark + flat, strict=True):
        np.testing.assert_array_equal(rawio.read_frame(result.session_dir / f.file, "raw12_mipi", 7, 5), truth)
    assert [f.exposure_s for f in m.frames] == [4e-5] * 4
    assert [f.photons_per_pixel for f in m.frames] == [0, 0, 1500, 1500]


def test_8bit_png_and_10bit_tiff_sets(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    imgs8 = [rng.integers(0, 256, (4, 9), dtype=np.uint8) for _ in range(4)]
    src = make_set(tmp_path / "s8", 8, {"d 1000": imgs8[:2], "b 1000 10": imgs8[2:]})
    r = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    assert r.manifest.pixel_format == "png" and r.manifest.sensor.bit_depth == 8
    np.testing.assert_array_equal(rawio.read_frame(r.session_dir / r.manifest.frames[3].file, "png", 9, 4), imgs8[3])
    r = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN, session_id="s8-raw", pixel_format="raw8"))
    np.testing.assert_array_equal(rawio.read_frame(r.session_dir / r.manifest.frames[3].file, "raw8", 9, 4), imgs8[3])

    imgs10 = [rng.integers(0, 1024, (6, 5), dtype=np.uint16) for _ in range(2)]
    imgs10[1][2, 3] = 1023
    src = make_set(tmp_path / "s10", 10, {"b 2500000 77.25": imgs10}, writer="tiff")
    r = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN, session_id="ten", module_id="M-10"))
    assert r.session_dir == tmp_path / "landing" / "ten"
    assert (r.manifest.pixel_format, r.manifest.module_id) == ("raw10_mipi", "M-10")
    assert r.manifest.frames[0].exposure_s == 0.0025 and r.manifest.frames[0].photons_per_pixel == 77.25
    np.testing.assert_array_equal(rawio.read_frame(r.session_dir / r.manifest.frames[1].file, "raw10_mipi", 5, 6),
                                  imgs10[1])


def test_raw16_for_odd_bit_depths_and_explicit_format(tmp_path: Path) -> None:
    imgs = [np.full((3, 3), 2047, np.uint16), np.zeros((3, 3), np.uint16)]
    src = make_set(tmp_path / "s11", 11, {"d 10": imgs})
    r = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN, pixel_format="raw16_le"))
    assert r.manifest.pixel_format == "raw16_le"
    assert import_emva(src, tmp_path / "landing", ImportOptions(session_id="s11-tiff-default")).manifest.pixel_format == "png"
    r2 = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN, session_id="as-npy", pixel_format="npy"))
    np.testing.assert_array_equal(rawio.read_frame(r2.session_dir / r2.manifest.frames[0].file, "npy", 3, 3), imgs[0])
    with pytest.raises(EmvaImportError, match="pixel format raw10_mipi holds 10 bits, the data set has 11"):
        import_emva(src, tmp_path / "landing", ImportOptions(session_id="x", pixel_format="raw10_mipi"))


# ---------------------------------------------------------------------------------------------
# refusals: file and line named, nothing left behind


GOOD = np.full((4, 6), 100, np.uint16)


@pytest.mark.parametrize(
    ("header", "points", "line", "message"),
    [
        (None, {"x 5": [GOOD]}, 3, r"unknown line type 'x'; expected 'v', 'n', 'b', 'd', 'i'"),
        (None, {"b 5": [GOOD]}, 3, r"expected 2 value\(s\) \(exposure_ns photons\), found 1: '5'"),
        (None, {"b 5 many": [GOOD]}, 3, r"expected numbers \(exposure_ns photons\), found '5 many'"),
        (None, {"d -5": [GOOD]}, 3, r"non-negative"),
        ("n 20 6 4", {"d 5": [GOOD]}, 2, r"bit depth must be 8..16, found 20"),
        ("n 12 6", {"d 5": [GOOD]}, 2, r"expected 3 value\(s\) \(bits width height\)"),
        ("n 12 7 4", {"d 5": [GOOD]}, 4, r"image img_001.png has shape \(H, W\) = \(4, 6\), the 'n' line says \(4, 7\)"),
        ("n 12 6 4", {"d 5": [GOOD.astype(np.uint8)]}, 4, r"image img_001.png is 8-bit, the 'n' line says 12 bits"),
        ("n 8 6 4", {"d 5": [GOOD * 3]}, 4, r"values exceed bit_depth 8 \(max 255\): max found 300 at \(y, x\) = \(0, 0\)"),
    ],
)
def test_bad_descriptor_names_file_and_line(tmp_path: Path, header: str | None, points: dict[str, list[np.ndarray]],
                                            line: int, message: str) -> None:
    src = make_set(tmp_path / "bad", 12, points, header=header)
    landing = tmp_path / "landing"
    with pytest.raises(EmvaImportError, match=message) as err:
        import_emva(src, landing, ImportOptions(captured_at=WHEN))
    assert err.value.line == line
    assert str(err.value).startswith(f"{src / 'EMVA1288_Data.txt'}:{line}: ")
    assert not landing.exists() or not list(landing.iterdir())


def write_descriptor(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    png16(folder / "images" / "a.png", GOOD)
    (folder / "EMVA1288_Data.txt").write_text(text)
    return folder


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("n 12 6 4\nd 5\ni images\\missing.png\n", 3, r"image file not found: 'images\\\\missing.png'"),
        ("n 12 6 4\ni images/a.png\n", 2, r"'i' image line before any 'b' or 'd'"),
        ("n 12 6 4\nd 5\nb 5 1\ni images/a.png\n", 2, r"operating point 'd 5' has no 'i' image lines"),
        ("d 5\ni images/a.png\n", 1, r"'d' line before the 'n' line"),
        ("n 12 6 4\nd 5\ni images/a.png\nn 12 6 4\n", 4, r"second 'n' line"),
        ("# only a comment\n", None, r"no 'n BITS WIDTH HEIGHT' line"),
        ("n 12 6 4\n", None, r"no 'b' or 'd' operating points"),
        ("v 4.0\nn 12 6 4\nv 4.0\nd 5\ni images/a.png\n", 3, r"second 'v' version line \(the first is line 1\)"),
        ("v\nn 12 6 4\nd 5\ni images/a.png\n", 1, r"expected 'v RELEASE' \(one value, e.g. 'v 4.0'\), found 'v'"),
        ("v 4.0 beta\nn 12 6 4\nd 5\ni images/a.png\n", 1, r"expected 'v RELEASE'.*found 'v 4.0 beta'"),
        ("v 4.0\nn 12 6 4\nd 5\ni images/a.png\nq 1\n", 5, r"unknown line type 'q'"),
    ],
)
def test_bad_structure_names_line(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    src = write_descriptor(tmp_path / "set", text)
    with pytest.raises(EmvaImportError, match=message) as err:
        parse_descriptor(src / "EMVA1288_Data.txt")
    assert err.value.line == line and err.value.path == str(src / "EMVA1288_Data.txt")


def test_lsb_alignment_refuses_shifted_data_and_msb_refuses_unshifted(tmp_path: Path) -> None:
    src = make_set(tmp_path / "s", 12, {"d 5": [GOOD << 6, GOOD << 6]})
    with pytest.raises(EmvaImportError, match=r"values exceed bit_depth 12 \(max 4095\): max found 6400"):
        import_emva(src, tmp_path / "l", ImportOptions(alignment="lsb", pixel_format="raw12_mipi"))
    src = make_set(tmp_path / "t", 12, {"d 5": [GOOD, GOOD + 1]})
    with pytest.raises(EmvaImportError, match=r"img_001.png is not left-shifted by 4 bits"):
        import_emva(src, tmp_path / "l", ImportOptions(alignment="msb"))
    # auto: a shifted image after an unshifted one (low bits seen) is an error, not a shift
    src = make_set(tmp_path / "u", 12, {"d 5": [GOOD + 1, GOOD << 6]})
    with pytest.raises(EmvaImportError, match=r":5: image img_002.png: values exceed bit_depth 12"):
        import_emva(src, tmp_path / "l", ImportOptions(pixel_format="raw12_mipi"))
    assert not list((tmp_path / "l").iterdir())


def test_copied_pngs_with_values_out_of_range_are_rejected_by_the_ingest(tmp_path: Path) -> None:
    """PNGs copied as they are get their values checked by the ingest: the session is refused,
    naming the frame file and the largest value; the sample of the brightest point is checked at
    import."""
    from sensorfleet.config import Paths
    from sensorfleet.ingest.session import ingest_session

    flat = np.full((4, 6), 3000, np.uint16)
    src = make_set(tmp_path / "u", 12, {"d 5": [GOOD + 1, GOOD << 6], "b 5 100": [flat, flat], "b 5 200": [flat + 1, flat]})
    result = import_emva(src, tmp_path / "l", ImportOptions(captured_at=datetime.now(UTC)))
    assert result.manifest.pixel_format == "png"
    ingested = ingest_session(result.session_dir, Paths(root=tmp_path / "data", landing=tmp_path / "l"))
    assert ingested.status == "rejected"
    [rejection] = ingested.rejections
    assert rejection.file == result.manifest.frames[1].file and rejection.file.endswith("_img_002.png")
    assert "pixel values exceed bit_depth 12: expected <= 4095 DN, found max 6400 DN" in rejection.reason
    bright = make_set(tmp_path / "v", 12, {"d 5": [GOOD, GOOD], "b 5 100": [flat, flat], "b 5 200": [(flat << 4) + 1, flat]})
    with pytest.raises(EmvaImportError, match=r":10: image img_005.png: values exceed bit_depth 12 \(max 4095\)"):
        import_emva(bright, tmp_path / "l")


def test_existing_session_is_not_overwritten(tmp_path: Path) -> None:
    src = make_set(tmp_path / "s", 12, {"d 5": [GOOD, GOOD]})
    first = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    manifest_before = (first.session_dir / "manifest.json").read_bytes()
    with pytest.raises(EmvaImportError, match="session folder already exists"):
        import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN + timedelta(days=1)))
    assert (first.session_dir / "manifest.json").read_bytes() == manifest_before
    assert sorted(p.name for p in (tmp_path / "landing").iterdir()) == ["s"]


def test_captured_at_parsing() -> None:
    assert parse_captured_at("2024-05-01T12:00:00Z") == WHEN
    assert parse_captured_at("2024-05-01T14:00:00+02:00") == WHEN
    assert parse_captured_at("2024-05-01T14:00:00+02:00").tzinfo == timezone(timedelta(hours=2))
    with pytest.raises(ValueError, match="has no time zone"):
        parse_captured_at("2024-05-01T12:00:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_captured_at("yesterday")


def test_default_captured_at_is_now_utc(tmp_path: Path) -> None:
    src = make_set(tmp_path / "s", 12, {"d 5": [GOOD, GOOD]})
    before = datetime.now(UTC)
    m = import_emva(src, tmp_path / "landing").manifest
    assert before <= m.captured_at <= datetime.now(UTC) and m.captured_at.utcoffset() == timedelta(0)


def test_cli(tmp_path: Path) -> None:
    src = make_set(tmp_path / "set-1", 12, {"d 5": [GOOD, GOOD], "b 1000000 250.5": [GOOD + 900, GOOD + 901]})
    landing = tmp_path / "landing"
    runner = CliRunner()

    def invoke(args: list[str]) -> Result:
        return runner.invoke(app, ["import-emva", *args])  # a group of lazily loaded commands

    common = [str(src), "--landing", str(landing), "--module-id", "M1", "--station-id", "st-9"]
    result = invoke([*common, "--session-id", "S1", "--captured-at", "2024-05-01T14:00:00+02:00",
                     "--pixel-pitch-um", "3.45"])
    assert result.exit_code == 0, result.output
    assert "imported 4 frames (2 operating points" in result.output
    m = load_manifest(landing / "S1")
    assert (m.module_id, m.station_id, m.sensor.pixel_pitch_um) == ("M1", "st-9", 3.45)
    assert m.captured_at == WHEN and m.frames[2].exposure_s == 0.001 and m.frames[2].photons_per_pixel == 250.5
    bad = invoke([*common, "--session-id", "S2", "--captured-at", "2024-05-01 12:00"])
    assert bad.exit_code == 2 and "no time zone" in re.sub(r"[\s│]+", " ", bad.output) and not (landing / "S2").exists()
    again = invoke([*common, "--session-id", "S1"])
    assert again.exit_code == 1 and "session folder already exists" in again.output


# ---------------------------------------------------------------------------------------------
# the version line and the emva1288 simulator's output


def test_version_line_is_accepted_and_recorded(tmp_path: Path) -> None:
    imgs = [GOOD, GOOD + 1, GOOD + 700, GOOD + 701]
    src = make_set(tmp_path / "versioned", 12, {"d 5": imgs[:2], "b 5 300": imgs[2:]},
                   header="v 4.0  # release of the standard\nn 12 6 4")
    desc = parse_descriptor(src / "EMVA1288_Data.txt")
    assert desc.version == "4.0" and desc.bit_depth == 12 and [p.line for p in desc.points] == [4, 7]
    result = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    provenance = json.loads((result.session_dir / "emva1288_import.json").read_text())
    assert provenance["descriptor_version"] == "4.0"
    assert [f["descriptor_line"] for f in provenance["frames"]] == [5, 6, 8, 9]
    for f, truth in zip(result.manifest.frames, imgs, strict=True):
        np.testing.assert_array_equal(rawio.read_frame(result.session_dir / f.file, result.manifest.pixel_format, 6, 4), truth)

    plain = make_set(tmp_path / "plain", 12, {"d 5": imgs[:2]})
    assert parse_descriptor(plain / "EMVA1288_Data.txt").version is None
    r = import_emva(plain, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    assert json.loads((r.session_dir / "emva1288_import.json").read_text())["descriptor_version"] is None


def test_simulator_layout_int32_tiffs_and_descriptor_name(tmp_path: Path) -> None:
    """What emva1288's DatasetGenerator writes: EMVA1288descriptor.txt, 'v 4.0', int32 TIFFs."""
    rng = np.random.default_rng(3)
    imgs = [rng.integers(0, 4096, (5, 8)).astype(np.int32) for _ in range(4)]
    src = tmp_path / "sim"
    (src / "images").mkdir(parents=True)
    lines = ["v 4.0", "n 12 8 5", "b 500000.0 83.021"]
    for i, arr in enumerate(imgs):
        if i == 2:
            lines.append("d 500000.0")
        tifffile.imwrite(src / "images" / f"image{i}.tiff", arr)
        lines.append(f"i images\\image{i}.tiff")
    (src / "EMVA1288descriptor.txt").write_text("\n".join(lines) + "\n")
    result = import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    m = result.manifest
    assert [(f.kind, f.exposure_s, f.photons_per_pixel) for f in m.frames] == [
        ("flat", 5e-4, 83.021), ("flat", 5e-4, 83.021), ("dark", 5e-4, 0.0), ("dark", 5e-4, 0.0)]
    for f, truth in zip(m.frames, imgs, strict=True):
        np.testing.assert_array_equal(rawio.read_frame(result.session_dir / f.file, "raw12_mipi", 8, 5), truth)
    provenance = json.loads((result.session_dir / "emva1288_import.json").read_text())
    assert provenance["descriptor"].endswith("EMVA1288descriptor.txt") and provenance["descriptor_version"] == "4.0"

    tifffile.imwrite(src / "images" / "image3.tiff", np.full((5, 8), 70000, np.int32))
    with pytest.raises(EmvaImportError, match=r":8: image .*image3.tiff: int32 image with values outside 0..65535"):
        import_emva(src, tmp_path / "landing", ImportOptions(captured_at=WHEN, session_id="again"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(EmvaImportError, match="looked for EMVA1288_Data.txt or EMVA1288descriptor.txt"):
        import_emva(empty, tmp_path / "landing")


def test_emva1288_simulator_round_trip(tmp_path: Path) -> None:
    """A data set from the reference package's own simulator imports pixel for pixel."""
    generator = pytest.importorskip("emva1288.camera.dataset_generator")
    out = tmp_path / "simulated"
    generator.DatasetGenerator(width=16, height=12, bit_depth=10, steps=3, L=2, image_format="tiff",
                               outdir=str(out))
    result = import_emva(out, tmp_path / "landing", ImportOptions(captured_at=WHEN))
    provenance = json.loads((result.session_dir / "emva1288_import.json").read_text())
    assert provenance["descriptor_version"] == "4.0" and result.manifest.pixel_format == "raw10_mipi"
    kinds = {f.kind for f in result.manifest.frames}
    assert kinds == {"dark", "flat"} and len(result.manifest.frames) == len(list((out / "images").iterdir()))
    for f, source in zip(result.manifest.frames, provenance["frames"], strict=True):
        truth = tifffile.imread(source["source"])
        np.testing.assert_array_equal(rawio.read_frame(result.session_dir / f.file, "raw10_mipi", 16, 12), truth)
