"""Where a solve records the state: given times, log-spaced times, or linearly spaced times.
Dense output (``solve(..., dense=True)``) is separate and can be combined with any of them."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._checks import check_integer, check_real


@dataclasses.dataclass(frozen=True)
class LogTimes:
    r"""``n`` save times spaced evenly in $\log(t - t_0)$ from ``first`` after ``t0`` up to
    ``t1``, plus ``t0`` itself. Learning dynamics live on log time: plateaus of length
    $\log(1/\text{init})$ show up as equal widths.

    **Arguments:**

    - ``n``: number of log-spaced times (>= 2).
    - ``first``: offset of the first time after ``t0``; default ``(t1 - t0) * 1e-6``.
    """

    n: int = 200
    first: float | None = None

    def times(self, t0: float, t1: float) -> np.ndarray:
        n = check_integer("LogTimes.n", self.n, minimum=2)
        first = (t1 - t0) * 1e-6 if self.first is None else check_real("LogTimes.first", self.first)
        if not 0 < first < t1 - t0:
            raise ValueError(
                f"`LogTimes.first` must lie in (0, t1 - t0) = (0, {t1 - t0}); got {first}."
            )
        return np.concatenate([[t0], t0 + np.geomspace(first, t1 - t0, n)])


@dataclasses.dataclass(frozen=True)
class LinearTimes:
    """``n`` save times evenly spaced on ``[t0, t1]`` (endpoints included)."""

    n: int = 200

    def times(self, t0: float, t1: float) -> np.ndarray:
        n = check_integer("LinearTimes.n", self.n, minimum=2)
        return np.linspace(t0, t1, n)


def resolve_save_times(saveat, t0: float, t1: float) -> np.ndarray:
    """Turn the ``saveat`` argument of ``solve`` into a sorted float64 array within [t0, t1]."""
    if saveat is None:
        saveat = LogTimes()
    if isinstance(saveat, (LogTimes, LinearTimes)):
        ts = saveat.times(t0, t1)
    else:
        try:
            ts = np.asarray(saveat, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(
                "`saveat` must be None, LogTimes(...), LinearTimes(...) or an array of times; "
                f"got {saveat!r}."
            ) from None
        if ts.size == 0:
            raise ValueError("`saveat` must contain at least one time.")
        if not np.all(np.isfinite(ts)):
            raise ValueError("`saveat` times must be finite.")
        if np.any(np.diff(ts) < 0):
            raise ValueError("`saveat` times must be sorted in increasing order.")
        if ts[0] < t0 or ts[-1] > t1:
            raise ValueError(
                f"`saveat` times must lie in [t0, t1] = [{t0}, {t1}]; got [{ts[0]}, {ts[-1]}]."
            )
    # Guard the top end against rounding in geomspace/linspace.
    return np.minimum(ts, t1)
