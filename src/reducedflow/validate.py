r"""The validation layer: train a finite network, solve its reduced system on the same times,
and measure the gap.

Every family contributes a ``validate_<family>(...)`` function that returns a
``ValidationResult`` (one shared type: named order parameters from the reduced solve and from
the network on one time grid, with the errors), and ``convergence_study`` sweeps one argument
of any such function (the learning rate, the width, the number of samples) and fits the order
at which the gap closes. ``convergence_in_learning_rate`` is the sweep over the GD step, whose
gap to the gradient flow is $O(\eta)$ (explicit Euler).

Families so far: deep linear networks (``validate_linear_modes``; theory
``linear_networks.md`` §2, §3, §6 and §11 items 3, 9).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._checks import check_finite, check_integer, check_positive, check_real

__all__ = [
    "ConvergenceResult",
    "ValidationResult",
    "convergence_in_learning_rate",
    "convergence_study",
    "validate_linear_modes",
]


# ----------------------------------------------------------------------------------------------
# Shared result types


@dataclasses.dataclass(frozen=True)
class ValidationResult:
    """A reduced trajectory and the matching finite-network measurement on one time grid.

    **Attributes:**

    - ``family``: which validation produced it (e.g. ``"linear_modes"``).
    - ``times``: the common time grid, shape ``(T,)``.
    - ``reduced``: ``name -> array`` of order parameters from the reduced solve, each with a
      leading time axis.
    - ``network``: the same names measured on the finite network.
    - ``parameters``: the settings of the run (plain numbers, strings, tuples).
    - ``diagnostics``: further network-side time series (loss, cross-talk, ...), ``name ->
      array`` with a leading time axis.
    - ``dims``: optional ``name -> tuple`` of dimension names for the non-time axes of an
      order parameter (used by ``to_xarray``; default ``<name>_dim<i>``).
    """

    family: str
    times: np.ndarray
    reduced: dict[str, np.ndarray]
    network: dict[str, np.ndarray]
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    diagnostics: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    dims: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if set(self.reduced) != set(self.network):
            raise ValueError(
                f"`reduced` and `network` must name the same order parameters; got "
                f"{sorted(self.reduced)} and {sorted(self.network)}."
            )
        for name in self.reduced:
            a, b = np.shape(self.reduced[name]), np.shape(self.network[name])
            if a != b or a[:1] != np.shape(self.times):
                raise ValueError(
                    f"`reduced['{name}']` and `network['{name}']` must both have shape "
                    f"({len(self.times)}, ...); got {a} and {b}."
                )

    @property
    def error(self) -> dict[str, np.ndarray]:
        """``|network - reduced|`` per order parameter, with the time axis."""
        return {k: np.abs(np.asarray(self.network[k]) - np.asarray(self.reduced[k])) for k in self.reduced}

    @property
    def max_abs_error(self) -> dict[str, np.ndarray]:
        """The largest absolute error over time, per order parameter and component (the
        time axis is reduced; e.g. one number per mode)."""
        return {k: np.max(v, axis=0) for k, v in self.error.items()}

    @property
    def max_error(self) -> float:
        """The largest absolute error over time, components and order parameters."""
        return float(max(np.max(v) for v in self.error.values()))

    def _dims(self, name: str, arr: np.ndarray) -> tuple[str, ...]:
        extra = self.dims.get(name) or tuple(f"{name}_dim{i}" for i in range(arr.ndim - 1))
        return ("time",) + tuple(extra)

    def to_xarray(self):
        """An ``xarray.Dataset`` on dimension ``time`` with ``reduced_<name>``,
        ``network_<name>``, ``error_<name>``, ``max_abs_error_<name>`` and the diagnostics;
        ``family`` and the scalar/tuple parameters as attributes."""
        import xarray as xr

        variables = {}
        for name in self.reduced:
            reduced, network = np.asarray(self.reduced[name]), np.asarray(self.network[name])
            dims = self._dims(name, reduced)
            variables[f"reduced_{name}"] = (dims, reduced)
            variables[f"network_{name}"] = (dims, network)
            variables[f"error_{name}"] = (dims, np.abs(network - reduced))
            variables[f"max_abs_error_{name}"] = (dims[1:], np.max(np.abs(network - reduced), axis=0))
        for name, value in self.diagnostics.items():
            value = np.asarray(value)
            variables[name] = (("time",) + tuple(f"{name}_dim{i}" for i in range(value.ndim - 1)), value)
        attrs = {"family": self.family, "max_error": self.max_error}
        attrs.update({k: _attr(v) for k, v in self.parameters.items() if _attr(v) is not None})
        return xr.Dataset(variables, coords={"time": np.asarray(self.times)}, attrs=attrs)


def _attr(value):
    """A parameter as a netCDF-friendly attribute (number, string or 1-D array), or None."""
    if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
        return value
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    if arr.ndim <= 1 and (np.issubdtype(arr.dtype, np.number) or arr.dtype.kind in "US"):
        return arr
    return None


@dataclasses.dataclass(frozen=True)
class ConvergenceResult:
    r"""The gap between finite networks and the reduced system as one argument varies.

    **Attributes:**

    - ``parameter``: the name of the varied argument (``"learning_rate"``, ``"widths"``, ...).
    - ``values``: its values, in the order run (a positive scalar measure of each: for a
      learning rate the rate itself).
    - ``errors``: ``results[i].max_error`` for each value.
    - ``results``: the ``ValidationResult`` of each run.

    ``order`` is the least-squares slope $p$ of $\log(\text{error})$ against
    $\log(\text{value})$, i.e. error $\propto$ value$^p$: $p \approx 1$ for the learning rate
    (Euler), $p \approx -1/2$ for a width with random-matrix fluctuations.
    """

    parameter: str
    values: np.ndarray
    errors: np.ndarray
    results: tuple[ValidationResult, ...]

    @property
    def ratios(self) -> np.ndarray:
        """Successive error ratios ``errors[i] / errors[i + 1]`` (2 for first order when the
        value is halved each time)."""
        return self.errors[:-1] / self.errors[1:]

    @property
    def order(self) -> float:
        """Fitted exponent $p$ in error $\\propto$ value$^p$."""
        return float(np.polyfit(np.log(self.values), np.log(self.errors), 1)[0])

    def to_xarray(self):
        """An ``xarray.Dataset`` with ``error`` on dimension ``parameter_value`` and the
        fitted ``order`` as an attribute."""
        import xarray as xr

        return xr.Dataset(
            {"error": ("parameter_value", self.errors)},
            coords={"parameter_value": self.values},
            attrs={"parameter": self.parameter, "order": self.order, "family": self.results[0].family},
        )


def convergence_study(
    validate: Callable[..., ValidationResult],
    parameter: str,
    values: Sequence,
    *,
    measure: Callable[[Any], float] | None = None,
    **fixed,
) -> ConvergenceResult:
    """Run ``validate(**fixed, **{parameter: value})`` for each value and collect the gaps.

    **Arguments:**

    - ``validate``: a ``validate_*`` function of this module (or any function returning a
      ``ValidationResult``).
    - ``parameter``: the keyword argument of ``validate`` to vary.
    - ``values``: at least two values for it.
    - ``measure``: maps a value to the positive number used for ``ConvergenceResult.values``
      and the fitted order (default: the value itself, which must be a positive number; e.g.
      ``measure=lambda widths: widths[1]`` to sweep hidden widths).
    - ``fixed``: the other keyword arguments of ``validate`` (keep the same ``key`` to
      compare runs on the same data and initialisation).

    **Returns:** a ``ConvergenceResult``.
    """
    values = list(values)
    if len(values) < 2:
        raise ValueError(f"`values` must hold at least two values of `{parameter}`; got {values!r}.")
    if parameter in fixed:
        raise ValueError(f"`parameter` {parameter!r} is varied, so it must not also be passed as a fixed argument.")
    measured = np.asarray([measure(v) if measure is not None else v for v in values], dtype=float)
    check_positive("values", measured)
    results = tuple(validate(**fixed, **{parameter: value}) for value in values)
    errors = np.asarray([res.max_error for res in results])
    return ConvergenceResult(parameter, measured, errors, results)


def convergence_in_learning_rate(
    validate: Callable[..., ValidationResult], learning_rates: Sequence[float], **fixed
) -> ConvergenceResult:
    """``convergence_study(validate, "learning_rate", learning_rates, **fixed)``: the gap
    between gradient descent with step $\\eta$ and the gradient flow. For full-batch GD
    it is $O(\\eta)$: halving $\\eta$ halves the error (``ratios`` near 2, ``order`` near 1).

    Example::

        study = convergence_in_learning_rate(
            validate_linear_modes, [0.02, 0.01, 0.005],
            singular_values=[3.0, 1.5, 0.5], widths=(5, 6, 4), t1=10.0, key=0,
        )
        study.ratios, study.order
    """
    return convergence_study(validate, "learning_rate", learning_rates, **fixed)


# ----------------------------------------------------------------------------------------------
# Deep linear networks


def _records_for(t1: float, learning_rate: float, n_records: int) -> int:
    """Steps per record so that ``n_records`` records reach at least ``t1``; exact multiples
    (up to rounding of t1 / (lr n)) give exactly ``t1``, so halving ``lr`` keeps the grid."""
    ratio = t1 / (learning_rate * n_records)
    nearest = round(ratio)
    if nearest >= 1 and abs(ratio - nearest) <= 1e-9 * ratio:
        return int(nearest)
    return max(1, math.ceil(ratio))


def validate_linear_modes(
    singular_values,
    widths,
    *,
    learning_rate: float,
    t1: float,
    key,
    initial_strength=1e-2,
    n_samples: int | None = None,
    n_records: int = 100,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    progress: bool = False,
) -> ValidationResult:
    r"""A deep linear network trained by full-batch GD against its reduced mode system.

    Builds an exactly whitened ``synthetic_task`` with $\Sigma^{yx} = U\,\mathrm{diag}(s)\,V^\top$,
    initialises the network of ``widths`` aligned and balanced with every mode at
    ``initial_strength`` $u_0$ (theory §2, §6), trains it with ``train_gd`` and measures
    $u_\alpha(t) = (U^\top W_D\cdots W_1 V)_{\alpha\alpha}$ at $t = k\eta$. The reduced system,
    solved by ``reducedflow.solve`` on the same times with $\tau = 1$:

    $$D = 2:\ \dot u = 2u(s - u)\ (\texttt{BalancedModes}),\qquad
    D \ge 3:\ \dot u = D\,u^{2-2/D}(s - u)\ (\texttt{DeepModes}).$$

    For this initialisation the reduction is exact for gradient flow, so the gap is GD's
    discretisation error, $O(\eta)$ (use ``convergence_in_learning_rate``); the cross-talk
    $\max_{\alpha\ne\beta}|(U^\top WV)_{\alpha\beta}|$ stays at rounding level (diagnostic
    ``off_diagonal``).

    **Arguments:**

    - ``singular_values``: $s_\alpha$, positive, at most ``min(widths[0], widths[-1])`` of them.
    - ``widths``: $(N_1, \dots, N_{D+1})$ with $D \ge 2$; hidden widths >= the number of
      modes.
    - ``learning_rate``: GD step $\eta$ (> 0).
    - ``t1``: time horizon (> 0). The run records ``n_records`` times $k\eta$ evenly spaced up
      to ``t1`` (rounded up to a whole number of steps per record).
    - ``key``: a ``jax.random`` key or an integer seed (data, frames $U$, $V$, hidden frames).
    - ``initial_strength``: $u_0$, a positive scalar or one value per mode.
    - ``n_samples``: $P$ (default: ``widths[0]``, the fewest that whiten exactly).
    - ``n_records``: number of recorded times after $t = 0$ (integer >= 1).
    - ``rtol``, ``atol``: tolerances of the reduced solve.
    - ``progress``: print progress of the training.

    **Returns:** a ``ValidationResult`` with family ``"linear_modes"`` and one order parameter,
    ``"mode_strengths"`` (shape ``(T, r)``, dimension ``mode``); diagnostics ``loss`` and
    ``off_diagonal``; ``max_abs_error["mode_strengths"]`` is the error per mode.
    """
    from . import solve
    from .models.linear_modes import BalancedModes, DeepModes
    from ._random import generator
    from .networks.deep_linear import (
        check_singular_values,
        check_widths,
        init_deep_linear,
        synthetic_task,
        train_gd,
    )

    s = np.asarray(check_singular_values("singular_values", singular_values))
    widths = check_widths(widths)
    check_positive("learning_rate", learning_rate)
    t1 = check_real("t1", t1)
    check_positive("t1", t1)
    check_positive("initial_strength", initial_strength)
    n_records = check_integer("n_records", n_records)
    n_samples = widths[0] if n_samples is None else check_integer("n_samples", n_samples)
    depth = len(widths) - 1
    if depth < 2:
        raise ValueError(
            f"`widths` must describe at least two weight matrices (depth >= 2, the range of "
            f"BalancedModes/DeepModes); got {widths}."
        )
    u0 = np.broadcast_to(np.asarray(initial_strength, dtype=float), s.shape).copy()
    check_finite("initial_strength", u0)

    seeds = generator(key).integers(0, 2**31 - 1, size=2)
    task = synthetic_task(s, widths[0], widths[-1], n_samples, int(seeds[0]))
    network = init_deep_linear(widths, u0, int(seeds[1]), aligned_to=task)
    every = _records_for(t1, float(learning_rate), n_records)
    run = train_gd(network, task, learning_rate, every * n_records, record_every=every, progress=progress)

    system = BalancedModes(s) if depth == 2 else DeepModes(s, depth)
    traj = solve(system, u0, float(run.times[-1]), saveat=run.times, rtol=rtol, atol=atol)
    return ValidationResult(
        family="linear_modes",
        times=run.times,
        reduced={"mode_strengths": np.asarray(traj.ys)},
        network={"mode_strengths": run.mode_strengths},
        parameters={
            "singular_values": s,
            "widths": np.asarray(widths),
            "depth": depth,
            "learning_rate": float(learning_rate),
            "n_steps": int(run.steps[-1]),
            "n_samples": n_samples,
            "initial_strength": u0,
            "reduced_system": type(system).__name__,
            "reduced_solver": traj.stats.solver,
            "reduced_steps": traj.stats.steps,
            "train_seconds": run.run_seconds,
        },
        diagnostics={"loss": run.loss, "off_diagonal": run.off_diagonal},
        dims={"mode_strengths": ("mode",)},
    )
