"""Module-level anomaly detection on tabular features: an ensemble of PyOD detectors on robustly
standardized features, combined by rank, with a threshold set on normal modules.

Score meaning: ``score`` is the estimated fraction of normal modules less anomalous than this
one, on the ensemble's combined rank, measured on calibration modules (known-good modules of
training lots the detectors never saw): their empirical distribution, with an exponential tail
fitted to its top 10 % beyond that, so that scores keep ordering the modules more anomalous than
any calibration module instead of tying at 1. ``score > 1 - false_alarm_rate`` flags about
``false_alarm_rate`` of normal modules; the threshold is stored with the model.

Combination: each detector's raw score becomes its rank among the calibration modules' scores of
that detector (same tail rule), and the ensemble is the average of those ranks.

Detectors (default): PyOD's isolation forest and k-nearest neighbours (mean distance to the 10
nearest), and the largest |robust z| of any feature (``zmax``, a detector with PyOD's
``fit``/``decision_function`` interface written here); PyOD's HBOS is available. All are
inductive: a module's score does not depend on the other modules scored with it. ECOD and COPOD
are left out for that reason: PyOD's ``decision_function`` of both recomputes its empirical
distributions over the training data plus the batch being scored, so a day's scores would depend
on the day's batch. ``zmax`` stands in for ECOD's per-feature tails: a fault usually moves one or
two measurements far (a bad column, a dark-current jump), which the multivariate detectors dilute
among dozens of features (measured: a 7-sigma shift of one of 8 features ranked 0.50-0.96 under
HBOS and 0.81-0.99 under the isolation forest).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

DETECTORS = ("iforest", "knn", "zmax", "hbos")
"""Valid detector names."""
DEFAULT_DETECTORS = ("iforest", "knn", "zmax")


class MaxAbsZ:
    """Largest |value| of a row of robust z-scores (inputs are already standardized):
    ``fit``/``decision_function`` as PyOD's detectors, higher = more anomalous."""

    def fit(self, z: np.ndarray) -> MaxAbsZ:
        self.decision_scores_ = self.decision_function(z)
        return self

    def decision_function(self, z: np.ndarray) -> np.ndarray:
        return np.max(np.abs(z), axis=1)


@dataclass(frozen=True)
class AnomalyConfig:
    """``views``: feature views (of the ``default`` service) the detector reads; ``detectors``:
    names from :data:`DETECTORS`; ``false_alarm_rate``: share of normal modules alarmed;
    ``top_features``: features named per module; ``seed``: every random choice."""

    views: tuple[str, ...] = ("module_emva", "module_defects", "capture_conditions")
    detectors: tuple[str, ...] = DEFAULT_DETECTORS
    false_alarm_rate: float = 0.01
    top_features: int = 3
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [d for d in self.detectors if d not in DETECTORS]
        if unknown or not self.detectors:
            raise ValueError(f"unknown detectors {unknown}; valid: {', '.join(DETECTORS)}")
        if not 0 < self.false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), found {self.false_alarm_rate}")


def _make_detector(name: str, seed: int) -> Any:
    if name == "iforest":
        from pyod.models.iforest import IForest
        return IForest(n_estimators=200, random_state=seed)
    if name == "zmax":
        return MaxAbsZ()
    if name == "knn":
        from pyod.models.knn import KNN
        return KNN(n_neighbors=10, method="mean")
    from pyod.models.hbos import HBOS
    return HBOS(n_bins=20)


def robust_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column median and spread of ``(n, f)`` training data: IQR / 1.349 (the standard
    deviation of a normal), else the standard deviation (defect counts are mostly 0, so their
    IQR is 0), else 1. NaN ignored; an all-NaN column gets centre 0."""
    center = np.nan_to_num(np.nanmedian(x, axis=0), nan=0.0) if len(x) else np.zeros(x.shape[1])
    q75, q25 = np.nanpercentile(x, [75, 25], axis=0)
    spread = np.nan_to_num((q75 - q25) / 1.349, nan=0.0)
    std = np.nan_to_num(np.nanstd(x, axis=0), nan=0.0)
    spread = np.where(spread > 0, spread, np.where(std > 0, std, 1.0))
    return center, spread


TAIL = 0.1
"""Share of the reference taken as its upper tail (exponential fit beyond the 90th percentile)."""


def tail_log_exceedance(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    """log of the estimated fraction of the reference distribution (sorted) above each value:
    the empirical one (ties counted half) up to the reference's 90th percentile, and beyond it an
    exponential tail fitted to the top 10 % (peaks over threshold), so that values beyond the
    largest reference value keep their order instead of all tying. In logs: no underflow."""
    n = len(reference)
    lo = np.searchsorted(reference, values, side="left")
    hi = np.searchsorted(reference, values, side="right")
    above_share = np.maximum(1.0 - (lo + hi) / (2.0 * n), 0.5 / n)
    start = reference[int(np.floor((1 - TAIL) * (n - 1)))]
    excess = reference[reference > start] - start
    beta = float(excess.mean()) if len(excess) and excess.mean() > 0 else 1e-12
    out = np.log(above_share)
    tail = values > start
    out[tail] = np.log(TAIL) - (values[tail] - start) / beta
    return out


class AnomalyModel:
    """A fitted ensemble: robust scaling, detectors, their score distributions on the calibration
    modules, and the threshold. Input: an ``(n, len(feature_names))`` float matrix (NaN allowed,
    taken as the training median)."""

    def __init__(self, feature_names: Sequence[str], center: np.ndarray, spread: np.ndarray,
                 detectors: dict[str, Any], config: AnomalyConfig) -> None:
        self.feature_names = list(feature_names)
        self.center, self.spread = center, spread
        self.detectors = detectors
        self.config = config
        self.references: dict[str, np.ndarray] = {}
        self.ensemble_reference = np.zeros(0)

    @property
    def threshold(self) -> float:
        """Alarm when ``score > threshold`` (= 1 - false-alarm rate, on the 0-1 score scale)."""
        return 1.0 - self.config.false_alarm_rate

    def robust_z(self, x: np.ndarray) -> np.ndarray:
        """``(x - median) / spread`` per feature; NaN -> 0 (the median)."""
        return np.nan_to_num((x - self.center) / self.spread, nan=0.0, posinf=1e6, neginf=-1e6)

    def _ensemble(self, z: np.ndarray) -> np.ndarray:
        """-log of the mean over detectors of (1 - percentile rank): the average rank, kept in
        logs so that ranks near 1 stay distinct. Larger = more anomalous."""
        logs = np.stack([tail_log_exceedance(self.references[n], d.decision_function(z))
                         for n, d in self.detectors.items()])
        return -(logsumexp(logs, axis=0) - np.log(len(logs)))

    def calibrate(self, x_normal: np.ndarray) -> AnomalyModel:
        """Record each detector's score distribution and the ensemble's on known-normal modules
        the detectors were not fitted on; returns self."""
        z = self.robust_z(x_normal)
        self.references = {n: np.sort(d.decision_function(z)) for n, d in self.detectors.items()}
        self.ensemble_reference = np.sort(self._ensemble(z))
        return self

    def log_exceedance(self, x: np.ndarray) -> np.ndarray:
        """log of the estimated fraction of normal modules at least as anomalous (the calibration
        modules' ensemble distribution, with its fitted tail beyond them): orders every module,
        however far out."""
        return tail_log_exceedance(self.ensemble_reference, self._ensemble(self.robust_z(x)))

    def score(self, x: np.ndarray) -> np.ndarray:
        """0-1 score per row: estimated fraction of normal modules less anomalous,
        ``1 - exp(log_exceedance)`` (rounds to 1 far out; rank by :meth:`log_exceedance`)."""
        return -np.expm1(self.log_exceedance(x))

    def predict(self, x: Any) -> np.ndarray:
        """:meth:`score` of a matrix or a frame with :attr:`feature_names` columns (MLflow pyfunc)."""
        values = np.asarray(x[self.feature_names] if hasattr(x, "columns") else x, dtype=np.float64)
        return self.score(values)

    def explain(self, x: np.ndarray, k: int | None = None) -> list[str]:
        """Per row, the ``k`` features with the largest |robust z|, as ``name (+z)`` joined by
        ``; ``: which measurements made the module unusual."""
        k = k or self.config.top_features
        z = self.robust_z(x)
        size = np.abs(z)
        k = min(k, z.shape[1])
        part = np.argpartition(-size, k - 1, axis=1)[:, :k]  # the k largest, unordered: O(f) per row
        order = np.argsort(-np.take_along_axis(size, part, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        return ["; ".join(f"{self.feature_names[j]} ({z[i, j]:+.1f})" for j in row) for i, row in enumerate(top)]


def fit_anomaly(x_fit: np.ndarray, x_calibrate: np.ndarray, feature_names: Sequence[str],
                config: AnomalyConfig) -> AnomalyModel:
    """Fit the ensemble on known-normal modules ``x_fit`` and calibrate ranks and threshold on
    other known-normal modules ``x_calibrate`` (later lots: the false-alarm rate then holds for
    lots the detectors have not seen)."""
    if len(x_fit) < 20 or len(x_calibrate) < 10:
        raise ValueError(f"need >= 20 modules to fit and >= 10 to calibrate, found {len(x_fit)} and {len(x_calibrate)}")
    center, spread = robust_scale(x_fit)
    model = AnomalyModel(feature_names, center, spread, {}, config)
    z = model.robust_z(x_fit)
    for name in config.detectors:
        detector = _make_detector(name, config.seed)
        detector.fit(z)
        model.detectors[name] = detector
    return model.calibrate(x_calibrate)
