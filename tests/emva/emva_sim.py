"""Compact EMVA 1288 linear-model camera for the characterization tests (known truth, seeded).

photons (Poisson) x response -> electrons + dark electrons (Poisson) + read noise (Gaussian) ->
clip at full well -> K (DN/e-) + per-pixel offset -> round, clip to the ADC range. Fixed pattern:
DSNU offsets, PRNU gains, lens shading (cos^4 with a decentre), defects and blemishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from sensorfleet.manifest import Manifest


@dataclass(frozen=True)
class SimParams:
    width: int = 160
    height: int = 128
    bit_depth: int = 12
    cfa_pattern: str = "mono"
    gain_k_dn_per_e: float = 0.25
    qe: tuple[float, float, float, float] = (0.6, 0.6, 0.6, 0.6)  # per CFA site
    read_noise_e: float = 6.0
    dark_current_e_per_s: float = 100.0
    black_level_dn: float = 64.0
    dsnu_e: float = 8.0
    prnu_pct: float = 1.0
    full_well_e: float = 14000.0
    shading_corner: float = 0.9  # relative illumination at the corner of a centred lens
    shading_dx_px: float = 6.0
    shading_dy_px: float = -4.0
    hot: int = 12
    warm: int = 12
    dead: int = 12
    stuck: int = 8
    noisy: int = 10
    clusters: int = 4
    bad_columns: int = 1
    bad_rows: int = 1
    blemishes: int = 2
    dark_exposures_s: tuple[float, ...] = (0.01, 0.1, 0.2, 0.4)
    flat_exposure_s: float = 0.01
    ptc_levels: int = 14
    frames_per_point: int = 2
    spatial_frames: int = 16


@dataclass
class SimTruth:
    params: SimParams
    defects: list[tuple[int, int, str]] = field(default_factory=list)  # (x, y, class)
    blemishes: list[tuple[float, float, float]] = field(default_factory=list)  # (x, y, radius)
    saturation_photons: float = 0.0


def _manifest(p: SimParams, frames: list[tuple[str, float, float]], session_id: str) -> Manifest:
    return Manifest.model_validate(
        {
            "schema_version": 1,
            "session_id": session_id,
            "module_id": "M-" + session_id,
            "station_id": "ST1",
            "captured_at": datetime(2026, 3, 1, 12, 0, tzinfo=UTC).isoformat(),
            "temperature_c": 25.0,
            "sensor": {
                "lot_id": "L1",
                "wafer_id": "W1",
                "die_x": 1,
                "die_y": 2,
                "width": p.width,
                "height": p.height,
                "bit_depth": p.bit_depth,
                "cfa_pattern": p.cfa_pattern,
                "pixel_pitch_um": 2.0,
            },
            "pixel_format": "npy",
            "frames": [
                {"file": f"f{i:04d}.npy", "kind": k, "exposure_s": t, "photons_per_pixel": ph}
                for i, (k, t, ph) in enumerate(frames)
            ],
        }
    )


def simulate(p: SimParams = SimParams(), seed: int = 1, session_id: str = "sim-1") -> tuple[np.ndarray, Manifest, SimTruth]:
    """Frames ((n, H, W) uint16), their manifest and the truth of one simulated module."""
    rng = np.random.default_rng(seed)
    h, w = p.height, p.width
    truth = SimTruth(p)
    site = 2 * (np.arange(h) % 2)[:, None] + (np.arange(w) % 2)[None, :]
    qe = np.asarray(p.qe)[site]
    prnu = 1.0 + p.prnu_pct / 100 * rng.standard_normal((h, w))
    for s in range(4):
        sel = site == s
        prnu[sel] /= prnu[sel].mean()
        z = prnu[sel] - 1.0
        prnu[sel] = 1.0 + z / z.std() * p.prnu_pct / 100
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    cx, cy = (w - 1) / 2 + p.shading_dx_px, (h - 1) / 2 + p.shading_dy_px
    rc = np.hypot((w - 1) / 2, (h - 1) / 2)
    f2 = rc**2 / (p.shading_corner ** -0.5 - 1.0)  # cos^4 = 1 / (1 + r^2/f^2)^2
    shading = 1.0 / (1.0 + ((xx - cx) ** 2 + (yy - cy) ** 2) / f2) ** 2
    trans = np.ones((h, w))
    reserved = np.zeros((h, w), bool)

    def reserve(y0: int, y1: int, x0: int, x1: int) -> None:
        reserved[max(0, y0) : y1, max(0, x0) : x1] = True

    for _ in range(p.blemishes):
        for _try in range(200):
            r = rng.uniform(6, 10)
            bx, by = rng.uniform(r + 3, w - r - 4), rng.uniform(r + 3, h - r - 4)
            if not reserved[int(by - r - 3) : int(by + r + 4), int(bx - r - 3) : int(bx + r + 4)].any():
                break
        depth = rng.uniform(0.1, 0.3)
        rr = np.hypot(xx - bx, yy - by)
        trans *= 1 - depth * np.where(rr < r, 0.5 * (1 + np.cos(np.pi * rr / r)), 0.0)
        reserve(int(by - r - 2), int(by + r + 3), int(bx - r - 2), int(bx + r + 3))
        truth.blemishes.append((bx, by, r))
    response = qe * prnu * shading * trans  # e- per photon
    dsnu = rng.standard_normal((h, w))
    dsnu = (dsnu - dsnu.mean()) / dsnu.std() * p.dsnu_e
    offset_e = dsnu.copy()
    dark = np.full((h, w), p.dark_current_e_per_s)
    stuck_mask = np.zeros((h, w), bool)
    stuck_val = np.zeros((h, w))
    rts = np.zeros((h, w))

    for kind, count, axis in (("bad_column", p.bad_columns, 1), ("bad_row", p.bad_rows, 0)):
        for _ in range(count):
            n = w if axis == 1 else h
            for _try in range(100):
                pos = int(rng.integers(4, n - 4))
                line = reserved[:, pos] if axis == 1 else reserved[pos, :]
                if not line.any():
                    break
            sl = (slice(None), pos) if axis == 1 else (pos, slice(None))
            if kind == "bad_column":
                offset_e[sl] += 150.0
            else:
                response[sl] *= 0.6
            if axis == 1:
                reserved[:, pos - 2 : pos + 3] = True
                truth.defects += [(pos, y, kind) for y in range(h)]
            else:
                reserved[pos - 2 : pos + 3, :] = True
                truth.defects += [(x, pos, kind) for x in range(w)]

    def pick() -> tuple[int, int]:
        for _try in range(1000):
            y, x = int(rng.integers(2, h - 2)), int(rng.integers(2, w - 2))
            if not reserved[y - 2 : y + 3, x - 2 : x + 3].any():
                return y, x
        raise RuntimeError("no room for another defect")

    def apply(kind: str, y: int, x: int) -> None:
        if kind == "hot":
            dark[y, x] = p.dark_current_e_per_s * np.exp(rng.uniform(np.log(300), np.log(1000)))
        elif kind == "warm":
            dark[y, x] = p.dark_current_e_per_s * rng.uniform(20, 50)
        elif kind == "dead":
            response[y, x] *= rng.uniform(0.0, 0.05)
        elif kind == "stuck":
            stuck_mask[y, x] = True
            stuck_val[y, x] = rng.choice([0, 2**p.bit_depth - 1, int(rng.integers(800, 3000))])
        elif kind == "noisy":
            rts[y, x] = rng.uniform(10, 25) * p.read_noise_e

    for kind in ("hot", "warm", "dead", "stuck", "noisy"):
        for _ in range(getattr(p, kind)):
            y, x = pick()
            apply(kind, y, x)
            reserve(y - 2, y + 3, x - 2, x + 3)
            truth.defects.append((x, y, kind))
    for _ in range(p.clusters):
        y, x = pick()
        size = int(rng.integers(2, 10))
        members = [(y, x)]
        while len(members) < size:
            my, mx = members[int(rng.integers(len(members)))]
            ny, nx = my + int(rng.integers(-1, 2)), mx + int(rng.integers(-1, 2))
            if (ny, nx) not in members and not reserved[ny, nx]:
                members.append((ny, nx))
        kind = "hot" if rng.random() < 0.5 else "dead"
        for my, mx in members:
            apply(kind, my, mx)
        for my, mx in members:
            reserve(my - 2, my + 3, mx - 2, mx + 3)
            truth.defects.append((mx, my, "cluster"))

    # capture plan
    frames: list[tuple[str, float, float]] = []
    for t in p.dark_exposures_s:
        n = p.spatial_frames if np.isclose(t, p.flat_exposure_s) else p.frames_per_point
        frames += [("dark", t, 0.0)] * n
    mean_resp = float(np.mean(p.qe))
    sat_photons = p.full_well_e / mean_resp
    truth.saturation_photons = sat_photons
    levels = np.linspace(0.02, 1.15, p.ptc_levels) * sat_photons
    mid = int(np.argmin(np.abs(levels - 0.5 * sat_photons)))
    for i, ph in enumerate(levels):
        n = p.spatial_frames if i == mid else p.frames_per_point
        frames += [("flat", p.flat_exposure_s, float(round(ph, 3)))] * n
    manifest = _manifest(p, frames, session_id)

    out = np.empty((len(frames), h, w), np.uint16)
    max_dn = 2**p.bit_depth - 1
    base_dn = p.black_level_dn + p.gain_k_dn_per_e * offset_e
    for i, (_kind, t, ph) in enumerate(frames):
        e = rng.poisson(dark * t).astype(float)
        if ph > 0:
            e += rng.poisson(response * ph)
        e += rng.normal(0.0, p.read_noise_e, (h, w))
        if rts.any():
            e += rts * (rng.random((h, w)) < 0.5)
        e = np.minimum(e, p.full_well_e)
        dn = np.clip(np.round(p.gain_k_dn_per_e * e + base_dn), 0, max_dn)
        dn[stuck_mask] = stuck_val[stuck_mask]
        out[i] = dn.astype(np.uint16)
    return out, manifest, truth
