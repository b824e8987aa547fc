"""Per-pixel, per-frame EMVA 1288 linear camera model with fixed patterns and defects.

A module is rendered in two steps:

1. :func:`build_maps` draws the module's fixed per-pixel maps once from its seed (float32
   ``(H, W)``): the response (electrons per photon = QE of the CFA colour x PRNU x lens shading x
   blemish transmission), the dark-current rate (e-/s), the dark offset (DN: black level + DSNU +
   row and column fixed-pattern noise) and the random-telegraph amplitude (e-), and places the
   defects, returning their ground truth.
2. :func:`render_frame` turns one operating point into one ``(H, W) uint16`` frame (DN) with a
   compiled loop: photo + dark electrons (Poisson; Gaussian with the same mean and variance when
   the mean exceeds :data:`POISSON_EXACT_MAX_E` electrons), full-well clip, slight non-linearity
   near saturation, Gaussian read noise, random-telegraph offsets, system gain, offset, rounding
   and the ADC clip to ``[0, 2**bit_depth - 1]``.

Random numbers come from a counter-based generator (splitmix64 finalizer over (module key,
frame, pixel, stream)) so that every frame is reproducible on its own, independent of the order
frames are rendered in, and cheap: about 2 ns per draw against 14 ns for numpy's normal here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numba
import numpy as np

from sensorfleet.synth.params import ModuleParams, shading_focal_px
from sensorfleet.synth.plan import CapturePlan, PlannedFrame

#: the sum of shot noise (Poisson, mean lam e-) and read noise (Gaussian, sigma_r e-) is drawn as
#: one Gaussian of the same mean and variance when its skewness lam / (lam + sigma_r^2)^1.5 is
#: below this (true for every lam when sigma_r >= 2.4 e-), else exactly (Poisson by inversion
#: below POISSON_EXACT_MAX_E, then a Gaussian shot term whose own skewness is < 0.16)
GAUSSIAN_SKEW_MAX = 0.16
POISSON_EXACT_MAX_E = 40.0

# Defect magnitudes (docs/synthetic-fleet.md): chosen far from any healthy pixel.
HOT_DARK_MULTIPLE = (300.0, 3000.0)  # x the module's mean dark current
WARM_DARK_MULTIPLE = (20.0, 50.0)
DEAD_RESPONSE = (0.0, 0.05)  # fraction of the normal response
RTS_AMPLITUDE_X_READ_NOISE = (10.0, 25.0)
BAD_LINE_BRIGHT_OFFSET_E = (40.0, 120.0)
BAD_LINE_DIM_RESPONSE = (0.3, 0.6)
CLUSTER_SIZE = (2, 9)

DEFECT_CLASSES = ("hot", "warm", "dead", "stuck", "noisy", "bad_column", "bad_row", "blemish")

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_INV_2_53 = 1.0 / 9007199254740992.0


@dataclass(frozen=True)
class DefectTruth:
    """One injected defective pixel (or a blemish: centre and radius).

    ``magnitude`` in ``unit``: hot/warm ``x_mean_dark_current``; dead and dim lines
    ``response_frac``; stuck ``dn``; noisy ``rts_amplitude_e``; bright lines ``offset_e``;
    blemish ``attenuation_frac`` (light removed at the centre).
    """

    x: int
    y: int
    defect_class: str
    magnitude: float
    unit: str
    cluster_id: int | None = None
    radius_px: float | None = None


@dataclass
class ModuleMaps:
    """Fixed per-pixel maps of one module, float32 ``(H, W)``, plus the defect truth."""

    response_e_per_photon: np.ndarray
    dark_current_e_per_s: np.ndarray
    offset_dn: np.ndarray
    rts_index: np.ndarray  # int64 flat pixel indices of random-telegraph (noisy) pixels
    rts_amplitude_e: np.ndarray  # float64, their two-level amplitude (e-)
    stuck_index: np.ndarray  # int64 flat pixel indices
    stuck_value_dn: np.ndarray  # uint16
    defects: list[DefectTruth]
    healthy: np.ndarray  # bool (H, W): no injected pixel defect (blemishes do not count)
    summary: dict[str, float]


# --------------------------------------------------------------------------------------------
# compiled per-frame kernel


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True, nogil=True, inline="always")
def _uniform(base: np.uint64, counter: np.uint64) -> float:
    """Uniform in (0, 1) from counter ``counter`` of stream ``base``."""
    z = _mix(base + counter * _GOLDEN)
    return (float(z >> np.uint64(11)) + 0.5) * _INV_2_53


@numba.njit(cache=True, nogil=True)
def _norm_ppf(p: float) -> float:
    """Inverse standard normal CDF (Acklam's rational approximation, relative error < 1.2e-9)."""
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        return (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q
                  - 2.549732539343734e00) * q + 4.374664141464968e00) * q + 2.938163982698783e00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
             + 3.754408661907416e00) * q + 1.0)
    if p > 1.0 - 0.02425:
        q = math.sqrt(-2.0 * math.log(1.0 - p))
        return -(((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00) * q
                   - 2.549732539343734e00) * q + 4.374664141464968e00) * q + 2.938163982698783e00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
             + 3.754408661907416e00) * q + 1.0)
    q = p - 0.5
    r = q * q
    return (((((-3.969683028665376e01 * r + 2.209460984245205e02) * r - 2.759285104469687e02) * r
              + 1.383577518672690e02) * r - 3.066479806614716e01) * r + 2.506628277459239e00) * q / (
        ((((-5.447609879822406e01 * r + 1.615858368580409e02) * r - 1.556989798598866e02) * r
          + 6.680131188771972e01) * r - 1.328068155288572e01) * r + 1.0)


_TABLE_BITS = 12
_TABLE_SIZE = 1 << _TABLE_BITS


def _ppf_table() -> np.ndarray:
    """Inverse normal CDF at j / 4096 for j = 1..4095 (index 0 and 4096 unused)."""
    table = np.zeros(_TABLE_SIZE + 1)
    for j in range(1, _TABLE_SIZE):
        table[j] = _norm_ppf(j / _TABLE_SIZE)
    return table


@numba.njit(cache=True, nogil=True, inline="always")
def _normal(base: np.uint64, counter: np.uint64, table: np.ndarray) -> float:
    """Standard normal draw by table inversion of the CDF with linear interpolation inside each
    of 4096 equal-probability bins (variance error 7e-5) and the exact inverse in the two tail
    bins (|z| > 3.5)."""
    z = _mix(base + counter * _GOLDEN)
    u = np.int64(z >> np.uint64(11))  # 53 random bits
    i = u >> (53 - _TABLE_BITS)
    if i == 0 or i == _TABLE_SIZE - 1:
        return _norm_ppf((float(u) + 0.5) * _INV_2_53)
    frac = float(u & ((np.int64(1) << (53 - _TABLE_BITS)) - 1)) * (1.0 / float(np.int64(1) << (53 - _TABLE_BITS)))
    lo = table[i]
    return lo + (table[i + 1] - lo) * frac


_INV_K = np.array([0.0] + [1.0 / k for k in range(1, 257)])


@numba.njit(cache=True, nogil=True, inline="always")
def _poisson_small(lam: float, u: float, inv_k: np.ndarray) -> float:
    """Poisson(lam) by sequential inversion of the CDF with one uniform ``u`` (lam small)."""
    p = math.exp(-lam)
    cdf = p
    k = 0
    while u > cdf and k < 255:
        k += 1
        p *= lam * inv_k[k]
        cdf += p
    return float(k)


@numba.njit(cache=True, nogil=True, inline="always")
def _electrons(p: int, lam: float, base: np.uint64, read_noise_e: float, rn2: float, full_well_e: float,
               knee_e: float, nonlin_coef: float, table: np.ndarray, inv_k: np.ndarray) -> float:
    """Signal of pixel ``p`` in electrons after shot noise, full-well clip, non-linearity and read
    noise (counters 3p and 3p+1 of the frame's stream)."""
    c = np.uint64(p) * np.uint64(3)
    s2 = lam + rn2
    if lam * lam < GAUSSIAN_SKEW_MAX**2 * s2 * s2 * s2 and lam + 6.0 * math.sqrt(lam) < knee_e:
        # shot + read noise as one Gaussian of the same mean and variance (see module docstring)
        return lam + math.sqrt(s2) * _normal(base, c, table)
    if lam < POISSON_EXACT_MAX_E:
        e = _poisson_small(lam, _uniform(base, c), inv_k)
    elif lam - 8.0 * math.sqrt(lam) > full_well_e:
        e = full_well_e  # saturated whatever the shot noise (P(below) < 1e-15): skip the draw
    else:
        e = lam + math.sqrt(lam) * _normal(base, c, table)
    if e > full_well_e:
        e = full_well_e
    if e > knee_e:
        e -= nonlin_coef * (e - knee_e) ** 2
    return e + read_noise_e * _normal(base, c + np.uint64(1), table)


@numba.njit(cache=True, nogil=True, inline="always")
def _quantize(dn: float, max_dn: float) -> np.uint16:
    """Round half up and clip to the ADC range [0, max_dn]."""
    dn = min(max(dn + 0.5, 0.0), max_dn + 0.5)
    return np.uint16(np.int32(dn))


@numba.njit(cache=True, nogil=True)
def _render(out: np.ndarray, response: np.ndarray, dark_rate: np.ndarray, offset_dn: np.ndarray,
            rts_index: np.ndarray, rts_amp: np.ndarray, stuck_index: np.ndarray, stuck_value: np.ndarray,
            photons: float, exposure_s: float, gain: float, read_noise_e: float, full_well_e: float,
            knee_e: float, nonlin_coef: float, max_dn: float, base: np.uint64, table: np.ndarray,
            inv_k: np.ndarray) -> None:
    n = out.size
    rn2 = read_noise_e * read_noise_e
    frac_bits = 53 - _TABLE_BITS
    frac_mask = (np.int64(1) << frac_bits) - 1
    frac_scale = 1.0 / float(np.int64(1) << frac_bits)
    top = max_dn + 0.5
    skew2 = GAUSSIAN_SKEW_MAX**2
    # lam + 6 sqrt(lam) < knee  <=>  lam < (sqrt(9 + knee) - 3)^2: no sqrt per pixel
    lam_linear_max = (math.sqrt(9.0 + knee_e) - 3.0) ** 2
    for p in range(n):
        lam = photons * response[p] + dark_rate[p] * exposure_s
        s2 = lam + rn2
        if lam < lam_linear_max and lam * lam < skew2 * s2 * s2 * s2:
            # hot path (linear range): shot and read noise are independent Gaussians, drawn as
            # one sum; the table inversion of _normal written out
            z = _mix(base + np.uint64(p) * np.uint64(3) * _GOLDEN)
            u = np.int64(z >> np.uint64(11))
            j = u >> frac_bits
            if j == 0 or j == _TABLE_SIZE - 1:
                g = _norm_ppf((float(u) + 0.5) * _INV_2_53)
            else:
                lo = table[j]
                g = lo + (table[j + 1] - lo) * (float(u & frac_mask) * frac_scale)
            v = lam + math.sqrt(s2) * g
        else:
            v = _electrons(p, lam, base, read_noise_e, rn2, full_well_e, knee_e, nonlin_coef, table, inv_k)
        dn = min(max(gain * v + offset_dn[p] + 0.5, 0.0), top)
        out[p] = np.uint16(np.int32(dn))
    # random-telegraph pixels: the same draws (counter-based) plus a two-level offset (counter 3p+2)
    for i in range(rts_index.size):
        q = rts_index[i]
        lam = photons * response[q] + dark_rate[q] * exposure_s
        v = _electrons(q, lam, base, read_noise_e, rn2, full_well_e, knee_e, nonlin_coef, table, inv_k)
        if _uniform(base, np.uint64(q) * np.uint64(3) + np.uint64(2)) < 0.5:
            v += rts_amp[i]
        out[q] = _quantize(gain * v + offset_dn[q], max_dn)
    for i in range(stuck_index.size):
        out[stuck_index[i]] = stuck_value[i]


@numba.njit(cache=True, nogil=True)
def _frame_base(key: np.uint64, frame_index: int) -> np.uint64:
    return _mix(key ^ _mix(np.uint64(frame_index + 1) * _GOLDEN))


_PPF_TABLE = _ppf_table()


def render_frame(params: ModuleParams, maps: ModuleMaps, frame: PlannedFrame, frame_index: int,
                 key: int, out: np.ndarray | None = None) -> np.ndarray:
    """Render one frame of a module: ``(H, W) uint16`` in DN.

    ``key`` (0 <= key < 2**64) and ``frame_index`` pick the random stream, so a frame is the same
    whatever else is rendered. ``out`` may be a reused ``(H, W) uint16`` buffer.
    """
    h, w = params.height, params.width
    if out is None:
        out = np.empty((h, w), dtype=np.uint16)
    knee = params.nonlinearity_knee_frac * params.full_well_e
    coef = params.nonlinearity_loss_frac / ((1.0 - params.nonlinearity_knee_frac) * params.full_well_e) \
        if params.nonlinearity_knee_frac < 1.0 else 0.0
    _render(out.reshape(-1), maps.response_e_per_photon.reshape(-1), maps.dark_current_e_per_s.reshape(-1),
            maps.offset_dn.reshape(-1), maps.rts_index, maps.rts_amplitude_e, maps.stuck_index, maps.stuck_value_dn,
            float(frame.photons_per_pixel) * params.light_source_factor, float(frame.exposure_s), params.system_gain_dn_per_e,
            params.read_noise_e, params.full_well_e, knee, coef, float(params.max_dn),
            np.uint64(_frame_base(np.uint64(key), frame_index)), _PPF_TABLE, _INV_K)
    return out


# --------------------------------------------------------------------------------------------
# fixed per-pixel maps


def cfa_colour_index(cfa_pattern: str, height: int, width: int) -> np.ndarray:
    """Colour of every pixel as uint8 ``(H, W)``: 0 = R, 1 = G, 2 = B (all 1 for mono)."""
    if cfa_pattern == "mono":
        return np.ones((height, width), dtype=np.uint8)
    lut = {"R": 0, "G": 1, "B": 2}
    tile = np.array([[lut[cfa_pattern[0]], lut[cfa_pattern[1]]], [lut[cfa_pattern[2]], lut[cfa_pattern[3]]]],
                    dtype=np.uint8)
    return np.tile(tile, (-(-height // 2), -(-width // 2)))[:height, :width]


def lens_shading(params: ModuleParams) -> np.ndarray:
    """cos^4 relative illumination ``(H, W)`` float32 around the (decentred) optical centre,
    normalized to a mean of 1 over the sensor (so ``photons_per_pixel`` stays the sensor mean)."""
    h, w = params.height, params.width
    focal = shading_focal_px(params)
    if math.isinf(focal):
        return np.ones((h, w), dtype=np.float32)
    cx = (w - 1) / 2 + params.shading_center_dx_frac * w / 2
    cy = (h - 1) / 2 + params.shading_center_dy_frac * h / 2
    yy, xx = np.ogrid[0:h, 0:w]
    r2 = (((xx - cx) ** 2 + (yy - cy) ** 2) / focal**2).astype(np.float32)
    rel = 1.0 / (1.0 + r2) ** 2  # cos^4(atan(r/f)) = 1 / (1 + (r/f)^2)^2
    return rel / np.float32(rel.mean(dtype=np.float64))


class _Placer:
    """Places defects so that no two are within ``gap`` pixels (Chebyshev) of each other."""

    def __init__(self, height: int, width: int, rng: np.random.Generator, gap: int = 2) -> None:
        self.reserved = np.zeros((height, width), dtype=bool)
        self.h, self.w, self.rng, self.gap = height, width, rng, gap

    def free(self, y: int, x: int) -> bool:
        g = self.gap
        return not self.reserved[max(0, y - g):y + g + 1, max(0, x - g):x + g + 1].any()

    def reserve(self, y: int, x: int) -> None:
        g = self.gap
        self.reserved[max(0, y - g):y + g + 1, max(0, x - g):x + g + 1] = True

    def pick(self, tries: int = 200) -> tuple[int, int] | None:
        for _ in range(tries):
            y, x = int(self.rng.integers(self.h)), int(self.rng.integers(self.w))
            if self.free(y, x):
                return y, x
        return None


def _blemishes(params: ModuleParams, rng: np.random.Generator, truth: list[DefectTruth]) -> np.ndarray:
    h, w = params.height, params.width
    trans = np.ones((h, w))
    spec = params.defects
    size = min(h, w)
    placed: list[tuple[float, float, float]] = []
    for _ in range(spec.blemishes):
        for _try in range(100):
            radius = rng.uniform(spec.blemish_radius_min_frac, spec.blemish_radius_max_frac) * size
            radius = max(radius, 2.0)
            if 2 * radius >= size:
                break
            cx, cy = rng.uniform(radius, w - 1 - radius), rng.uniform(radius, h - 1 - radius)
            if all(math.hypot(cx - px, cy - py) > radius + pr + 2 for px, py, pr in placed):
                break
        else:
            continue
        if 2 * radius >= size:
            break
        depth = rng.uniform(spec.blemish_depth_min, spec.blemish_depth_max)
        placed.append((cx, cy, radius))
        y0, y1 = max(0, int(cy - radius)), min(h, int(cy + radius) + 2)
        x0, x1 = max(0, int(cx - radius)), min(w, int(cx + radius) + 2)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        r = np.hypot(xx - cx, yy - cy)
        profile = np.where(r < radius, 0.5 * (1 + np.cos(np.pi * np.minimum(r / radius, 1.0))), 0.0)
        trans[y0:y1, x0:x1] *= 1.0 - depth * profile
        truth.append(DefectTruth(int(round(cx)), int(round(cy)), "blemish", float(depth), "attenuation_frac",
                                 radius_px=float(radius)))
    return trans


def colour_sites(cfa_pattern: str) -> dict[str, list[tuple[int, int]]]:
    """The (row, column) offsets inside the 2x2 CFA tile of each colour; mono: one 'G' colour
    made of all four sites."""
    if cfa_pattern == "mono":
        return {"G": [(0, 0), (0, 1), (1, 0), (1, 1)]}
    sites: dict[str, list[tuple[int, int]]] = {}
    for i, letter in enumerate(cfa_pattern):
        sites.setdefault(letter, []).append((i // 2, i % 2))
    return sites


def _per_colour_rms(values: np.ndarray, healthy: np.ndarray, sites: dict[str, list[tuple[int, int]]],
                    relative: bool) -> float:
    """RMS over CFA colours of the spatial std of ``values`` over the healthy pixels of that colour
    (divided by the colour's mean when ``relative``)."""
    variances = []
    for colour_sites_ in sites.values():
        vals = np.concatenate([values[oy::2, ox::2][healthy[oy::2, ox::2]] for oy, ox in colour_sites_])
        v = float(vals.var(dtype=np.float64))
        variances.append(v / float(vals.mean(dtype=np.float64)) ** 2 if relative else v)
    return float(np.sqrt(np.mean(variances)))


def build_maps(params: ModuleParams, rng: np.random.Generator, ptc_exposure_s: float = 0.01) -> ModuleMaps:
    """Draw the module's fixed per-pixel maps and place its defects.

    Spreads are normalized exactly (PRNU to mean 1 per CFA colour, DSNU and row/column FPN to
    mean 0, dark-current spread to mean 1) so that the module's scalar parameters are the exact
    means of its healthy pixels. ``ptc_exposure_s`` is used for the realized DSNU in ``summary``.
    The random draws happen in a fixed order (response, dark, offsets, lines, points, clusters),
    so a seed gives the same module.
    """
    truth: list[DefectTruth] = []
    prnu, shading, response = _response_maps(params, rng, truth)
    dark, offset_e, rows, cols = _dark_and_offset_maps(params, rng)
    placer = _Placer(params.height, params.width, rng)
    _place_bad_lines(params, rng, placer, offset_e, response, truth)
    points = _PointDefects(params, rng, dark, response, truth)
    points.place_singles(placer)
    points.place_clusters(placer)

    healthy = np.ones((params.height, params.width), dtype=bool)
    for d in truth:
        if d.defect_class != "blemish":
            healthy[d.y, d.x] = False
    summary = _realised_summary(params, prnu, shading, response, dark, offset_e, rows, cols, healthy, ptc_exposure_s)
    return ModuleMaps(
        response_e_per_photon=response,
        dark_current_e_per_s=dark,
        offset_dn=np.float32(params.black_level_dn) + np.float32(params.system_gain_dn_per_e) * offset_e,
        rts_index=np.fromiter(points.rts.keys(), dtype=np.int64, count=len(points.rts)),
        rts_amplitude_e=np.fromiter(points.rts.values(), dtype=np.float64, count=len(points.rts)),
        stuck_index=np.asarray(points.stuck_index, dtype=np.int64),
        stuck_value_dn=np.asarray(points.stuck_value, dtype=np.uint16),
        defects=truth,
        healthy=healthy,
        summary=summary,
    )


def _response_maps(params: ModuleParams, rng: np.random.Generator,
                   truth: list[DefectTruth]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PRNU (mean 1 per colour), lens shading, and the response in e-/photon: PRNU x shading x
    blemishes x QE of the pixel's colour, each (H, W) float32; blemishes go into ``truth``."""
    f32 = np.float32
    h, w = params.height, params.width
    sites = colour_sites(params.cfa_pattern)
    prnu = f32(1.0) + f32(params.prnu_pct / 100.0) * rng.standard_normal((h, w), dtype=f32)
    for colour_sites_ in sites.values():
        planes = [prnu[oy::2, ox::2] for oy, ox in colour_sites_]
        mean = sum(float(pl.sum(dtype=np.float64)) for pl in planes) / sum(pl.size for pl in planes)
        for pl in planes:
            pl /= f32(mean)
    shading = lens_shading(params)
    blemish = _blemishes(params, rng, truth)
    response = prnu * (shading * blemish).astype(f32)
    for colour_name, colour_sites_ in sites.items():
        for oy, ox in colour_sites_:
            response[oy::2, ox::2] *= f32(params.quantum_efficiency(colour_name))
    if params.lens is not None:  # colour shading of the lens (fleets with edge charts only)
        from sensorfleet.synth.lens import apply_colour_shading

        apply_colour_shading(response, params, params.lens)
    return prnu, shading, response


def _zero_mean(a: np.ndarray) -> np.ndarray:
    return a - a.mean(dtype=np.float64).astype(a.dtype)


def _dark_and_offset_maps(params: ModuleParams,
                          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Dark current (e-/s, (H, W) float32, mean exactly the module's), the offset map in e-
    (DSNU + row + column FPN, each mean 0), and the row (H,) and column (W,) FPN draws."""
    f32 = np.float32
    h, w = params.height, params.width
    dark_rel = np.exp(f32(params.dark_current_spread_sigma) * rng.standard_normal((h, w), dtype=f32))
    dark = dark_rel * f32(params.dark_current_e_per_s / float(dark_rel.mean(dtype=np.float64)))
    dsnu = _zero_mean(rng.standard_normal((h, w), dtype=f32)) * f32(params.dsnu_offset_e)
    rows = _zero_mean(rng.standard_normal(h)) * params.row_fpn_e
    cols = _zero_mean(rng.standard_normal(w)) * params.column_fpn_e
    offset_e = dsnu + (rows[:, None] + cols[None, :]).astype(f32)
    return dark, offset_e, rows, cols


def _place_bad_lines(params: ModuleParams, rng: np.random.Generator, placer: _Placer, offset_e: np.ndarray,
                     response: np.ndarray, truth: list[DefectTruth]) -> None:
    """Bad columns, then bad rows (point defects are placed after them and keep 3 px away): each
    bright (an offset in e-) or dim (a response factor), every pixel of the line in ``truth``."""
    h, w = params.height, params.width
    spec = params.defects
    for line_class, count, length in (("bad_column", spec.bad_columns, w), ("bad_row", spec.bad_rows, h)):
        for _ in range(count):
            for _try in range(50):
                pos = int(rng.integers(length))
                line = placer.reserved[:, pos] if line_class == "bad_column" else placer.reserved[pos, :]
                # only the lines are placed yet: a line is taken when a parallel line reserved all
                # of it; a crossing line reserves a few pixels of it and is allowed
                if not line.all():
                    break
            else:
                continue
            sl = (slice(None), pos) if line_class == "bad_column" else (pos, slice(None))
            lo, hi = max(0, pos - 2), pos + 3
            if line_class == "bad_column":
                placer.reserved[:, lo:hi] = True
            else:
                placer.reserved[lo:hi, :] = True
            if rng.random() < 0.5:
                mag, unit = float(rng.uniform(*BAD_LINE_BRIGHT_OFFSET_E)), "offset_e"
                offset_e[sl] += mag
            else:
                mag, unit = float(rng.uniform(*BAD_LINE_DIM_RESPONSE)), "response_frac"
                response[sl] *= mag
            n_pix = h if line_class == "bad_column" else w
            for i in range(n_pix):
                x, y = (pos, i) if line_class == "bad_column" else (i, pos)
                truth.append(DefectTruth(x, y, line_class, mag, unit))


class _PointDefects:
    """Places point defects and clusters into the dark and response maps (in place), recording
    RTS amplitudes, stuck values and the truth."""

    def __init__(self, params: ModuleParams, rng: np.random.Generator, dark: np.ndarray,
                 response: np.ndarray, truth: list[DefectTruth]) -> None:
        self.params, self.rng, self.dark, self.response, self.truth = params, rng, dark, response, truth
        self.rts: dict[int, float] = {}
        self.stuck_index: list[int] = []
        self.stuck_value: list[int] = []

    def apply(self, cls: str, y: int, x: int, cluster_id: int | None = None) -> None:
        """Make pixel (y, x) a ``cls`` defect with a magnitude drawn from its class's range."""
        params, rng, w = self.params, self.rng, self.params.width
        if cls in ("hot", "warm"):
            lo, hi = HOT_DARK_MULTIPLE if cls == "hot" else WARM_DARK_MULTIPLE
            m = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            self.dark[y, x] = m * params.dark_current_e_per_s
            self.truth.append(DefectTruth(x, y, cls, m, "x_mean_dark_current", cluster_id))
        elif cls == "dead":
            m = float(rng.uniform(*DEAD_RESPONSE))
            self.response[y, x] *= m
            self.truth.append(DefectTruth(x, y, cls, m, "response_frac", cluster_id))
        elif cls == "stuck":
            m = float(rng.choice([0, params.max_dn, int(rng.integers(params.max_dn // 5, 4 * params.max_dn // 5))]))
            self.stuck_index.append(y * w + x)
            self.stuck_value.append(int(m))
            self.truth.append(DefectTruth(x, y, cls, m, "dn", cluster_id))
        elif cls == "noisy":
            m = float(rng.uniform(*RTS_AMPLITUDE_X_READ_NOISE)) * params.read_noise_e
            self.rts[y * w + x] = m
            self.truth.append(DefectTruth(x, y, cls, m, "rts_amplitude_e", cluster_id))

    def place_singles(self, placer: _Placer) -> None:
        """The module's hot, warm, dead, stuck and noisy pixels, each on a free spot."""
        for cls in ("hot", "warm", "dead", "stuck", "noisy"):
            for _ in range(getattr(self.params.defects, cls)):
                spot = placer.pick()
                if spot is None:
                    break
                self.apply(cls, *spot)
                placer.reserve(*spot)

    def place_clusters(self, placer: _Placer) -> None:
        """8-connected groups of ``CLUSTER_SIZE`` hot or dead pixels grown from free spots."""
        rng, h, w = self.rng, self.params.height, self.params.width
        for cluster_id in range(self.params.defects.clusters):
            spot = placer.pick()
            if spot is None:
                break
            size = int(rng.integers(CLUSTER_SIZE[0], CLUSTER_SIZE[1] + 1))
            members = [spot]
            for _try in range(100):
                if len(members) >= size:
                    break
                my, mx = members[int(rng.integers(len(members)))]
                ny, nx = my + int(rng.integers(-1, 2)), mx + int(rng.integers(-1, 2))
                if 0 <= ny < h and 0 <= nx < w and (ny, nx) not in members and placer.free(ny, nx):
                    members.append((ny, nx))
            if len(members) < 2:
                continue
            cls = "hot" if rng.random() < 0.5 else "dead"
            for my, mx in members:
                self.apply(cls, my, mx, cluster_id)
            for my, mx in members:
                placer.reserve(my, mx)


def _realised_summary(params: ModuleParams, prnu: np.ndarray, shading: np.ndarray, response: np.ndarray,
                      dark: np.ndarray, offset_e: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                      healthy: np.ndarray, ptc_exposure_s: float) -> dict[str, float]:
    """What the drawn maps realise over the healthy pixels (the truth a measurement is held to)."""
    h, w = params.height, params.width
    sites = colour_sites(params.cfa_pattern)
    dark_ref_e = offset_e + dark * ptc_exposure_s
    return {
        "dsnu_e": float(dark_ref_e[healthy].std(dtype=np.float64)),
        "prnu_pixel_pct": _per_colour_rms(prnu, healthy, sites, relative=False) * 100,
        "prnu1288_pct": _per_colour_rms(response, healthy, sites, relative=True) * 100,
        "row_fpn_e": float(rows.std()),
        "column_fpn_e": float(cols.std()),
        "dark_current_spread_pct": float(dark[healthy].std(dtype=np.float64) / dark[healthy].mean(dtype=np.float64) * 100),
        "shading_corner_min_rel": float(min(shading[0, 0], shading[0, -1], shading[-1, 0], shading[-1, -1])
                                        / shading.max()),
        "shading_center_x_px": (w - 1) / 2 + params.shading_center_dx_frac * w / 2,
        "shading_center_y_px": (h - 1) / 2 + params.shading_center_dy_frac * h / 2,
    }


def module_rng(seed: int | Sequence[int]) -> tuple[np.random.Generator, int]:
    """The module's numpy Generator (maps, defect positions) and its 64-bit frame-noise key."""
    rng = np.random.default_rng(seed)
    key = int(rng.integers(0, 2**63, dtype=np.int64)) * 2 + 1
    return rng, key


def simulate_module(params: ModuleParams, plan: CapturePlan, seed: int | Sequence[int],
                    maps: ModuleMaps | None = None) -> Iterator[tuple[PlannedFrame, np.ndarray]]:
    """Simulate one module frame by frame, writing nothing: yields ``(planned frame, (H, W)
    uint16 DN)`` in plan order. The yielded array is a fresh copy each time.

    ``seed`` (an int or a sequence such as ``(fleet_seed, module_index)``) fixes everything; pass
    ``maps`` (from :func:`build_maps` with :func:`module_rng` of the same seed) to inspect them.
    """
    rng, key = module_rng(seed)
    if maps is None:
        maps = build_maps(params, rng, plan.ptc_exposure_s)
    for index, frame in enumerate(plan.frames):
        yield frame, render_frame(params, maps_for_frame(params, maps, frame), frame, index, key)


class _ChartMapsCache:
    """The chart maps of the last module asked for (built on its first chart frame)."""

    maps: ModuleMaps | None = None
    chart: ModuleMaps | None = None


def maps_for_frame(params: ModuleParams, maps: ModuleMaps, frame: PlannedFrame) -> ModuleMaps:
    """The maps a frame is rendered with: the module's own, or for an ``edge_chart`` frame its
    response times the blurred chart (:func:`sensorfleet.synth.lens.chart_maps`, built once per
    module)."""
    if frame.kind != "edge_chart":
        return maps
    if _ChartMapsCache.maps is not maps:
        from sensorfleet.synth.lens import chart_maps

        _ChartMapsCache.maps, _ChartMapsCache.chart = maps, chart_maps(params, maps)
    assert _ChartMapsCache.chart is not None
    return _ChartMapsCache.chart
