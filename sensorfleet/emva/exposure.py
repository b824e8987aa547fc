"""When two exposure times count as the same: the one tolerance of the characterization."""

from __future__ import annotations

from typing import overload

import numpy as np

SAME_EXPOSURE_RTOL = 1e-9
"""Relative tolerance of :func:`same_exposure` (no absolute one): equal up to float rounding of
the same nominal time. Looser (numpy's default rtol 1e-5, atol 1e-8) would call a dark at 10.00 ms
and a flat at 10.0001 ms the same point while the dark model (``metrics.dark_reference``,
``analysis.dark_at_flat``) extrapolates between them, so the spatial dark series and the dark
subtracted from the flat would disagree."""


@overload
def same_exposure(a_s: float, b_s: float) -> bool: ...
@overload
def same_exposure(a_s: np.ndarray, b_s: float | np.ndarray) -> np.ndarray: ...
@overload
def same_exposure(a_s: float, b_s: np.ndarray) -> np.ndarray: ...
def same_exposure(a_s: float | np.ndarray, b_s: float | np.ndarray) -> bool | np.ndarray:
    """Whether exposure times ``a_s`` and ``b_s`` (seconds; scalars or broadcasting arrays) are the
    same: ``|a - b| <= 1e-9 * |b|``. Scalars give a bool, arrays a bool array."""
    same = np.isclose(a_s, b_s, rtol=SAME_EXPOSURE_RTOL, atol=0.0)
    return bool(same) if np.ndim(same) == 0 else same
