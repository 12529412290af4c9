"""``solve(..., backend="scipy")``: the same system through ``scipy.integrate.solve_ivp``, with
the right-hand side and its Jacobian compiled by JAX. For cross-checks and benchmarks."""

from __future__ import annotations

import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from ._checks import check_in
from ._events import EventTimes
from ._system import is_stiff
from ._trajectory import SolverStats, Trajectory

SCIPY_METHODS = ("Radau", "BDF", "LSODA", "RK45", "DOP853")


def _layout(y0):
    leaves, treedef = jax.tree_util.tree_flatten(y0)
    return treedef, tuple(tuple(np.shape(x)) for x in leaves)


def _unflatten(flat, layout):
    treedef, shapes = layout
    sizes = [int(np.prod(s)) for s in shapes]
    parts = jnp.split(flat, np.cumsum(sizes)[:-1]) if len(sizes) > 1 else [flat]
    return jax.tree_util.tree_unflatten(treedef, [p.reshape(s) for p, s in zip(parts, shapes)])


def _flatten(tree):
    return jnp.concatenate([jnp.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


_CALLBACKS: dict = {}


def _callbacks(system, layout, args):
    """Jitted ``(t, y_flat) -> f`` and ``-> df/dy`` for scipy, with the system's arrays bound
    once: scipy calls them thousands of times, where ``eqx.filter_jit``'s per-call overhead
    (~100 us) would dominate. Compilations are cached by system structure and state layout."""
    dyn, stat = eqx.partition((system, args), eqx.is_array)
    stat_leaves, stat_def = jax.tree_util.tree_flatten(stat)
    dyn_leaves, dyn_def = jax.tree_util.tree_flatten(dyn)
    key = (stat_def, tuple(stat_leaves), dyn_def, tuple(np.shape(x) for x in dyn_leaves), layout)
    if key not in _CALLBACKS:

        def rhs(dyn_part, t, y):
            system, args = eqx.combine(dyn_part, stat)
            return _flatten(system.vector_field(t, _unflatten(y, layout), args))

        _CALLBACKS[key] = (jax.jit(rhs), jax.jit(jax.jacfwd(rhs, argnums=2)))
    rhs, jac = _CALLBACKS[key]
    return (lambda t, y: np.asarray(rhs(dyn, t, y))), (lambda t, y: np.asarray(jac(dyn, t, y)))


@eqx.filter_jit
def _gap(crossing, system, t, y, layout):
    return crossing.gap(t, _unflatten(y, layout), system)


@eqx.filter_jit
def _observables(system, ts, ys_flat, layout):
    ys = jax.vmap(lambda y: _unflatten(y, layout))(ys_flat)
    return ys, jax.vmap(system.observables)(ts, ys)


def solve_with_scipy(system, y0, ts, t0, t1, method, rtol, atol, events, dense, args) -> Trajectory:
    """Solve with ``scipy.integrate.solve_ivp`` (see ``solve``)."""
    if method is None:
        method = "Radau" if is_stiff(system) else "LSODA"
    check_in("solver", method, SCIPY_METHODS)
    layout = _layout(y0)
    y0_flat = np.asarray(_flatten(y0))
    start = time.perf_counter()
    fun, jac = _callbacks(system, layout, args)
    # First evaluations compile (or hit the cache); counted as compile time. scipy passes t as
    # np.float64, which JAX traces separately from a Python float: warm up with that type.
    fun(np.float64(t0), y0_flat)
    if method in ("Radau", "BDF", "LSODA"):
        jac(np.float64(t0), y0_flat)
    for event in events:
        np.asarray(_gap(event, system, np.asarray(t0), y0_flat, layout))
    compile_s = time.perf_counter() - start

    scipy_events, owners = [], []
    for event in events:
        n_comp = int(np.asarray(_gap(event, system, np.asarray(t0), y0_flat, layout)).size)
        for comp in range(n_comp):
            # Times go in as 0-d arrays: filter_jit treats a Python float as static.
            def g(t, y, event=event, comp=comp):
                return float(_gap(event, system, np.asarray(t), y, layout)[comp])

            g.direction = float(event.direction)
            scipy_events.append(g)
            owners.append((event.name, comp))

    # Explicit methods take no Jacobian (scipy warns if one is passed, even None).
    implicit = {"jac": jac} if method in ("Radau", "BDF", "LSODA") else {}
    start = time.perf_counter()
    result = solve_ivp(
        fun, (t0, t1), y0_flat, method=method, rtol=rtol, atol=atol, dense_output=True,
        events=scipy_events or None, **implicit,
    )
    run_s = time.perf_counter() - start

    t_final = float(result.t[-1])
    ys_flat = np.full((ts.size, y0_flat.size), np.nan)
    reached = ts <= t_final
    if result.sol is not None and np.any(reached):
        ys_flat[reached] = result.sol(ts[reached]).T
    ys, observables = _observables(system, jnp.asarray(ts), jnp.asarray(ys_flat), layout)

    found = {}
    for event in events:
        times, comps, dirs = [], [], []
        for i, (name, comp) in enumerate(owners):
            if name != event.name:
                continue
            for t_hit in result.t_events[i]:
                slope = np.sign(
                    float(_gap(event, system, np.asarray(t_hit), result.sol(min(t_hit + 1e-9 * max(1.0, abs(t_hit)), t_final)), layout)[comp])
                )
                times.append(t_hit)
                comps.append(comp)
                dirs.append(slope if slope != 0 else float(event.direction))
        order = np.argsort(times, kind="stable")
        found[event.name] = EventTimes(
            np.asarray(times, float)[order], np.asarray(comps, int)[order], np.asarray(dirs, float)[order]
        )

    ok = bool(result.success)
    finite = np.all(np.isfinite(result.y[:, -1]))
    status = "success" if ok and finite else ("non_finite_state" if not finite else "solver_failure")
    message = "success" if status == "success" else (
        f"scipy {method} failed at t = {t_final:.6g} (t1 = {t1:.6g}): {result.message}. "
        "Try the diffrax backend, another method, or looser tolerances."
    )
    steps = len(result.t) - 1
    stats = SolverStats(f"scipy-{method}", steps, steps, None, compile_s, run_s, int(result.nfev))
    interpolation = None
    if dense and result.sol is not None:
        sol = result.sol

        def interpolation(t):
            t = np.asarray(t, float)
            flat = sol(np.atleast_1d(t)).T
            tree = jax.tree_util.tree_map(np.asarray, jax.vmap(lambda y: _unflatten(y, layout))(jnp.asarray(flat)))
            return jax.tree_util.tree_map(lambda a: a[0], tree) if t.ndim == 0 else tree

    return Trajectory(
        ts=ts,
        ys=jax.tree_util.tree_map(np.asarray, ys),
        observables={k: np.asarray(v) for k, v in observables.items()},
        events=found,
        stats=stats,
        status=status,
        message=message,
        t_final=t_final,
        system=system,
        interpolation=interpolation,
    )
