"""The result of a solve: times, states, observables, solver statistics and status."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np

from ._events import EventTimes


def _leaf_name(path) -> str:
    name = "".join(
        str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) + "_" for k in path
    ).rstrip("_")
    return name or "y"


@dataclasses.dataclass(frozen=True)
class SolverStats:
    """What the solver did. ``steps`` counts attempted steps, ``accepted + rejected == steps``
    for diffrax; scipy does not report rejected steps (``None``). ``compile_seconds`` is the
    tracing and XLA compilation time of this call (0 when a cached compilation was reused),
    ``run_seconds`` the time of the solve itself."""

    solver: str
    steps: int
    accepted: int
    rejected: int | None
    compile_seconds: float
    run_seconds: float
    function_evaluations: int | None = None


@dataclasses.dataclass(frozen=True)
class Trajectory:
    """The solution of ``solve``.

    **Attributes:**

    - ``ts``: save times, shape ``(T,)``.
    - ``ys``: the state PyTree with a leading time axis (and a leading batch axis before it
      for ``solve_many``); entries after a failure are NaN.
    - ``observables``: dict of the system's observables on the same grid.
    - ``events``: dict ``name -> EventTimes`` for each requested ``Crossing``.
    - ``stats``: ``SolverStats``.
    - ``status``: ``"success"`` or the failure (``"max_steps_reached"``, ``"non_finite_state"``,
      ``"step_size_collapse"``, ``"solver_failure"``); ``message`` explains it.
    - ``t_final``: the time the integration reached.
    - ``system``: the system that was solved.
    """

    ts: np.ndarray
    ys: Any
    observables: dict[str, np.ndarray]
    events: dict[str, EventTimes]
    stats: SolverStats
    status: str
    message: str
    t_final: float
    system: Any
    batched: bool = False
    interpolation: Any = dataclasses.field(default=None, repr=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "success"

    @property
    def y_final(self):
        """The state at the last save time."""
        return jax.tree_util.tree_map(
            lambda leaf: np.take(leaf, -1, axis=1 if self.batched else 0), self.ys
        )

    def evaluate(self, t):
        """The state at time(s) ``t`` from the dense output (requires ``solve(..., dense=True)``)."""
        if self.interpolation is None:
            raise ValueError("`evaluate` needs dense output: call solve(..., dense=True).")
        return self.interpolation(np.asarray(t, dtype=np.float64))

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The state as a flat dict ``name -> array`` (names from the PyTree path)."""
        flat = jax.tree_util.tree_flatten_with_path(self.ys)[0]
        return {_leaf_name(path): np.asarray(leaf) for path, leaf in flat}

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimension ``time`` (and ``batch`` for ``solve_many``),
        one variable per state part and observable; solver stats and status as attributes,
        event times as ``event_<name>`` variables."""
        import xarray as xr

        lead = ("batch", "time") if self.batched else ("time",)
        variables = {}
        for name, arr in {**self.state_arrays(), **{k: np.asarray(v) for k, v in self.observables.items()}}.items():
            extra = tuple(f"{name}_dim{i}" for i in range(arr.ndim - len(lead)))
            variables[name] = (lead + extra, arr)
        for name, ev in self.events.items():
            variables[f"event_{name}"] = (f"event_{name}_index", ev.times)
            variables[f"event_{name}_component"] = (f"event_{name}_index", ev.components)
            variables[f"event_{name}_direction"] = (f"event_{name}_index", ev.directions)
        attrs = {
            "status": self.status,
            "message": self.message,
            "t_final": self.t_final,
            "system": type(self.system).__name__,
        }
        for key, value in dataclasses.asdict(self.stats).items():
            attrs[f"solver_{key}"] = -1 if value is None else value
        return xr.Dataset(variables, coords={"time": self.ts}, attrs=attrs)

    def plot(self, names=None, ax=None, logx: bool = True):
        """Plot state parts and observables against time (log time by default).

        **Arguments:**

        - ``names``: which state parts / observables to plot (default: all state parts).
        - ``ax``: a matplotlib Axes to draw on (default: a new figure).
        - ``logx``: log-scaled time axis (times <= 0 are dropped).

        **Returns:** the matplotlib Axes.
        """
        import matplotlib.pyplot as plt

        series = {**self.state_arrays(), **{k: np.asarray(v) for k, v in self.observables.items()}}
        names = list(self.state_arrays()) if names is None else list(names)
        unknown = [n for n in names if n not in series]
        if unknown:
            raise ValueError(f"`names` must be among {sorted(series)}; got unknown {unknown}.")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 4))
        keep = self.ts > 0 if logx else np.ones_like(self.ts, dtype=bool)
        for name in names:
            arr = series[name]
            if self.batched:
                arr = np.moveaxis(arr, 0, 1)  # time first, batch in the columns
            arr = arr.reshape(arr.shape[0], -1)[keep]
            labels = [name] if arr.shape[1] == 1 else [f"{name}[{i}]" for i in range(arr.shape[1])]
            for column, label in zip(arr.T, labels):
                ax.plot(self.ts[keep], column, label=None if self.batched else label)
        if logx:
            ax.set_xscale("log")
        ax.set_xlabel("t")
        if not self.batched and sum(series[n][0].size for n in names) <= 12:
            ax.legend(fontsize="small")
        return ax
