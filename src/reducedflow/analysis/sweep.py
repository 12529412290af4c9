r"""Parameter sweeps: one system solved over a grid of parameter values by ``jax.vmap`` over
systems (they are PyTrees), in fixed-size chunks, with a status per grid point.

A point whose parameters are rejected by the system (its ``__check_init__``) or whose solve
fails (the state blows up, the step budget runs out) is recorded with its status and NaN
states; the other points are unaffected. Built on the batched integration behind
``reducedflow.solve_many`` (same solver choice, tolerances and compilation cache).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_integer
from .._save_times import resolve_save_times
from .._solve import _as_state, _batched_integrate, _check_common, _resolve_diffrax_solver, _run_compiled
from .._system import AbstractSystem
from .._trajectory import _leaf_name

#: Per-point statuses a sweep can report.
STATUSES = ("success", "invalid_parameters", "non_finite_state", "max_steps_reached", "step_size_collapse",
            "solver_failure")


def _grid(over: dict) -> tuple[list[str], list[np.ndarray]]:
    if not isinstance(over, dict) or not over:
        raise ValueError(f"`over` must be a non-empty dict {{field name: values}}; got {over!r}.")
    names, axes = [], []
    for name, values in over.items():
        if not isinstance(name, str):
            raise ValueError(f"`over` keys must be field names (strings); got {name!r}.")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError(f"`over[{name!r}]` must hold at least one value.")
        if not np.all(np.isfinite(values)):
            raise ValueError(f"`over[{name!r}]` must be finite; got {values}.")
        names.append(name)
        axes.append(values)
    return names, axes


def _member(system: AbstractSystem, names, values):
    """``system`` with the named fields replaced, through ``__init__`` (converters and
    ``__check_init__`` run): ``(system, None)`` or ``(None, message)`` if rejected."""
    try:
        member = dataclasses.replace(system, **dict(zip(names, values)))
    except ValueError as err:
        return None, str(err)
    for name in names:
        if not eqx.is_array(getattr(member, name)) or np.shape(getattr(member, name)) != ():
            raise ValueError(
                f"`over`: {type(system).__name__}.{name} must be a scalar array field to be swept; it is "
                f"{type(getattr(member, name)).__name__} with shape {np.shape(getattr(member, name))}."
            )
    return member, None


def _stack(members):
    """A batch of systems (same structure) as one system whose array leaves have a leading
    batch axis."""
    dynamic, static = eqx.partition(members[0], eqx.is_array)
    leaves = [jax.tree_util.tree_leaves(eqx.filter(m, eqx.is_array)) for m in members]
    stacked = [jnp.stack([jnp.asarray(l[i]) for l in leaves]) for i in range(len(leaves[0]))]
    treedef = jax.tree_util.tree_structure(dynamic)
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, stacked), static)


def _status_of(result_code: int, y_final_leaves, steps: int, accepted: int, rejected: int, max_steps: int) -> str:
    """The status of one grid point, classified like ``solve`` does."""
    from .._solve import _classify

    message = "maximum number of solver steps" if steps >= max_steps else ""
    return _classify(result_code == int(dfx.RESULTS.successful._value), message, y_final_leaves, accepted, rejected)


def sweep(
    system: AbstractSystem,
    over: dict,
    y0,
    t1: float,
    *,
    t0: float = 0.0,
    saveat=None,
    solver=None,
    stepsize_controller=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 10_000,
    chunk_size: int = 256,
    args: Any = None,
):
    r"""Solve ``system`` at every point of the grid ``over`` (outer product of the value
    lists) from the same ``y0``: a parameter sweep as ``jax.vmap`` over systems, compiled
    once and run in chunks of ``chunk_size`` points (the last chunk is padded, so every chunk
    reuses one executable).

    **Arguments:**

    - ``system``: an ``AbstractSystem``; the fields not swept keep its values.
    - ``over``: ``{field name: values}``, e.g. ``{"epsilon": np.geomspace(1e-4, 1e-1, 10)}``;
      each named field must be a field of the system that takes a number. Several fields give
      the outer-product grid, in the dict's order.
    - ``y0``, ``t1``, ``t0``, ``saveat``, ``solver``, ``stepsize_controller``, ``rtol``,
      ``atol``, ``max_steps``, ``args``: as in ``reducedflow.solve``. The solver is chosen
      once for the whole grid (stiff if any point is stiff).
    - ``chunk_size``: grid points per compiled call (>= 1): bounds the memory of a sweep.

    **Returns:** an ``xarray.Dataset`` with one dimension per swept field plus ``time``: the
    state parts and observables (NaN at failed points), ``status`` (one of ``STATUSES``) and
    ``message`` per point, ``t_final`` and ``steps`` per point; attributes: system, solver,
    ``compile_seconds``, ``run_seconds``, ``n_failed``.
    """
    import xarray as xr

    names, axes = _grid(over)
    fields = {f.name for f in dataclasses.fields(system)} if dataclasses.is_dataclass(system) else set()
    for name in names:
        if name not in fields:
            raise ValueError(
                f"`over`: {name!r} is not a field of {type(system).__name__}; fields: {sorted(fields)}."
            )
    t0, t1, max_steps = _check_common(system, t0, t1, rtol, atol, max_steps)
    chunk_size = check_integer("chunk_size", chunk_size)
    y0 = _as_state(y0, system)
    system.check_state(y0)
    ts = resolve_save_times(saveat, t0, t1)
    shape = tuple(a.size for a in axes)
    points = list(itertools.product(*axes))
    total = len(points)

    status = np.empty(total, dtype=object)
    message = np.full(total, "", dtype=object)
    members = []
    valid = []
    for i, values in enumerate(points):
        member, error = _member(system, names, values)
        if member is None:
            status[i], message[i] = "invalid_parameters", error
        else:
            members.append(member)
            valid.append(i)
    if not members:
        raise ValueError(f"`over`: every grid point was rejected by {type(system).__name__}; first: {message[0]}")
    batch_all = _stack(members)
    solver, controller = _resolve_diffrax_solver(batch_all, solver, stepsize_controller, rtol, atol)

    per_point = {}
    t_final = np.full(total, np.nan)
    steps = np.zeros(total, dtype=np.int64)
    compile_seconds = run_seconds = 0.0
    valid = np.array(valid)
    size = min(chunk_size, len(members))
    for begin in range(0, len(members), size):
        idx = np.arange(begin, min(begin + size, len(members)))
        padded = np.concatenate([idx, np.full(size - idx.size, idx[-1])])
        chunk = jax.tree_util.tree_map(lambda a: a[padded] if eqx.is_array(a) else a, batch_all)
        out, c_s, r_s = _run_compiled(
            _batched_integrate,
            dict(system=chunk, y0=y0, ts=jnp.asarray(ts), t0=jnp.float64(t0), t1=jnp.float64(t1), args=args,
                 solver=solver, controller=controller),
            dict(max_steps=max_steps, dense=False, progress_meter=dfx.NoProgressMeter(), y0_batched=False),
        )
        compile_seconds += c_s
        run_seconds += r_s
        n = idx.size
        codes = np.asarray(out["result"]._value)[:n]
        finals = [np.asarray(l)[:n] for l in jax.tree_util.tree_leaves(out["y_final"])]
        for j in range(n):
            k = valid[idx[j]]
            st = _status_of(int(codes[j]), [f[j] for f in finals], int(out["steps"][j]), int(out["accepted"][j]),
                            int(out["rejected"][j]), max_steps)
            status[k] = st
            t_final[k] = float(out["t_final"][j])
            steps[k] = int(out["steps"][j])
            if st != "success":
                message[k] = (f"{st} at t = {t_final[k]:.6g} (t1 = {t1:g}) after {steps[k]} steps; solve this "
                              "point alone with reducedflow.solve for a diagnosis")
        flat = {}
        for path, leaf in jax.tree_util.tree_flatten_with_path(out["ys"])[0]:
            flat[_leaf_name(path)] = np.asarray(leaf)[:n]
        for key, value in out["observables"].items():
            flat[key] = np.asarray(value)[:n]
        for key, value in flat.items():
            if key not in per_point:
                per_point[key] = np.full((total,) + value.shape[1:], np.nan)
            failed = np.array([status[valid[i]] != "success" for i in idx])
            value = np.where(failed.reshape((-1,) + (1,) * (value.ndim - 1)), np.nan, value)
            per_point[key][valid[idx]] = value

    dims = tuple(names)
    data = {}
    for key, value in per_point.items():
        value = value.reshape(shape + value.shape[1:])
        extra = tuple(f"{key}_dim{i}" for i in range(value.ndim - len(shape) - 1))
        data[key] = (dims + ("time",) + extra, value)
    data["status"] = (dims, status.astype(str).reshape(shape))
    data["message"] = (dims, message.astype(str).reshape(shape))
    data["t_final"] = (dims, t_final.reshape(shape))
    data["steps"] = (dims, steps.reshape(shape))
    coords = {name: axis for name, axis in zip(names, axes)}
    coords["time"] = np.asarray(ts)
    n_failed = int(np.sum(status != "success"))
    return xr.Dataset(
        data,
        coords=coords,
        attrs=dict(system=type(system).__name__, solver=type(solver).__name__, rtol=float(rtol), atol=float(atol),
                   t1=float(t1), chunk_size=size, compile_seconds=compile_seconds, run_seconds=run_seconds,
                   n_points=total, n_failed=n_failed),
    )
