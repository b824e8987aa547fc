"""The fleet: lots -> wafers -> dies, stations, capture dates, fault classes, final-test labels.

Everything at module level (true scalar parameters, identity, date, fault, label) is drawn here,
cheaply, in one process from the fleet seed; the per-pixel work happens later per module from
``(seed, module index)`` (:mod:`sensorfleet.synth.writer`). The label rule and every magnitude
are documented in docs/synthetic-fleet.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from sensorfleet.manifest import CFA_PATTERNS, PIXEL_FORMATS
from sensorfleet.rawio import container_bits
from sensorfleet.synth.params import (
    NOMINAL_BLACK_LEVEL_12BIT_DN,
    NOMINAL_DARK_CURRENT_25C_E_PER_S,
    NOMINAL_FULL_WELL_E,
    NOMINAL_GAIN_12BIT_DN_PER_E,
    NOMINAL_QE,
    NOMINAL_QE_MONO,
    NOMINAL_READ_NOISE_E,
    DefectCounts,
    ModuleParams,
)
from sensorfleet.synth.stations import (
    StationEvent,
    apply_station_events,
    check_stations,
    station_id,
)

FAULT_CLASSES = ("high_dark_current", "column_defect", "particle", "shading_tilt", "low_qe", "noisy")
#: lens faults, drawn only in fleets with edge charts (``FleetConfig.edge_charts``)
LENS_FAULT_CLASSES = ("defocus", "lens_tilt")
FAIL_BINS = ("pixel_defects", "optics", "sensitivity", "read_noise", "dark_current", "functional")

#: defect densities of a healthy module, per megapixel (hot .. clusters) or per module (lines, blemishes)
DEFECTS_PER_MPX = {"hot": 20.0, "warm": 40.0, "dead": 10.0, "stuck": 5.0, "noisy": 15.0, "clusters": 3.0}
BAD_COLUMNS_PER_MODULE = 0.01
BAD_ROWS_PER_MODULE = 0.005
BLEMISHES_PER_MODULE = 0.3

#: final-test spec limits (12-bit scale; see docs/synthetic-fleet.md)
FINAL_TEST_TEMPERATURE_C = 40.0
SPEC_DARK_CURRENT_40C_E_PER_S = 60.0
SPEC_READ_NOISE_E = 3.3
SPEC_QE_G_MIN = 0.53
SPEC_DEFECT_PIXELS_PER_MPX = 300.0
SPEC_DEFECT_PIXELS_MIN = 12.0
SPEC_BLEMISH_DEPTH_MAX = 0.32
SPEC_SHADING_CORNER_MIN_REL = 0.78
#: optics limits of fleets with edge charts: MTF50 (cycles/pixel) at the centre and the worst
#: corner, colour shading (max deviation of R/G or B/G from the centre, %)
SPEC_MTF50_CENTER_MIN = 0.17
SPEC_MTF50_CORNER_MIN = 0.13
SPEC_COLOUR_SHADING_MAX_PCT = 12.0
FINAL_TEST_NOISE_REL = 0.03


@dataclass(frozen=True)
class FleetConfig:
    """What fleet to generate. Output depends only on these fields (``workers`` excepted)."""

    modules: int
    seed: int = 0
    width: int = 640
    height: int = 480
    pixel_format: str = "raw12_mipi"
    #: ADC bits; None: 8/10/12/14 for raw8/raw10/raw12/raw14, 12 for raw16_le, npy, tiff and png
    bit_depth: int | None = None
    cfa: str = "RGGB"
    frames_per_point: int = 2
    ptc_levels: int = 13
    averaging_frames: int = 16
    ptc_exposure_s: float = 0.01
    dark_exposures_s: tuple[float, ...] = (0.01, 0.1, 0.3, 1.0)
    fault_fraction: float = 0.05
    target_yield: float = 0.90
    start: datetime = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    span_days: float = 21.0
    stations: int = 4
    #: modules per wafer lot (the fleet has ceil(modules / modules_per_lot) lots)
    modules_per_lot: int = 50
    pixel_pitch_um: float = 2.0
    #: render an edge-chart capture per module through its lens (field-varying PSF, colour
    #: shading), add the lens faults and the optics limits of final test. Off by default: a fleet
    #: without charts is byte-identical to one written before charts existed.
    edge_charts: bool = False
    chart_frames: int = 4
    #: station events (:mod:`sensorfleet.synth.stations`): a station's light source dimming or its
    #: temperature control failing from a given day. None by default: the fleet is byte-identical
    #: to one written before events existed.
    station_events: tuple[StationEvent, ...] = ()
    #: worker processes (None: one per CPU, at most the module count); does not change the output
    workers: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.modules < 1:
            raise ValueError(f"modules must be >= 1, found {self.modules}")
        if self.modules_per_lot < 1:
            raise ValueError(f"modules_per_lot must be >= 1, found {self.modules_per_lot}")
        if self.pixel_format not in PIXEL_FORMATS:
            raise ValueError(f"pixel_format {self.pixel_format!r} unknown; valid: {', '.join(PIXEL_FORMATS)}")
        if self.cfa not in CFA_PATTERNS:
            raise ValueError(f"cfa {self.cfa!r} unknown; valid: {', '.join(CFA_PATTERNS)}")
        depth = self.resolved_bit_depth
        if not 8 <= depth <= min(16, container_bits(self.pixel_format)):
            raise ValueError(f"bit_depth {depth} does not fit pixel_format {self.pixel_format} "
                             f"(8..{container_bits(self.pixel_format)})")
        if self.width < 2 or self.height < 2:
            raise ValueError(f"width and height must be >= 2, found {self.width}x{self.height}")
        if not 0 <= self.fault_fraction <= 1:
            raise ValueError(f"fault_fraction must be in [0, 1], found {self.fault_fraction}")
        if not 0 < self.target_yield <= 1:
            raise ValueError(f"target_yield must be in (0, 1], found {self.target_yield}")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware (UTC)")
        if self.edge_charts and self.chart_frames < 1:
            raise ValueError(f"chart_frames must be >= 1 with edge_charts, found {self.chart_frames}")
        check_stations(self.station_events, self.stations)

    @property
    def fault_classes(self) -> tuple[str, ...]:
        """The fault classes drawn: the sensor's, plus the lens faults with edge charts."""
        return FAULT_CLASSES + LENS_FAULT_CLASSES if self.edge_charts else FAULT_CLASSES

    @property
    def resolved_bit_depth(self) -> int:
        if self.bit_depth is not None:
            return self.bit_depth
        return {"raw8": 8, "raw10_mipi": 10, "raw14_mipi": 14}.get(self.pixel_format, 12)


@dataclass(frozen=True)
class ModulePlan:
    """One module of the fleet: identity, capture conditions, true parameters, fault, label."""

    index: int
    module_id: str
    session_id: str
    lot_id: str
    wafer_id: str
    die_x: int
    die_y: int
    die_radius_frac: float
    station_id: str
    captured_at: datetime
    fault_class: str | None
    latent_weakness: float
    params: ModuleParams
    tested_at: datetime
    passed: bool
    fail_bin: str | None


def _die_grid(radius: int = 7) -> list[tuple[int, int]]:
    return [(x, y) for x in range(-radius, radius + 1) for y in range(-radius, radius + 1)
            if x * x + y * y <= radius * radius]


def plan_fleet(config: FleetConfig) -> list[ModulePlan]:
    """Draw every module's identity, true parameters, fault class and final-test label.

    Deterministic for ``config`` (``workers`` aside). Faults: exactly
    ``round(fault_fraction * modules)`` modules, the classes taking turns. Yield: exactly
    ``round(target_yield * modules)`` passes unless the parametric failures alone exceed it.
    """
    rng = np.random.default_rng([config.seed, 0xF1EE7])
    structure = _FleetStructure.draw(config, rng)
    plans: list[ModulePlan] = []
    measured: list[dict[str, float]] = []
    for i in range(config.modules):
        plan = _plan_module(config, structure, i, rng)
        plans.append(plan)
        measured.append(_final_test_measurement(plan.params, rng, structure.scale))
    if config.edge_charts:  # from a stream of its own: the sensor draws above stay as they were
        from sensorfleet.synth.lens_fleet import add_lenses

        plans, measured = add_lenses(config, plans, measured, structure.lot_of)
    # after every draw: events change what the station shows, never the modules or their labels
    return apply_station_events(_label(plans, measured, config, rng), config.station_events)


@dataclass(frozen=True)
class _FleetStructure:
    """What the modules of a fleet share: lots and their effects, wafers and die positions,
    stations and their offsets, and which modules carry which fault."""

    scale: float  # DN scale of the bit depth against 12 bits
    n_lots: int
    lot_of: np.ndarray  # (n,) lot index per module
    lot_fx: dict[str, np.ndarray]  # effect name -> (n_lots,) multiplier
    wafer_of: np.ndarray  # (n,) wafer number (1-based) per module
    die_of: np.ndarray  # (n, 2) die (x, y) per module
    wafer_dark: np.ndarray  # (n_lots, 8) dark-current multiplier per wafer slot
    station_black: np.ndarray  # (stations,) black-level offset, DN at 12 bits
    station_temperature: np.ndarray  # (stations,) ambient offset, degC
    station_gain: np.ndarray  # (stations,) gain multiplier
    faults: dict[int, str]  # module index -> fault class

    @staticmethod
    def draw(config: FleetConfig, rng: np.random.Generator) -> _FleetStructure:
        n = config.modules
        n_lots = max(1, math.ceil(n / config.modules_per_lot))
        lot_of = np.minimum((np.arange(n) * n_lots) // n, n_lots - 1)
        lot_fx = {
            "gain": rng.normal(1, 0.02, n_lots), "qe": rng.normal(1, 0.03, n_lots),
            "read": rng.normal(1, 0.06, n_lots), "dark": np.exp(rng.normal(0, 0.25, n_lots)),
            "fw": rng.normal(1, 0.03, n_lots), "prnu": rng.normal(1, 0.1, n_lots),
            "defects": np.exp(rng.normal(0, 0.3, n_lots)), "weak": rng.normal(0, 0.3, n_lots),
        }
        # dies: per lot, wafers of up to 60 modules, dies drawn without replacement per wafer
        grid = _die_grid()
        wafer_of = np.zeros(n, dtype=np.int64)
        die_of = np.zeros((n, 2), dtype=np.int64)
        for lot in range(n_lots):
            members = np.flatnonzero(lot_of == lot)
            n_wafers = math.ceil(len(members) / 60) + int(rng.integers(0, 2))
            wafers = rng.integers(0, n_wafers, len(members))
            for wafer in range(n_wafers):
                sel = members[wafers == wafer]
                dies = rng.choice(len(grid), size=len(sel), replace=False)
                wafer_of[sel] = wafer + 1
                die_of[sel] = np.array([grid[d] for d in dies]).reshape(-1, 2)
        wafer_dark = np.exp(rng.normal(0, 0.1, (n_lots, 8)))
        station_black = rng.normal(0, 1.5, config.stations)
        station_temperature = rng.normal(0, 3.0, config.stations)
        station_gain = rng.normal(1, 0.003, config.stations)
        n_faults = round(config.fault_fraction * n)
        fault_idx = rng.choice(n, size=n_faults, replace=False)
        classes = config.fault_classes
        order = rng.permutation(len(classes))
        faults = {int(i): classes[order[j % len(classes)]] for j, i in enumerate(fault_idx)}
        return _FleetStructure(2.0 ** (config.resolved_bit_depth - 12), n_lots, lot_of, lot_fx, wafer_of, die_of,
                               wafer_dark, station_black, station_temperature, station_gain, faults)


def _plan_module(config: FleetConfig, fleet: _FleetStructure, i: int, rng: np.random.Generator) -> ModulePlan:
    """Module ``i``: its identity, capture time and station, true parameters (lot, wafer, die
    radius, station and latent weakness effects), and fault; the label is drawn later."""
    bits = config.resolved_bit_depth
    scale = fleet.scale
    area_mpx = config.width * config.height / 1e6
    lot, lot_fx = int(fleet.lot_of[i]), fleet.lot_fx
    dx, dy = int(fleet.die_of[i, 0]), int(fleet.die_of[i, 1])
    r2 = (dx * dx + dy * dy) / 49.0
    station = int(rng.integers(config.stations))
    weak = float(rng.normal(0, 1) + 0.8 * r2 + lot_fx["weak"][lot])
    fault = fleet.faults.get(i)
    t_frac = (lot + rng.uniform()) / fleet.n_lots
    captured = (config.start + timedelta(days=config.span_days * t_frac)).replace(microsecond=0)
    temperature = float(np.clip(rng.uniform(27, 38) + fleet.station_temperature[station], 25.0, 45.0))

    gain = (NOMINAL_GAIN_12BIT_DN_PER_E * scale * lot_fx["gain"][lot] * fleet.station_gain[station]
            * (1 - 0.01 * r2) * rng.normal(1, 0.01))
    qe_f = lot_fx["qe"][lot] * (1 - 0.05 * r2)
    qes = {c: NOMINAL_QE[c] * qe_f * rng.normal(1, 0.015) for c in "RGB"}
    if config.cfa == "mono":
        qes = dict.fromkeys("RGB", NOMINAL_QE_MONO * qe_f * rng.normal(1, 0.015))
    read = NOMINAL_READ_NOISE_E * lot_fx["read"][lot] * (1 + 0.05 * r2) * rng.normal(1, 0.04)
    dark25 = (NOMINAL_DARK_CURRENT_25C_E_PER_S * lot_fx["dark"][lot] * fleet.wafer_dark[lot, fleet.wafer_of[i] % 8]
              * (1 + 0.8 * r2) * math.exp(0.08 * weak + rng.normal(0, 0.15)))
    full_well = NOMINAL_FULL_WELL_E * lot_fx["fw"][lot] * rng.normal(1, 0.015)
    density = lot_fx["defects"][lot] * (1 + 1.5 * r2)
    counts = {k: int(rng.poisson(v * area_mpx * density)) for k, v in DEFECTS_PER_MPX.items()}
    counts["noisy"] = int(rng.poisson(DEFECTS_PER_MPX["noisy"] * area_mpx * density * math.exp(0.3 * weak)))
    defects = DefectCounts(**counts, bad_columns=int(rng.poisson(BAD_COLUMNS_PER_MODULE)),
                           bad_rows=int(rng.poisson(BAD_ROWS_PER_MODULE)),
                           blemishes=int(rng.poisson(BLEMISHES_PER_MODULE)))
    corner = float(np.clip(rng.normal(0.88, 0.015), 0.8, 0.95))
    cdx, cdy = (float(v) for v in rng.normal(0, 0.03, 2))
    params = ModuleParams(
        width=config.width, height=config.height, bit_depth=bits, cfa_pattern=config.cfa,
        pixel_pitch_um=config.pixel_pitch_um, system_gain_dn_per_e=float(gain),
        quantum_efficiency_r=float(qes["R"]), quantum_efficiency_g=float(qes["G"]),
        quantum_efficiency_b=float(qes["B"]), read_noise_e=float(read),
        dark_current_25c_e_per_s=float(dark25), temperature_c=round(temperature, 2),
        black_level_dn=float(max((NOMINAL_BLACK_LEVEL_12BIT_DN + fleet.station_black[station]) * scale, 4.0)),
        full_well_e=float(full_well), dsnu_offset_e=float(1.0 * rng.normal(1, 0.1)),
        row_fpn_e=float(0.3 * rng.normal(1, 0.1)), column_fpn_e=float(0.4 * rng.normal(1, 0.1)),
        prnu_pct=float(0.8 * lot_fx["prnu"][lot] * (1 + 0.4 * r2) * rng.normal(1, 0.05)),
        shading_corner_rel=corner, shading_center_dx_frac=cdx, shading_center_dy_frac=cdy,
        defects=defects,
    )
    if fault is not None:
        params = _apply_fault(params, fault, rng, area_mpx)
    module_id = f"CM-{config.seed}-{i:06d}"
    return ModulePlan(
        index=i, module_id=module_id, session_id=f"{module_id}-{captured:%Y%m%dT%H%M%S}",
        lot_id=f"LOT-{config.seed}-{lot + 1:02d}", wafer_id=f"W{int(fleet.wafer_of[i]):02d}", die_x=dx, die_y=dy,
        die_radius_frac=round(math.sqrt(r2), 4), station_id=station_id(station), captured_at=captured,
        fault_class=fault, latent_weakness=weak, params=params,
        tested_at=captured + timedelta(seconds=int(rng.uniform(1, 10) * 86400)), passed=True, fail_bin=None,
    )


def _apply_fault(params: ModuleParams, fault: str, rng: np.random.Generator, area_mpx: float) -> ModuleParams:
    d = params.defects
    if fault == "high_dark_current":
        return replace(params, dark_current_25c_e_per_s=params.dark_current_25c_e_per_s * rng.uniform(6, 15))
    if fault == "column_defect":
        return replace(params, defects=replace(d, bad_columns=d.bad_columns + int(rng.integers(2, 6))))
    if fault == "particle":
        return replace(params, defects=replace(d, blemishes=d.blemishes + int(rng.integers(2, 6)),
                                               blemish_depth_min=0.25, blemish_depth_max=0.45,
                                               blemish_radius_min_frac=0.04, blemish_radius_max_frac=0.08))
    if fault == "shading_tilt":
        sx, sy = rng.choice([-1.0, 1.0], 2)
        return replace(params, shading_corner_rel=float(rng.uniform(0.65, 0.75)),
                       shading_center_dx_frac=float(sx * rng.uniform(0.3, 0.5)),
                       shading_center_dy_frac=float(sy * rng.uniform(0.3, 0.5)))
    if fault == "low_qe":
        f = rng.uniform(0.6, 0.72)
        return replace(params, quantum_efficiency_r=params.quantum_efficiency_r * f,
                       quantum_efficiency_g=params.quantum_efficiency_g * f,
                       quantum_efficiency_b=params.quantum_efficiency_b * f)
    if fault == "noisy":
        return replace(params, read_noise_e=params.read_noise_e * rng.uniform(2.2, 3.0),
                       defects=replace(d, noisy=d.noisy * 20 + max(20, int(300 * area_mpx))))
    if fault in LENS_FAULT_CLASSES:
        return params  # the lens is drawn later (sensorfleet.synth.lens_fleet)
    raise ValueError(f"unknown fault class {fault!r}; valid: {', '.join(FAULT_CLASSES + LENS_FAULT_CLASSES)}")


def corner_relative_illumination(params: ModuleParams) -> float:
    """Darkest sensor corner relative to the brightest point of the cos^4 shading (1 = flat)."""
    from sensorfleet.synth.params import shading_focal_px

    focal = shading_focal_px(params)
    if math.isinf(focal):
        return 1.0
    w, h = params.width, params.height
    cx = (w - 1) / 2 + params.shading_center_dx_frac * w / 2
    cy = (h - 1) / 2 + params.shading_center_dy_frac * h / 2
    r2 = max((x - cx) ** 2 + (y - cy) ** 2 for x in (0, w - 1) for y in (0, h - 1)) / focal**2
    peak_r2 = (max(0.0, min(cx, w - 1)) - cx) ** 2 + (max(0.0, min(cy, h - 1)) - cy) ** 2
    return (1 + peak_r2 / focal**2) ** 2 / (1 + r2) ** 2


def _final_test_measurement(params: ModuleParams, rng: np.random.Generator, scale: float) -> dict[str, float]:
    """What the final test measures: true values at its conditions times (1 + test noise)."""
    d = params.defects
    noise = lambda: float(rng.normal(1, FINAL_TEST_NOISE_REL))  # noqa: E731
    area_mpx = params.width * params.height / 1e6
    defect_pixels = d.hot + d.dead + d.stuck + 5.5 * d.clusters
    dark40 = params.dark_current_25c_e_per_s * 2 ** ((FINAL_TEST_TEMPERATURE_C - 25) / params.dark_current_doubling_c)
    return {
        "dark_current_40c_e_per_s": dark40 * noise(),
        "read_noise_e": params.read_noise_e * noise(),
        "quantum_efficiency_g": params.quantum_efficiency_g * noise(),
        "defect_pixels": defect_pixels * noise(),
        "defect_pixel_limit": max(SPEC_DEFECT_PIXELS_MIN, SPEC_DEFECT_PIXELS_PER_MPX * area_mpx),
        "bad_lines": float(d.bad_columns + d.bad_rows),
        "blemish_depth_max": (d.blemish_depth_max if d.blemishes else 0.0) * noise(),
        "shading_corner_rel": corner_relative_illumination(params) * noise(),
    }


def _lens_fails(m: dict[str, float]) -> bool:
    """The optics limits of fleets with edge charts (absent keys: no lens measured)."""
    return (m.get("mtf50_center", 1.0) < SPEC_MTF50_CENTER_MIN or m.get("mtf50_corner_min", 1.0) < SPEC_MTF50_CORNER_MIN
            or m.get("colour_shading_pct", 0.0) > SPEC_COLOUR_SHADING_MAX_PCT)


def _label(plans: list[ModulePlan], measured: list[dict[str, float]], config: FleetConfig,
           rng: np.random.Generator) -> list[ModulePlan]:
    bins: list[str | None] = []
    for m in measured:
        if m["bad_lines"] > 0 or m["defect_pixels"] > m["defect_pixel_limit"]:
            bins.append("pixel_defects")
        elif (m["blemish_depth_max"] > SPEC_BLEMISH_DEPTH_MAX or m["shading_corner_rel"] < SPEC_SHADING_CORNER_MIN_REL
              or _lens_fails(m)):
            bins.append("optics")
        elif m["quantum_efficiency_g"] < SPEC_QE_G_MIN:
            bins.append("sensitivity")
        elif m["read_noise_e"] > SPEC_READ_NOISE_E:
            bins.append("read_noise")
        elif m["dark_current_40c_e_per_s"] > SPEC_DARK_CURRENT_40C_E_PER_S:
            bins.append("dark_current")
        else:
            bins.append(None)
    # hidden cause: latent weakness (partly visible as dark current, noisy pixels, die radius)
    # plus test noise; the weakest of the parametric passers fail until the yield is the target
    want_fail = len(plans) - round(config.target_yield * len(plans))
    short = want_fail - sum(b is not None for b in bins)
    if short > 0:
        score = np.array([p.latent_weakness for p in plans]) + rng.normal(0, 0.7, len(plans))
        candidates = [i for i in np.argsort(-score) if bins[i] is None]
        for i in candidates[:short]:
            bins[int(i)] = "functional"
    return [replace(p, passed=b is None, fail_bin=b) for p, b in zip(plans, bins, strict=True)]
