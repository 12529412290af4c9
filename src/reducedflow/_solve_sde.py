"""Paths of Itô SDE systems: diffrax's general path (``solve``) and the fast ensemble
(``euler_maruyama``: fixed-step Euler–Maruyama in ``lax.scan``, vmapped over paths)."""

from __future__ import annotations

import math

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np

from ._checks import check_in, check_integer, check_positive, check_real
from ._random import as_key
from ._save_times import LinearTimes, resolve_save_times
from ._sde import AbstractSDESystem, ItoDriftForStratonovich, check_sde_solver
from ._trajectory import SolverStats, Trajectory


def _check_sde_inputs(system, y0, t0, t1, dt, n_paths, key):
    if not isinstance(system, AbstractSDESystem):
        raise ValueError(f"`system` must be an AbstractSDESystem; got {type(system).__name__}.")
    t0 = check_real("t0", t0)
    t1 = check_real("t1", t1)
    if not t1 > t0:
        raise ValueError(f"`t1` must be greater than `t0` = {t0}; got {t1}.")
    check_positive("dt", dt)
    if dt > t1 - t0:
        raise ValueError(f"`dt` must be at most t1 - t0 = {t1 - t0:g}; got {dt:g}.")
    n_paths = check_integer("n_paths", n_paths)
    n = system.state_size()
    y0 = jnp.asarray(y0, dtype=jnp.float64)
    if y0.shape == (n,):
        y0 = jnp.broadcast_to(y0, (n_paths, n))
    elif y0.shape != (n_paths, n):
        raise ValueError(f"`y0` must have shape ({n},) or (n_paths, {n}) = ({n_paths}, {n}); got {y0.shape}.")
    if not bool(jnp.all(jnp.isfinite(y0))):
        raise ValueError("`y0` must be finite.")
    keys = jr.split(as_key(key), n_paths)
    return y0, t0, t1, float(dt), n_paths, keys


def _status(ys, n_paths):
    bad = int(np.sum(~np.all(np.isfinite(ys.reshape(n_paths, -1)), axis=1)))
    if bad == 0:
        return "success", "success"
    return "non_finite_state", (
        f"{bad} of {n_paths} paths became non-finite (overflow): reduce `dt`, or use "
        "coordinates='log' / renormalise=True for linear multiplicative noise."
    )


# ----------------------------------------------------------------------------------------------
# diffrax path


def _diffrax_paths(system, y0, keys, ts, args, *, t0, t1, dt, solver, brownian, max_steps, noise_shape):
    drift = ItoDriftForStratonovich(system) if check_sde_solver(solver) == "stratonovich" else system
    levy = getattr(solver, "minimal_levy_area", dfx.BrownianIncrement)

    def one(y_start, key):
        if brownian == "virtual":
            bm = dfx.VirtualBrownianTree(t0, t1, tol=dt / 16, shape=noise_shape, key=key, levy_area=levy)
        else:
            bm = dfx.UnsafeBrownianPath(shape=noise_shape, key=key, levy_area=levy)
        terms = dfx.MultiTerm(
            dfx.ODETerm(drift.vector_field), dfx.ControlTerm(system.diffusion_matrix, bm)
        )
        sol = dfx.diffeqsolve(
            terms, solver, t0, t1, dt, y_start, args, saveat=dfx.SaveAt(ts=ts),
            stepsize_controller=dfx.ConstantStepSize(), max_steps=max_steps, throw=False,
            adjoint=dfx.ForwardMode() if brownian == "unsafe" else dfx.RecursiveCheckpointAdjoint(),
        )
        return sol.ys, sol.stats["num_steps"]

    ys, steps = jax.vmap(one)(y0, keys)
    observables = jax.vmap(jax.vmap(system.observables))(jnp.broadcast_to(ts, ys.shape[:2]), ys)
    return {"ys": ys, "steps": jnp.max(steps), "observables": observables}


def solve_sde(system, y0, t1, *, key, dt, t0=0.0, n_paths=1, saveat=None, solver=None,
              brownian="virtual", args=None, throw=True) -> Trajectory:
    r"""Integrate paths of the Itô SDE ``system`` with diffrax at the fixed step ``dt``
    (``solve`` calls this for an ``AbstractSDESystem``).

    **Arguments:**

    - ``system``: an ``AbstractSDESystem``.
    - ``y0``: initial state ``(n,)`` (shared) or ``(n_paths, n)``.
    - ``t1``, ``t0``: horizon.
    - ``key``: a ``jax.random`` key or integer seed; path ``i`` uses ``split(key, n_paths)[i]``.
    - ``dt``: the step (> 0).
    - ``n_paths``: number of independent paths.
    - ``saveat``: ``None`` (``LinearTimes(101)``), ``LinearTimes``/``LogTimes`` or an array.
    - ``solver``: ``diffrax.Euler()`` (default, Itô), ``diffrax.ItoMilstein()`` (scalar or
      diagonal noise only: it assumes commuting noise), or a Stratonovich solver (``Heun``,
      ``EulerHeun``, ``Midpoint``, ...), which gets the drift correction
      $-\tfrac12\sum_j(\partial g_j)g_j$ so the answer is still the Itô solution.
    - ``brownian``: ``"virtual"`` (``VirtualBrownianTree``: reproducible, queryable anywhere)
      or ``"unsafe"`` (``UnsafeBrownianPath``: faster, fixed steps only).

    **Returns:** a batched ``Trajectory`` whose ``ys`` has shape ``(n_paths, T, n)``.
    """
    y0, t0, t1, dt, n_paths, keys = _check_sde_inputs(system, y0, t0, t1, dt, n_paths, key)
    check_in("brownian", brownian, ("virtual", "unsafe"))
    solver = dfx.Euler() if solver is None else solver
    check_sde_solver(solver)
    if isinstance(solver, dfx.ItoMilstein) and system.noise_type() == "general":
        raise ValueError(
            "`solver`: ItoMilstein assumes commuting noise; with noise_type 'general' use "
            "diffrax.Euler() (or declare noise_type 'scalar'/'diagonal' if that is what it is)."
        )
    ts = jnp.asarray(resolve_save_times(LinearTimes(101) if saveat is None else saveat, t0, t1))
    from ._solve import _run_compiled

    max_steps = int(math.ceil((t1 - t0) / dt)) + 2
    out, compile_s, run_s = _run_compiled(
        _diffrax_paths,
        dict(system=system, y0=y0, keys=keys, ts=ts, args=args),
        dict(t0=t0, t1=t1, dt=dt, solver=solver, brownian=brownian, max_steps=max_steps,
             noise_shape=(system.noise_dimension(),)),
    )
    ys = np.asarray(out["ys"])
    status, message = _status(ys, n_paths)
    steps = int(out["steps"])
    traj = Trajectory(
        ts=np.asarray(ts), ys=ys, observables={k: np.asarray(v) for k, v in out["observables"].items()},
        events={}, stats=SolverStats(type(solver).__name__, steps, steps, 0, compile_s, run_s),
        status=status, message=message, t_final=float(t1), system=system, batched=True,
    )
    if throw and status != "success":
        from ._solve import SolveError

        raise SolveError(message, status, float(t1), traj)
    return traj


# ----------------------------------------------------------------------------------------------
# fast ensemble


def _save_steps(ts, t0, dt, n_steps):
    idx = np.rint((np.asarray(ts) - t0) / dt).astype(np.int64)
    idx = np.clip(idx, 0, n_steps)
    return np.unique(idx)


def _em_path(system, y0, key, counts, t_start, args, *, dt, coordinates, renormalise, k):
    """One Euler–Maruyama path; ``counts[j]`` steps between save ``j - 1`` and save ``j``."""
    sqrt_dt = jnp.sqrt(dt)
    sign = jnp.where(y0 < 0, -1.0, 1.0)

    def increment(i):
        t = t_start + i * dt
        dw = sqrt_dt * jr.normal(jr.fold_in(key, i), (k,))
        return t, dw

    def step_original(i, carry):
        y, log_norm = carry
        t, dw = increment(i)
        y = y + dt * system.vector_field(t, y, args) + system.noise_increment(t, y, args, dw)
        if renormalise:
            norm = jnp.linalg.norm(y)
            y, log_norm = y / norm, log_norm + jnp.log(norm)
        return y, log_norm

    def step_log(i, carry):
        z, log_norm = carry
        t, dw = increment(i)
        # |y| is floored at e^-700 inside the coefficients only (z itself keeps falling): for
        # noise and drift linear near 0 the ratios f/y, G/y do not depend on the scale.
        y = sign * jnp.exp(jnp.maximum(z, -700.0))
        g = system.diffusion_matrix(t, y, args)
        drift = system.vector_field(t, y, args) / y - 0.5 * jnp.sum(g * g, axis=1) / y**2
        z = z + dt * drift + (g @ dw) / y
        return z, log_norm

    step = step_log if coordinates == "log" else step_original
    start = jnp.log(jnp.abs(y0)) if coordinates == "log" else y0

    def interval(carry, count_and_first):
        count, first = count_and_first
        carry = jax.lax.fori_loop(first, first + count, step, carry)
        return carry, carry

    firsts = jnp.concatenate([jnp.zeros(1, counts.dtype), jnp.cumsum(counts)[:-1]])
    _, (states, log_norms) = jax.lax.scan(interval, (start, jnp.float64(0.0)), (counts, firsts))
    log_abs = states if coordinates == "log" else jnp.log(jnp.abs(states))
    ys = sign * jnp.exp(states) if coordinates == "log" else states
    return ys, log_abs, log_norms


def _em_ensemble(system, y0, keys, counts, t_start, ts, args, *, dt, coordinates, renormalise, k, over_systems):
    path = lambda sys, y, key: _em_path(sys, y, key, counts, t_start, args, dt=dt, coordinates=coordinates,
                                        renormalise=renormalise, k=k)
    paths = jax.vmap(path, in_axes=(None, 0, 0))
    if over_systems:
        paths = eqx.filter_vmap(paths, in_axes=(eqx.if_array(0), None, None))
    ys, log_abs, log_norms = paths(system, y0, keys)
    observables = {}
    if not renormalise:
        obs = lambda sys, y: jax.vmap(jax.vmap(sys.observables))(jnp.broadcast_to(ts, y.shape[:2]), y)
        observables = (eqx.filter_vmap(obs, in_axes=(eqx.if_array(0), 0)) if over_systems else obs)(system, ys)
    if coordinates == "log":
        observables["log_abs_state"] = log_abs
    if renormalise:
        observables["log_norm"] = log_norms
    return ys, observables


def _check_linear_homogeneous(system, y0, args):
    y = y0[0]
    for c in (2.0, -0.5):
        f_ok = jnp.allclose(system.vector_field(0.0, c * y, args), c * system.vector_field(0.0, y, args), rtol=1e-9, atol=1e-300)
        g_ok = jnp.allclose(system.diffusion_matrix(0.0, c * y, args), c * system.diffusion_matrix(0.0, y, args), rtol=1e-9, atol=1e-300)
        if not (bool(f_ok) and bool(g_ok)):
            raise ValueError(
                "`renormalise=True` needs drift and diffusion linear in y (f(cy) = c f(y), G(cy) = c G(y)), "
                f"e.g. the linearisation at an invariant set; {type(system).__name__} is not."
            )


def euler_maruyama(system, y0, t1, *, dt, key, t0=0.0, n_paths=1, saveat=None, coordinates="original",
                   renormalise=False, over_systems=False, args=None, throw=True) -> Trajectory:
    r"""Fast fixed-step Itô Euler–Maruyama paths,
    $y_{i+1} = y_i + f(t_i, y_i)\,h + G(t_i, y_i)\,\sqrt h\,\xi_i$, $\xi_i \sim N(0, I_k)$,
    as a ``jax.lax.scan`` vmapped over paths (and over a batch of systems).

    The noise of step ``i`` of path ``p`` is drawn from ``fold_in(split(key, n_paths)[p], i)``,
    so a path does not depend on the save times or on the other paths. The number of steps is
    ``round((t1 - t0) / dt)`` and ``dt`` is adjusted to fit them exactly; save times are rounded
    to the step grid.

    **Arguments:**

    - ``system``: an ``AbstractSDESystem`` (with ``over_systems=True``: a batch of them, built
      with ``eqx.filter_vmap``, leading axis over parameter values).
    - ``y0``: ``(n,)`` or ``(n_paths, n)``.
    - ``t1``, ``t0``, ``dt``, ``key``, ``n_paths``, ``saveat``: as in ``solve_sde``.
    - ``coordinates``: ``"original"`` (the SGD-consistent discretisation) or ``"log"``: evolve
      $z_i = \log|y_i|$ by Euler–Maruyama on its exact Itô equation
      $dz_i = (f_i/y_i - \tfrac12 (GG^\top)_{ii}/y_i^2)\,dt + (G\,dB)_i/y_i$, which never
      underflows (exact for geometric Brownian motion); needs ``y0`` without zeros and keeps
      each component's sign.
    - ``renormalise``: for drift and diffusion linear in $y$ (a linearisation): rescale to unit
      norm after every step and accumulate $\log\|y\|$ in the observable ``log_norm``; ``ys``
      holds the direction. The top Lyapunov exponent is ``log_norm[..., -1] / t``.

    **Returns:** a batched ``Trajectory``: ``ys`` ``(n_paths, T, n)`` (``(systems, n_paths, T,
    n)`` with ``over_systems``), observables likewise, plus ``log_abs_state`` (log coordinates)
    or ``log_norm`` (renormalised).
    """
    y0, t0, t1, dt, n_paths, keys = _check_sde_inputs(system if not over_systems else _first(system), y0,
                                                      t0, t1, dt, n_paths, key)
    check_in("coordinates", coordinates, ("original", "log"))
    if coordinates == "log" and renormalise:
        raise ValueError("`coordinates='log'` and `renormalise=True` exclude each other; choose one.")
    if coordinates == "log" and not bool(jnp.all(y0 != 0)):
        raise ValueError("`y0` must have no zero component with coordinates='log' (log|y| is -inf there).")
    single = _first(system) if over_systems else system
    if renormalise:
        _check_linear_homogeneous(single, y0, args)
    n_steps = max(1, int(round((t1 - t0) / dt)))
    dt = (t1 - t0) / n_steps
    steps_at = _save_steps(resolve_save_times(LinearTimes(101) if saveat is None else saveat, t0, t1), t0, dt, n_steps)
    ts = t0 + steps_at * dt
    counts = np.diff(np.concatenate([[0], steps_at]))
    from ._solve import _run_compiled

    (ys, observables), compile_s, run_s = _run_compiled(
        _em_ensemble,
        dict(system=system, y0=y0, keys=keys, counts=jnp.asarray(counts), t_start=jnp.float64(t0),
             ts=jnp.asarray(ts), args=args),
        dict(dt=dt, coordinates=coordinates, renormalise=renormalise, k=single.noise_dimension(),
             over_systems=over_systems),
    )
    ys = np.asarray(ys)
    status, message = _status(ys.reshape(-1, *ys.shape[-2:]), int(np.prod(ys.shape[:-2])))
    traj = Trajectory(
        ts=np.asarray(ts), ys=ys, observables={k: np.asarray(v) for k, v in observables.items()}, events={},
        stats=SolverStats("EulerMaruyama(lax.scan)", n_steps, n_steps, 0, compile_s, run_s),
        status=status, message=message, t_final=float(t1), system=system, batched=True,
    )
    if throw and status != "success":
        from ._solve import SolveError

        raise SolveError(message, status, float(t1), traj)
    return traj


def _first(batch):
    """The first system of a batch built with ``eqx.filter_vmap``."""
    return jax.tree_util.tree_map(lambda a: a[0] if eqx.is_array(a) else a, batch)
