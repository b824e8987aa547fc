"""True parameters of one simulated camera module (EMVA 1288 linear camera model).

Everything the simulator needs to render a module's frames lives in :class:`ModuleParams`: a
frozen parameter object with the unit in every name. The fleet draws one per module
(:mod:`sensorfleet.synth.fleet`); tests build a clean one with :meth:`ModuleParams.clean`.
Defect counts are part of the parameters; their positions are drawn from the module's seed when
the per-pixel maps are built (:mod:`sensorfleet.synth.physics`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from sensorfleet.manifest import CFA_PATTERNS

#: Nominal product parameters at 12 bits (the fleet drifts around these; docs/synthetic-fleet.md).
NOMINAL_GAIN_12BIT_DN_PER_E = 0.40
NOMINAL_BLACK_LEVEL_12BIT_DN = 64.0
NOMINAL_FULL_WELL_E = 9000.0
NOMINAL_QE = {"R": 0.45, "G": 0.62, "B": 0.50}
NOMINAL_QE_MONO = 0.62
NOMINAL_READ_NOISE_E = 2.5
NOMINAL_DARK_CURRENT_25C_E_PER_S = 4.0
DARK_CURRENT_DOUBLING_C = 7.0


@dataclass(frozen=True)
class DefectCounts:
    """How many defects of each class to inject into one module (positions drawn per module).

    Magnitudes are fixed by construction so that every class is unambiguous (see
    docs/synthetic-fleet.md): hot pixels have a dark current 300-3000x the module mean, warm
    20-50x, dead pixels 0-5 % of the normal response, stuck pixels one constant DN value, noisy
    pixels a random-telegraph offset of 10-25x the read noise switching per frame.
    """

    hot: int = 0
    warm: int = 0
    dead: int = 0
    stuck: int = 0
    noisy: int = 0
    clusters: int = 0
    bad_columns: int = 0
    bad_rows: int = 0
    blemishes: int = 0
    #: blemish (particle shadow) peak attenuation range, fraction of light removed at the centre
    blemish_depth_min: float = 0.10
    blemish_depth_max: float = 0.30
    #: blemish radius range as a fraction of min(width, height)
    blemish_radius_min_frac: float = 0.02
    blemish_radius_max_frac: float = 0.05

    @property
    def total_point_defects(self) -> int:
        return self.hot + self.warm + self.dead + self.stuck + self.noisy


@dataclass(frozen=True)
class LensParams:
    """One module's lens (:mod:`sensorfleet.synth.lens`): Gaussian PSF sigma in focus (px), focus
    errors in px of blur (a constant defocus, a linear tilt over the normalized field ``u, v``, a
    quadratic field curvature) and the corner drop of the R and B responses (colour shading)."""

    sigma0_px: float = 0.75
    defocus_px: float = 0.0
    tilt_u_px: float = 0.0
    tilt_v_px: float = 0.0
    curvature_px: float = 0.0
    colour_drop_r: float = 0.0
    colour_drop_b: float = 0.0


@dataclass(frozen=True)
class ModuleParams:
    """True parameters of one camera module at its capture conditions.

    Units are in the names: DN (digital numbers), e- (electrons), s, degrees C, photons.
    ``quantum_efficiency_*`` is the fraction of photons that become electrons (EMVA eta) per CFA
    colour at the light source's wavelength; for ``cfa_pattern='mono'`` every pixel uses
    ``quantum_efficiency_g``. Fixed-pattern spreads are standard deviations over pixels.
    """

    width: int
    height: int
    bit_depth: int = 12
    cfa_pattern: str = "RGGB"
    pixel_pitch_um: float = 2.0
    system_gain_dn_per_e: float = NOMINAL_GAIN_12BIT_DN_PER_E
    quantum_efficiency_r: float = NOMINAL_QE["R"]
    quantum_efficiency_g: float = NOMINAL_QE["G"]
    quantum_efficiency_b: float = NOMINAL_QE["B"]
    read_noise_e: float = NOMINAL_READ_NOISE_E
    dark_current_25c_e_per_s: float = NOMINAL_DARK_CURRENT_25C_E_PER_S
    dark_current_doubling_c: float = DARK_CURRENT_DOUBLING_C
    temperature_c: float = 25.0
    black_level_dn: float = NOMINAL_BLACK_LEVEL_12BIT_DN
    full_well_e: float = NOMINAL_FULL_WELL_E
    #: per-pixel dark offset spread (DSNU part that does not scale with exposure), e- rms
    dsnu_offset_e: float = 1.0
    #: row and column fixed-pattern offsets, e- rms
    row_fpn_e: float = 0.3
    column_fpn_e: float = 0.4
    #: per-pixel gain spread (PRNU), percent rms
    prnu_pct: float = 0.8
    #: per-pixel dark-current spread: sigma of a log-normal with mean 1
    dark_current_spread_sigma: float = 0.3
    #: non-linearity: above ``knee * full_well`` collected charge is compressed quadratically,
    #: losing ``loss * (1 - knee) * full_well`` electrons at full well
    nonlinearity_knee_frac: float = 0.80
    nonlinearity_loss_frac: float = 0.03
    #: lens shading: cos^4 relative illumination at the sensor corner for a centred lens
    #: (1.0 = no shading) and the optical centre's offset from the sensor centre as a fraction of
    #: the half width / half height
    shading_corner_rel: float = 0.88
    shading_center_dx_frac: float = 0.0
    shading_center_dy_frac: float = 0.0
    defects: DefectCounts = field(default_factory=DefectCounts)
    #: the lens (PSF over the field, colour shading); None: no lens model (fleets without charts)
    lens: LensParams | None = None
    #: the station's light source: photons actually delivered over the manifest's nominal
    #: ``photons_per_pixel`` (1.0: as stated; a dimmed source, :mod:`sensorfleet.synth.stations`, < 1)
    light_source_factor: float = 1.0
    #: die temperature above the recorded ``temperature_c`` (degC; a failing temperature control):
    #: the dark current follows the actual temperature, the manifest states the recorded one
    temperature_excess_c: float = 0.0

    def __post_init__(self) -> None:
        if self.cfa_pattern not in CFA_PATTERNS:
            raise ValueError(f"cfa_pattern {self.cfa_pattern!r} invalid; valid: {', '.join(CFA_PATTERNS)}")
        if not 8 <= self.bit_depth <= 16:
            raise ValueError(f"bit_depth must be 8..16, found {self.bit_depth}")
        if self.width < 2 or self.height < 2:
            raise ValueError(f"sensor must be at least 2x2 pixels, found {self.width}x{self.height}")
        if not 0 < self.shading_corner_rel <= 1:
            raise ValueError(f"shading_corner_rel must be in (0, 1], found {self.shading_corner_rel}")
        if not 0 < self.nonlinearity_knee_frac <= 1 or not 0 <= self.nonlinearity_loss_frac <= 0.5:
            raise ValueError("nonlinearity_knee_frac must be in (0, 1] and nonlinearity_loss_frac in [0, 0.5]")
        if not self.light_source_factor > 0:
            raise ValueError(f"light_source_factor must be > 0, found {self.light_source_factor}")

    @property
    def dark_current_e_per_s(self) -> float:
        """Mean dark current of healthy pixels at the actual die temperature ``temperature_c +
        temperature_excess_c`` (e-/s), doubling every ``dark_current_doubling_c`` degrees above 25 C."""
        actual_c = self.temperature_c + self.temperature_excess_c
        return self.dark_current_25c_e_per_s * 2.0 ** ((actual_c - 25.0) / self.dark_current_doubling_c)

    @property
    def max_dn(self) -> int:
        """Largest ADC code, ``2**bit_depth - 1`` (DN)."""
        return (1 << self.bit_depth) - 1

    @property
    def mono(self) -> bool:
        return self.cfa_pattern == "mono"

    def quantum_efficiency(self, colour: str) -> float:
        """QE of one CFA colour ('R', 'G' or 'B'); mono sensors use the G value everywhere."""
        if self.mono:
            return self.quantum_efficiency_g
        return {"R": self.quantum_efficiency_r, "G": self.quantum_efficiency_g, "B": self.quantum_efficiency_b}[colour]

    @property
    def mean_quantum_efficiency(self) -> float:
        """QE averaged over the pixels of the CFA (R + 2G + B) / 4; the mono QE for mono."""
        if self.mono:
            return self.quantum_efficiency_g
        return (self.quantum_efficiency_r + 2 * self.quantum_efficiency_g + self.quantum_efficiency_b) / 4

    @property
    def saturation_dn(self) -> float:
        """Mean output at full well (DN), before the ADC clip, including the non-linearity loss."""
        loss = self.nonlinearity_loss_frac * (1 - self.nonlinearity_knee_frac) * self.full_well_e
        return min(self.black_level_dn + self.system_gain_dn_per_e * (self.full_well_e - loss), float(self.max_dn))

    @classmethod
    def clean(cls, width: int = 256, height: int = 192, *, bit_depth: int = 12, cfa_pattern: str = "RGGB",
              temperature_c: float = 25.0, **overrides: Any) -> ModuleParams:
        """A nominal module with no defects, no lens shading, no blemishes and no fault.

        The gain and black level scale with ``bit_depth`` (0.40 DN/e- and 64 DN at 12 bits) so the
        full well fills the ADC range the same way at every depth. ``overrides`` replace any
        scalar field by name.
        """
        scale = 2.0 ** (bit_depth - 12)
        base = cls(
            width=width, height=height, bit_depth=bit_depth, cfa_pattern=cfa_pattern,
            temperature_c=temperature_c,
            system_gain_dn_per_e=NOMINAL_GAIN_12BIT_DN_PER_E * scale,
            black_level_dn=max(NOMINAL_BLACK_LEVEL_12BIT_DN * scale, 4.0),
            shading_corner_rel=1.0,
            defects=DefectCounts(),
        )
        return replace(base, **overrides) if overrides else base


def shading_focal_px(params: ModuleParams) -> float:
    """Effective focal length (px) that gives ``shading_corner_rel`` at the corner of a centred
    lens under the cos^4 law: cos^4(atan(r_corner / f)) = shading_corner_rel."""
    r_corner = math.hypot(params.width / 2, params.height / 2)
    if params.shading_corner_rel >= 1.0:
        return math.inf
    angle = math.acos(params.shading_corner_rel ** 0.25)
    return r_corner / math.tan(angle)
