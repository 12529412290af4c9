r"""Plateaus, transitions and timescales of a risk (loss) curve, and power-law fits of
timescales against a parameter.

Learning curves of reduced flows are staircases on a logarithmic time axis: long plateaus
(saddles, unlearned modes, unspecialised committees) separated by fast drops. This module
works on any sampled curve $(t_i, R_i)$, whatever produced it (a reduced ODE, a finite
network trained by GD or SGD, a closed form):

- ``detect_plateaus``: the plateaus (start, end, level) and the transitions between them
  (midpoint time, risk before and after);
- ``transition_time``: the first time a curve crosses a given level downwards;
- ``fit_scaling``: the exponent $\gamma$ of $t = C p^\gamma$ (optionally times a known power
  of $\log(1/p)$) by least squares on $\log t$ versus $\log p$, with Student-$t$ confidence
  intervals, and a second interval from the scatter of repeated measurements (seeds).

Everything here is plain numpy / scipy on concrete arrays (the inputs may be JAX arrays);
nothing is traced or compiled.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.ndimage
import scipy.stats

from .._checks import check_finite, check_positive, check_real

__all__ = [
    "Plateau",
    "Transition",
    "PlateauAnalysis",
    "ScalingFit",
    "detect_plateaus",
    "transition_time",
    "fit_scaling",
]


# ----------------------------------------------------------------------------------------------
# Input checks


def _as_curve(ts, risk, log_time: bool, *, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``(ts, risk)`` as float64 numpy vectors: 1-D, same length, finite, strictly increasing
    times (> 0 with ``log_time``)."""
    ts = np.asarray(ts, dtype=np.float64)
    risk = np.asarray(risk, dtype=np.float64)
    if ts.ndim != 1:
        raise ValueError(f"`ts` must be a 1-D array of times; got shape {ts.shape}.")
    if risk.ndim != 1:
        raise ValueError(f"`risk` must be a 1-D array (one value per time); got shape {risk.shape}.")
    if ts.shape != risk.shape:
        raise ValueError(
            f"`ts` and `risk` must have the same length; got {ts.shape[0]} times and {risk.shape[0]} risks."
        )
    if ts.shape[0] < minimum:
        raise ValueError(f"`ts` must hold at least {minimum} samples; got {ts.shape[0]}.")
    check_finite("ts", ts)
    check_finite("risk", risk)
    if log_time and np.any(ts <= 0):
        raise ValueError(
            f"`ts` must be > 0 when `log_time` is True (the analysis works in log t); the smallest "
            f"time is {ts.min()!r}. Drop t = 0 or pass log_time=False."
        )
    if np.any(np.diff(ts) <= 0):
        raise ValueError("`ts` must be strictly increasing.")
    return ts, risk


def _check_threshold(name: str, value, *, allow_zero: bool = True) -> float:
    value = check_real(name, value)
    check_positive(name, value, allow_zero=allow_zero)
    return value


# ----------------------------------------------------------------------------------------------
# Crossings


def _down_crossings(x: np.ndarray, r: np.ndarray, level: float) -> np.ndarray:
    """All downward crossings of ``level`` by the piecewise-linear curve ``(x, r)``: the x of
    each segment with ``r[i] >= level > r[i + 1]``, linearly interpolated."""
    i = np.nonzero((r[:-1] >= level) & (r[1:] < level))[0]
    frac = (r[i] - level) / (r[i] - r[i + 1])
    return x[i] + frac * (x[i + 1] - x[i])


def transition_time(ts, risk, level, *, log_time: bool = True) -> float:
    r"""The first time the sampled curve crosses ``level`` downwards.

    The crossing is the first sample pair with $R_i \ge$ ``level`` $> R_{i+1}$, interpolated
    linearly in $\log t$ (in $t$ with ``log_time=False``): between the samples,
    $R$ is taken linear in $\log t$. A curve that starts below ``level`` and never rises above
    it has no crossing (the event happened before the first sample): the result is NaN, as it
    is when the curve never reaches ``level``.

    Example: the first time $r_l^2 < \varphi_l^2/2$ is
    ``transition_time(ts, r_l**2, phi_l**2 / 2)``.

    **Arguments:**

    - ``ts``: sample times, 1-D, strictly increasing (> 0 with ``log_time``).
    - ``risk``: the curve at those times, 1-D, same length, finite.
    - ``level``: the level (a finite real).
    - ``log_time``: interpolate in $\log t$ (default) or in $t$.

    **Returns:** the crossing time (a float), NaN if the curve never crosses downwards.
    """
    ts, risk = _as_curve(ts, risk, log_time)
    level = check_real("level", level)
    x = np.log(ts) if log_time else ts
    crossings = _down_crossings(x, risk, level)
    if crossings.size == 0:
        return math.nan
    first = crossings[0]
    return float(np.exp(first)) if log_time else float(first)


# ----------------------------------------------------------------------------------------------
# Results


@dataclasses.dataclass(frozen=True)
class Plateau:
    """One plateau: the risk stays at ``level`` (the median of the risk samples over the
    plateau) from time ``start`` to time ``end``."""

    start: float
    end: float
    level: float

    @property
    def log_duration(self) -> float:
        """The length of the plateau in decades, $\\log_{10}(\\text{end}/\\text{start})$."""
        return math.log10(self.end / self.start) if self.start > 0 else math.inf


@dataclasses.dataclass(frozen=True)
class Transition:
    """One transition (a drop) between two consecutive plateaus.

    **Attributes:**

    - ``time``: when the risk crosses the midpoint $(R_\\text{before} + R_\\text{after})/2$
      (first downward crossing between the two plateaus, interpolated linearly in $\\log t$).
    - ``risk_before``, ``risk_after``: the levels of the plateaus before and after.
    - ``start``, ``end``: where the transition begins (end of the plateau before) and ends
      (start of the plateau after).
    - ``drop``: ``risk_before - risk_after`` (> 0).
    """

    time: float
    risk_before: float
    risk_after: float
    start: float
    end: float
    drop: float


@dataclasses.dataclass(frozen=True)
class PlateauAnalysis:
    """The result of ``detect_plateaus``.

    **Attributes:**

    - ``plateaus``: the ``Plateau`` tuple, in time order.
    - ``transitions``: the ``Transition`` tuple, in time order (one per significant drop
      between consecutive plateaus).
    - ``ts``, ``risk``: the input curve (numpy); ``grid_ts``, ``smoothed``: the curve the
      detection ran on (uniform grid in $\\log t$, median-filtered).
    - ``log_time`` and the thresholds used (``min_drop``, ``rel_drop``, ``flatness``,
      ``min_log_duration``, ``smoothing``, ``floor``, ``baseline``).
    """

    plateaus: tuple[Plateau, ...]
    transitions: tuple[Transition, ...]
    ts: np.ndarray = dataclasses.field(repr=False)
    risk: np.ndarray = dataclasses.field(repr=False)
    grid_ts: np.ndarray = dataclasses.field(repr=False)
    smoothed: np.ndarray = dataclasses.field(repr=False)
    log_time: bool = True
    min_drop: float = 0.0
    rel_drop: float = 0.1
    flatness: float = 0.05
    min_log_duration: float = 0.3
    smoothing: float = 0.1
    floor: float = 1e-3
    baseline: float = 0.0

    @property
    def levels(self) -> np.ndarray:
        """The plateau levels, shape ``(number of plateaus,)``."""
        return np.array([p.level for p in self.plateaus])

    @property
    def transition_times(self) -> np.ndarray:
        """The transition (midpoint) times, shape ``(number of transitions,)``."""
        return np.array([tr.time for tr in self.transitions])

    def table(self) -> str:
        """A printable table of the plateaus and the transitions."""
        lines = [f"{len(self.plateaus)} plateau(s), {len(self.transitions)} transition(s)"]
        if self.plateaus:
            lines.append("  plateau        start          end        level   decades")
            for i, p in enumerate(self.plateaus):
                lines.append(
                    f"  {i:>7d}  {p.start:11.4e}  {p.end:11.4e}  {p.level:11.5g}  {p.log_duration:8.3f}"
                )
        if self.transitions:
            lines.append("  transition     time        start          end       before        after         drop")
            for i, tr in enumerate(self.transitions):
                lines.append(
                    f"  {i:>10d}  {tr.time:11.4e}  {tr.start:11.4e}  {tr.end:11.4e}  "
                    f"{tr.risk_before:11.5g}  {tr.risk_after:11.5g}  {tr.drop:11.5g}"
                )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimensions ``plateau`` (``plateau_start``,
        ``plateau_end``, ``plateau_level``), ``transition`` (``transition_time``,
        ``risk_before``, ``risk_after``, ``transition_start``, ``transition_end``, ``drop``) and
        ``time`` (the input ``risk``); the thresholds as attributes."""
        import xarray as xr

        def column(items, name):
            return np.array([getattr(item, name) for item in items], dtype=np.float64)

        data = {
            "plateau_start": ("plateau", column(self.plateaus, "start")),
            "plateau_end": ("plateau", column(self.plateaus, "end")),
            "plateau_level": ("plateau", column(self.plateaus, "level")),
            "transition_time": ("transition", column(self.transitions, "time")),
            "risk_before": ("transition", column(self.transitions, "risk_before")),
            "risk_after": ("transition", column(self.transitions, "risk_after")),
            "transition_start": ("transition", column(self.transitions, "start")),
            "transition_end": ("transition", column(self.transitions, "end")),
            "drop": ("transition", column(self.transitions, "drop")),
            "risk": ("time", self.risk),
        }
        attrs = dict(log_time=int(self.log_time), min_drop=self.min_drop, rel_drop=self.rel_drop,
                     flatness=self.flatness, min_log_duration=self.min_log_duration,
                     smoothing=self.smoothing, floor=self.floor, baseline=self.baseline)
        return xr.Dataset(data, coords={"time": self.ts}, attrs=attrs)

    def plot(self, ax=None, **kwargs):
        """The risk against $t$ (log axis with ``log_time``), the plateaus shaded with their
        levels drawn, and the transition times marked by vertical lines. Extra keywords go to
        the risk curve's ``ax.plot``. **Returns:** the matplotlib axes."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 4))
        kwargs.setdefault("color", "C0")
        ax.plot(self.ts, self.risk, lw=1.0, label="risk", **kwargs)
        if self.smoothing > 0:
            ax.plot(self.grid_ts, self.smoothed, color="0.3", lw=0.8, ls="--", label="smoothed")
        for i, p in enumerate(self.plateaus):
            ax.axvspan(p.start, p.end, color="C2", alpha=0.15, lw=0, label="plateau" if i == 0 else None)
            ax.hlines(p.level, p.start, p.end, color="C2", lw=1.5)
        for i, tr in enumerate(self.transitions):
            ax.axvline(tr.time, color="C3", lw=1.0, ls=":", label="transition" if i == 0 else None)
        if self.log_time:
            ax.set_xscale("log")
        ax.set_xlabel("t")
        ax.set_ylabel("risk")
        ax.legend(loc="best", fontsize="small")
        return ax


# ----------------------------------------------------------------------------------------------
# Detection


_MAX_GRID = 20_000
_MIN_GRID = 200


def _resample(x: np.ndarray, r: np.ndarray, smoothing: float) -> tuple[np.ndarray, np.ndarray]:
    """The curve on a uniform grid in x. Grid spacing: the median sample spacing, clipped to
    [span / (_MAX_GRID - 1), span / (_MIN_GRID - 1)]. Without smoothing, the values are the
    linear interpolation of the samples; with smoothing, a grid cell holding >= 3 samples gets
    their median (so that densely sampled noisy curves, e.g. SGD on a uniform time grid, are
    averaged rather than sub-sampled)."""
    span = x[-1] - x[0]
    spacing = float(np.median(np.diff(x)))  # > 0: the times are strictly increasing
    size = int(np.clip(round(span / spacing) + 1, _MIN_GRID, _MAX_GRID))
    grid = np.linspace(x[0], x[-1], size)
    values = np.interp(grid, x, r)
    if smoothing > 0 and x.shape[0] > size:
        dx = grid[1] - grid[0]
        cell = np.clip(np.rint((x - x[0]) / dx).astype(np.int64), 0, size - 1)
        counts = np.bincount(cell, minlength=size)
        order = np.lexsort((r, cell))  # by cell, then by value
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        full = np.nonzero(counts >= 3)[0]
        sorted_r = r[order]
        lo = starts[full] + (counts[full] - 1) // 2
        hi = starts[full] + counts[full] // 2
        values[full] = 0.5 * (sorted_r[lo] + sorted_r[hi])
    return grid, values


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The maximal runs of True in ``mask`` as (first index, last index) pairs."""
    padded = np.concatenate([[False], mask, [False]])
    edges = np.diff(padded.astype(np.int8))
    starts = np.nonzero(edges == 1)[0]
    ends = np.nonzero(edges == -1)[0] - 1
    return list(zip(starts.tolist(), ends.tolist()))


def detect_plateaus(
    ts,
    risk,
    *,
    min_drop: float = 0.0,
    rel_drop: float = 0.1,
    flatness: float = 0.05,
    min_log_duration: float = 0.3,
    smoothing: float = 0.1,
    floor: float = 1e-3,
    baseline: float = 0.0,
    log_time: bool = True,
) -> PlateauAnalysis:
    r"""Find the plateaus of a risk curve and the transitions between them.

    The analysis runs in $x = \log_{10} t$ (decades; $x = t$ with ``log_time=False``, and
    every "decade" below then reads "unit of t"):

    1. **Resampling and smoothing.** The curve is put on a uniform grid in $x$ (linear
       interpolation; grid cells holding three samples or more take their median) and
       median-filtered over a window of ``smoothing`` decades. A median filter leaves a monotone
       curve unchanged, so the default mild smoothing does not move the transitions of a clean
       curve; for noisy (SGD) curves, widen it until the plateaus look flat.
    2. **Flatness.** With $h(x) = \max(\tilde R(x) - b,\ \text{floor}\cdot\Delta)$ the height
       of the smoothed curve $\tilde R$ above the ``baseline`` $b$ ($\Delta$ is the range of
       $\tilde R$; the ``floor`` keeps a final approach to $b$ from counting as ever-relative
       change), a point is flat when the slope of $\tilde R$ (further box-averaged over
       ``smoothing`` decades) satisfies $|d\tilde R/dx| \le$ ``flatness`` $\cdot\,h(x)$: the
       risk changes by less than a fraction ``flatness`` of its height per decade. Relative to
       the height, a power-law decay $R \propto t^{-a}$ ($a \ge$ ``flatness``$/\ln 10$) is never
       flat, while a risk that has reached $b$ (to within ``floor``) is.
    3. **Grouping.** Consecutive flat runs whose levels (medians) do not differ significantly
       (rule below) are joined, across the non-flat gaps between them: noise that breaks a
       plateau into pieces does not split it. Groups shorter than ``min_log_duration`` decades
       are dropped (a shoulder inside a transition is not a plateau), and consecutive survivors
       with no significant level change are merged again.
    4. **Levels and transitions.** A plateau's ``level`` is the median of the input samples
       between its start and end. Between consecutive plateaus with levels $a > c$, the drop is
       significant when $a - c \ge$ ``min_drop`` and $a - c \ge$ ``rel_drop``
       $\cdot\max(a - b,\ \text{floor}\cdot\Delta)$; each significant drop is a ``Transition``
       whose ``time`` is the first downward crossing of $(a + c)/2$ between the two plateaus
       (on the smoothed curve when ``smoothing > 0``, else on the samples; linear in $\log t$).
       A significant *rise* separates plateaus but is not a transition.

    Conventions worth knowing:

    - On a log-time axis a curve observed from $t \ll$ its first timescale starts flat: that
      initial level is a plateau (the first plateau of a staircase is exactly this). So
      $R = e^{-t}$ sampled from $t = 10^{-4}$ gives two plateaus (1 and 0) and one transition
      at $t = \ln 2$; sampled from $t \gtrsim 0.05$ (the decay already under way, slope
      $> $ ``flatness``) or analysed with ``log_time=False``, it gives only the final plateau
      at 0 and no transition.
    - A transient at the start of the record (the curve falling from its first sample) is
      not a plateau, so it produces no transition either.
    - The last plateau may be the risk at rest at the baseline (a final plateau at 0), as
      long as it lasts ``min_log_duration`` decades within the record. The thresholds act on
      the risk itself, not on its logarithm: a risk decaying exponentially to 0 keeps falling
      on a log-risk plot, but here it rests on a final plateau at 0 once its slope is below
      ``flatness`` times ``floor`` times the range.

    **Arguments:**

    - ``ts``: sample times, 1-D, strictly increasing, > 0 with ``log_time``; any spacing.
    - ``risk``: the risk at those times, 1-D, same length, finite.
    - ``min_drop``: the smallest drop (absolute, in risk units) that makes a transition
      (default 0: only ``rel_drop`` decides).
    - ``rel_drop``: the smallest drop as a fraction of the height of the plateau before
      (default 0.1).
    - ``flatness``: the largest slope per decade, as a fraction of the height, of a flat
      point (default 0.05).
    - ``min_log_duration``: the shortest plateau, in decades (default 0.3, a factor 2 in t).
    - ``smoothing``: the width of the median filter (and slope average) in decades
      (default 0.1; 0 for none).
    - ``floor``: below ``floor`` times the range of the curve, a height counts as zero
      (default 1e-3).
    - ``baseline``: the risk that counts as "zero" (default 0.0; pass the irreducible loss
      for a curve with an offset).
    - ``log_time``: analyse on $\log t$ (default) or on $t$.

    **Returns:** a ``PlateauAnalysis`` (``.plateaus``, ``.transitions``, ``.table()``,
    ``.to_xarray()``, ``.plot()``).
    """
    ts, risk = _as_curve(ts, risk, log_time, minimum=4)
    min_drop = _check_threshold("min_drop", min_drop)
    rel_drop = _check_threshold("rel_drop", rel_drop)
    flatness = _check_threshold("flatness", flatness, allow_zero=False)
    min_log_duration = _check_threshold("min_log_duration", min_log_duration, allow_zero=False)
    smoothing = _check_threshold("smoothing", smoothing)
    floor = _check_threshold("floor", floor)
    baseline = check_real("baseline", baseline)
    if not isinstance(log_time, (bool, np.bool_)):
        raise ValueError(f"`log_time` must be True or False; got {log_time!r}.")

    x = np.log10(ts) if log_time else ts
    grid, values = _resample(x, risk, smoothing)
    dx = grid[1] - grid[0]
    width = 2 * int(round(smoothing / (2 * dx))) + 1 if smoothing > 0 else 1
    smooth = scipy.ndimage.median_filter(values, size=width, mode="nearest") if width > 1 else values
    averaged = scipy.ndimage.uniform_filter1d(smooth, size=width, mode="nearest") if width > 1 else smooth
    slope = np.gradient(averaged, dx)

    spread = float(smooth.max() - smooth.min())
    zero = floor * spread

    def height(level):
        return np.maximum(level - baseline, zero)

    def significant(a, c):
        change = abs(a - c)
        return change > 0 and change >= min_drop and change >= rel_drop * height(max(a, c))

    flat = np.abs(slope) <= flatness * height(smooth)

    # Flat runs, joined while their levels agree (a group is [first index, last index]).
    groups: list[list[int]] = []
    for first, last in _runs(flat):
        level = float(np.median(smooth[first : last + 1]))
        if groups:
            current = float(np.median(smooth[groups[-1][0] : groups[-1][1] + 1]))
            if not significant(current, level):
                groups[-1][1] = last
                continue
        groups.append([first, last])
    groups = [g for g in groups if grid[g[1]] - grid[g[0]] >= min_log_duration]
    merged: list[list[int]] = []
    for g in groups:
        if merged:
            a = float(np.median(smooth[merged[-1][0] : merged[-1][1] + 1]))
            c = float(np.median(smooth[g[0] : g[1] + 1]))
            if not significant(a, c):
                merged[-1][1] = g[1]
                continue
        merged.append(list(g))

    def to_time(value):
        return float(10.0**value) if log_time else float(value)

    plateaus = []
    for first, last in merged:
        start = ts[0] if first == 0 else to_time(grid[first])
        end = ts[-1] if last == grid.shape[0] - 1 else to_time(grid[last])
        inside = (ts >= start) & (ts <= end)
        level = float(np.median(risk[inside])) if np.any(inside) else float(np.median(smooth[first : last + 1]))
        plateaus.append(Plateau(start=float(start), end=float(end), level=level))

    curve_x, curve_r = (grid, smooth) if smoothing > 0 else (x, risk)
    transitions = []
    for (before, after), (g_before, g_after) in zip(zip(plateaus[:-1], plateaus[1:]), zip(merged[:-1], merged[1:])):
        if not (before.level > after.level and significant(before.level, after.level)):
            continue
        midpoint = 0.5 * (before.level + after.level)
        time = math.nan
        # Search the gap between the plateaus first, then the plateaus themselves.
        for lo, hi in ((grid[g_before[1]], grid[g_after[0]]), (grid[g_before[0]], grid[g_after[1]])):
            keep = (curve_x >= lo - 1e-12 * max(1.0, abs(lo))) & (curve_x <= hi + 1e-12 * max(1.0, abs(hi)))
            crossings = _down_crossings(curve_x[keep], curve_r[keep], midpoint)
            if crossings.size:
                time = to_time(crossings[0])
                break
        transitions.append(
            Transition(time=time, risk_before=before.level, risk_after=after.level,
                       start=before.end, end=after.start, drop=before.level - after.level)
        )

    return PlateauAnalysis(
        plateaus=tuple(plateaus), transitions=tuple(transitions), ts=ts, risk=risk,
        grid_ts=10.0**grid if log_time else grid, smoothed=smooth, log_time=bool(log_time),
        min_drop=min_drop, rel_drop=rel_drop, flatness=flatness, min_log_duration=min_log_duration,
        smoothing=smoothing, floor=floor, baseline=baseline,
    )


# ----------------------------------------------------------------------------------------------
# Power-law fits


@dataclasses.dataclass(frozen=True)
class ScalingFit:
    r"""The result of ``fit_scaling``: $t = C\,p^\gamma\,(\ln(1/p))^k$ with $k$ given
    (``log_factor``; $k = 0$ when None).

    **Attributes:**

    - ``exponent`` $\gamma$, ``stderr`` (its standard error), ``interval`` (its confidence
      interval, Student $t$ with $n - 2$ degrees of freedom) at level ``confidence``.
    - ``prefactor`` $C$, ``prefactor_interval`` (from the interval of $\ln C$);
      ``log_prefactor`` $\ln C$ and ``log_prefactor_stderr``.
    - ``r_squared``; ``residuals`` of $\ln t$ (after dividing out the log factor), one per point;
      ``n`` points; ``log_factor`` $k$ (or None).
    - ``n_values``: the number of distinct parameter values. With repeated measurements
      (``n > n_values``): ``scatter_stderr`` and ``scatter_interval``, the standard error and
      interval of $\gamma$ from the scatter between repeats alone (pure error, Student $t$
      with $n -$ ``n_values`` degrees of freedom), and ``lack_of_fit_pvalue``, the p-value of the
      F test of the power law against the repeats' scatter (small: the power law does not fit
      within the noise). NaN when not available.
    - ``parameters``, ``times``: the points fitted (flattened).
    """

    exponent: float
    stderr: float
    interval: tuple[float, float]
    prefactor: float
    prefactor_interval: tuple[float, float]
    log_prefactor: float
    log_prefactor_stderr: float
    r_squared: float
    residuals: np.ndarray = dataclasses.field(repr=False)
    n: int = 0
    confidence: float = 0.95
    log_factor: float | None = None
    n_values: int = 0
    scatter_stderr: float = math.nan
    scatter_interval: tuple[float, float] = (math.nan, math.nan)
    lack_of_fit_pvalue: float = math.nan
    parameters: np.ndarray = dataclasses.field(default=None, repr=False)
    times: np.ndarray = dataclasses.field(default=None, repr=False)

    def predict(self, parameter):
        r"""$C\,p^\gamma(\ln(1/p))^k$ at ``parameter`` (array-like, > 0; < 1 with a log factor)."""
        p = np.asarray(parameter, dtype=np.float64)
        check_positive("parameter", p)
        out = self.prefactor * p**self.exponent
        if self.log_factor is not None:
            if np.any(p >= 1):
                raise ValueError("`parameter` must be < 1 with a log factor (log(1/p) > 0).")
            out = out * np.log(1.0 / p) ** self.log_factor
        return out

    def __str__(self) -> str:
        pct = f"{100 * self.confidence:g}%"
        half = 0.5 * (self.interval[1] - self.interval[0])
        text = (
            f"exponent {self.exponent:.6g} ± {half:.3g} ({pct} CI), prefactor {self.prefactor:.6g} "
            f"[{self.prefactor_interval[0]:.6g}, {self.prefactor_interval[1]:.6g}], "
            f"r^2 = {self.r_squared:.6f}, n = {self.n}"
        )
        if self.log_factor is not None:
            text += f", with log factor (log 1/p)^{self.log_factor:g}"
        if math.isfinite(self.scatter_stderr):
            s_half = 0.5 * (self.scatter_interval[1] - self.scatter_interval[0])
            text += f"; from the scatter of repeats: ± {s_half:.3g} ({pct} CI, {self.n_values} values)"
        return text


def fit_scaling(parameters, times, *, confidence: float = 0.95, log_factor=None) -> ScalingFit:
    r"""Fit the power law $t = C\,p^\gamma$ (or $t = C\,p^\gamma(\ln(1/p))^k$ with ``log_factor``
    $= k$ given) by ordinary least squares of $\ln t - k\ln\ln(1/p)$ on $\ln p$.

    With $x = \ln p$, $y = \ln t - k\ln\ln(1/p)$: $\hat\gamma = S_{xy}/S_{xx}$,
    $\ln\hat C = \bar y - \hat\gamma\bar x$, $s^2 = \sum_i r_i^2/(n - 2)$,
    $\mathrm{se}(\hat\gamma) = s/\sqrt{S_{xx}}$, $\mathrm{se}(\ln\hat C) = s\sqrt{1/n + \bar x^2/S_{xx}}$,
    and the intervals are $\pm t_{n-2,(1+c)/2}$ standard errors (exact for Gaussian scatter of
    $\ln t$). Repeated measurements at one parameter value (seeds) are passed either as repeated
    entries of ``parameters`` or as a 2-D ``times``; then the scatter between repeats gives a
    second, model-free standard error (pure error, $n - $ ``n_values`` degrees of freedom) and a
    lack-of-fit F test.

    **Arguments:**

    - ``parameters``: $p$, 1-D, each > 0 (< 1 with ``log_factor``), at least two distinct values.
    - ``times``: $t$, each > 0; shape ``(n,)`` matching ``parameters``, or ``(n, repeats)``.
    - ``confidence``: the level of the intervals, in (0, 1) (default 0.95).
    - ``log_factor``: $k$ (a real) to divide out $(\ln(1/p))^k$ first; None (default) for none.

    **Returns:** a ``ScalingFit``.
    """
    p = np.asarray(parameters, dtype=np.float64)
    t = np.asarray(times, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"`parameters` must be 1-D; got shape {p.shape}.")
    if t.ndim not in (1, 2) or t.shape[0] != p.shape[0]:
        raise ValueError(
            f"`times` must have shape (len(parameters),) or (len(parameters), repeats) = ({p.shape[0]}, ...); "
            f"got shape {t.shape}."
        )
    check_finite("parameters", p)
    check_finite("times", t)
    check_positive("parameters", p)
    check_positive("times", t)
    confidence = check_real("confidence", confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must lie in (0, 1); got {confidence!r}.")
    if log_factor is not None:
        log_factor = check_real("log_factor", log_factor)
        if np.any(p >= 1):
            raise ValueError(
                f"`parameters` must be < 1 when `log_factor` is given (log(1/p) > 0); got {p[p >= 1]}."
            )
    if t.ndim == 2:
        p = np.repeat(p, t.shape[1])
        t = t.reshape(-1)
    n = t.shape[0]
    if n < 3:
        raise ValueError(f"`times` must hold at least 3 points for a fit with error bars; got {n}.")
    values, group = np.unique(p, return_inverse=True)
    if values.shape[0] < 2:
        raise ValueError(f"`parameters` must take at least 2 distinct values; got only {values}.")

    x = np.log(p)
    y = np.log(t)
    if log_factor is not None:
        y = y - log_factor * np.log(np.log(1.0 / p))
    x_mean, y_mean = x.mean(), y.mean()
    sxx = float(np.sum((x - x_mean) ** 2))
    exponent = float(np.sum((x - x_mean) * (y - y_mean)) / sxx)
    log_prefactor = float(y_mean - exponent * x_mean)
    residuals = y - log_prefactor - exponent * x
    rss = float(np.sum(residuals**2))
    tss = float(np.sum((y - y_mean) ** 2))
    dof = n - 2
    s2 = rss / dof
    stderr = math.sqrt(s2 / sxx)
    log_prefactor_stderr = math.sqrt(s2 * (1.0 / n + x_mean**2 / sxx))
    quantile = float(scipy.stats.t.ppf(0.5 * (1.0 + confidence), dof))
    r_squared = 1.0 - rss / tss if tss > 0 else 1.0

    n_values = values.shape[0]
    scatter_stderr, scatter_interval, lack_of_fit = math.nan, (math.nan, math.nan), math.nan
    dof_pure = n - n_values
    if dof_pure > 0:
        group_mean = np.bincount(group, weights=y) / np.bincount(group)
        ss_pure = float(np.sum((y - group_mean[group]) ** 2))
        s2_pure = ss_pure / dof_pure
        scatter_stderr = math.sqrt(s2_pure / sxx)
        q_pure = float(scipy.stats.t.ppf(0.5 * (1.0 + confidence), dof_pure))
        scatter_interval = (exponent - q_pure * scatter_stderr, exponent + q_pure * scatter_stderr)
        dof_lack = n_values - 2
        if dof_lack > 0 and s2_pure > 0:
            f_stat = max(rss - ss_pure, 0.0) / dof_lack / s2_pure
            lack_of_fit = float(scipy.stats.f.sf(f_stat, dof_lack, dof_pure))

    return ScalingFit(
        exponent=exponent,
        stderr=stderr,
        interval=(exponent - quantile * stderr, exponent + quantile * stderr),
        prefactor=math.exp(log_prefactor),
        prefactor_interval=(
            math.exp(log_prefactor - quantile * log_prefactor_stderr),
            math.exp(log_prefactor + quantile * log_prefactor_stderr),
        ),
        log_prefactor=log_prefactor,
        log_prefactor_stderr=log_prefactor_stderr,
        r_squared=r_squared,
        residuals=residuals,
        n=n,
        confidence=confidence,
        log_factor=log_factor,
        n_values=n_values,
        scatter_stderr=scatter_stderr,
        scatter_interval=scatter_interval,
        lack_of_fit_pvalue=lack_of_fit,
        parameters=p,
        times=t,
    )
