"""Run the EMVA reference implementation (``emva1288`` 1.0.2) beside our characterization.

emva1288 1.0.2 calls ``np.asfarray``, which numpy 2 removed: the one-line alias below restores it
for the reference only (the project never pins numpy 1).
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)  # type: ignore[attr-defined]  # noqa: NPY201

from emva1288.process import Data1288, LoadImageData, ParseEmvaDescriptorFile, Results1288  # noqa: E402

from sensorfleet import rawio  # noqa: E402
from sensorfleet.emva_import import ImportOptions, import_emva  # noqa: E402
from sensorfleet.manifest import Manifest  # noqa: E402

# ../shared/data beside the checkout (the developer machine and CI both lay it there)
DATA_003 = Path(__file__).resolve().parents[3] / "shared" / "data" / "emva1288-reference-003"


@dataclass(frozen=True)
class ReferenceRun:
    """The reference's numbers in our units, and how long its whole analysis took (s)."""

    values: dict[str, float]
    seconds: float


def _descriptor(folder: Path) -> Path:
    for name in ("EMVA1288descriptor.txt", "EMVA1288_Data.txt"):
        if (folder / name).exists():
            return folder / name
    found = sorted(folder.glob("*.txt"))
    if not found:
        raise FileNotFoundError(f"{folder}: no EMVA 1288 descriptor (*.txt)")
    return found[0]


def run_reference(folder: Path) -> ReferenceRun:
    """Parse, load and analyse a descriptor data set with emva1288; map results to our names."""
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        parser = ParseEmvaDescriptorFile(str(_descriptor(folder)), loglevel=logging.ERROR)
        loader = LoadImageData(parser.images, path=str(folder), loglevel=logging.ERROR)
        data = Data1288(loader.data, loglevel=logging.ERROR)
        res = Results1288(data.data, loglevel=logging.ERROR)
        k = float(res.K)
        values = {
            "gain_k_dn_per_e": k,
            "quantum_efficiency": float(res.QE) / 100.0,
            "temporal_dark_noise_dn": float(res.sigma_y_dark),
            "read_noise_e": float(res.sigma_d),
            "dark_current_e_per_s": float(res.u_I_mean),
            "dark_current_dn_per_s": float(res.u_I_mean_DN),
            "dsnu_e": float(res.DSNU1288),
            "dsnu_dn": float(res.DSNU1288_DN()),
            "prnu_pct": float(res.PRNU1288),
            "saturation_capacity_e": float(res.u_e_sat),
            "saturation_photons": float(res.u_p_sat),
            "snr_max_db": float(res.SNR_max_dB()),
            "dynamic_range_db": float(res.DR_dB()),
            "absolute_sensitivity_threshold_e": float(res.u_e_min),
            "linearity_error_pct": (float(res.LE_max) - float(res.LE_min)) / 2.0,
            "row_fpn_dn": math.sqrt(max(float(res.s_2_y_row_dark), 0.0)),
            "column_fpn_dn": math.sqrt(max(float(res.s_2_y_col_dark), 0.0)),
        }
    return ReferenceRun(values, time.perf_counter() - t0)


def load_as_session(folder: Path, landing: Path, session_id: str = "emva-ref") -> tuple[np.ndarray, Manifest, float]:
    """``import-emva`` the data set into ``landing`` and decode it to ((n, H, W) uint16, manifest).

    Returns the seconds the import + decode took as well.
    """
    t0 = time.perf_counter()
    result = import_emva(folder, landing, ImportOptions(session_id=session_id, module_id=session_id))
    m = result.manifest
    frames = np.empty((len(m.frames), m.sensor.height, m.sensor.width), np.uint16)
    for i, f in enumerate(m.frames):
        rawio.read_frame(result.session_dir / f.file, m.pixel_format, m.sensor.width, m.sensor.height, out=frames[i])
    return frames, m, time.perf_counter() - t0


def camera_dataset(outdir: Path, *, seed: int, width: int = 96, height: int = 64, steps: int = 24, spatial_frames: int = 16,
                   bit_depth: int = 12, dsnu_e: float = 2.0, prnu_pct: float = 1.0, **camera: Any) -> Path:
    """A data set from the reference's own camera simulator (emva1288.camera), written to ``outdir``.

    The simulator gets a white DSNU (``dsnu_e``, e- rms, uniform and >= 0: the simulator clips
    electrons at 0 before adding the offset, so a negative DSNU would cut the dark noise) and PRNU
    (``prnu_pct``) pattern. Its
    descriptor (``EMVA1288descriptor.txt``) is copied to ``EMVA1288_Data.txt`` without the ``v``
    version line, which ``import-emva`` does not accept.
    """
    rng = np.random.default_rng(seed)
    camera.setdefault("dsnu", rng.uniform(0.0, dsnu_e * math.sqrt(12.0), (height, width)))
    camera.setdefault("prnu", 1.0 + prnu_pct / 100.0 * rng.standard_normal((height, width)))
    from emva1288.camera.dataset_generator import DatasetGenerator
    from PIL import Image

    class _Generator(DatasetGenerator):  # type: ignore[misc]
        # Pillow >= 10 cannot write its mode "I" as PNG: store 16-bit PNGs (mode "I;16") instead
        def save_image(self, img: np.ndarray, name: str) -> None:
            arr = np.asarray(img)
            im = Image.fromarray(arr.astype(np.uint8)) if self.cam.bit_depth <= 8 else Image.fromarray(arr.astype(np.uint16))
            im.save(str(Path(self.outdir) / "images" / name))

    gen = _Generator(steps=steps, L=spatial_frames, outdir=str(outdir), width=width, height=height,
                           bit_depth=bit_depth, seed=seed, **camera)
    folder = Path(gen.descriptor_path).parent
    lines = Path(gen.descriptor_path).read_text().splitlines()
    (folder / "EMVA1288_Data.txt").write_text("\n".join(x for x in lines if not x.startswith("v ")) + "\n")
    return folder
