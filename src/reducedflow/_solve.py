"""``solve``: integrate a reduced system with diffrax (default) or scipy, stiff-aware, in float64."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Any

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_in, check_integer, check_positive, check_real
from ._events import Crossing, EventTimes, locate_crossings
from ._save_times import resolve_save_times
from ._sde import AbstractSDESystem
from ._solve_sde import solve_sde
from ._structured import StructuredChord, has_particle_jacobian, term_and_args
from ._system import AbstractSystem, is_stiff
from ._time_change import LogTime
from ._trajectory import SolverStats, Trajectory

#: PID coefficients used with implicit solvers. Measured (benchmarks/stiff_scaling.py): on the
#: nonlinear fast/slow flow they cut Kvaerno5's rejected steps from ~100 to ~20 and keep the
#: step count flat in 1/eps (with ``stiff_root_finder``); on the linear one they cost ~30% more
#: steps for a 3x smaller error.
TUNED_PCOEFF = 0.3
TUNED_ICOEFF = 0.3




class SolveError(RuntimeError):
    """Raised by ``solve(..., throw=True)`` when the integration fails. ``status`` names the
    failure, ``t`` is where it stopped and ``trajectory`` holds what was computed up to then."""

    def __init__(self, message: str, status: str, t: float, trajectory: Trajectory):
        super().__init__(message)
        self.status = status
        self.t = t
        self.trajectory = trajectory


def stiff_root_finder(rtol) -> dfx.VeryChord:
    r"""The chord-method root finder of the default implicit solver, with tolerance
    $\min(10^{-2}, \sqrt{\text{rtol}})$ (relative and absolute) instead of the step
    controller's own.

    Why: a stage increment of a system with a $1/\varepsilon$-fast variable carries round-off
    of order $\Delta t\,u/\varepsilon$ ($u$ the unit round-off), which exceeds an absolute
    tolerance of 1e-10 once $\varepsilon \lesssim 10^{-6}$; the iteration then never
    "converges", steps are rejected and their number grows like $1/\varepsilon$. With the
    looser tolerance (scipy's Radau uses the same $\sqrt{\text{rtol}}$ scale for its Newton
    iterations) the step count stays flat down to $\varepsilon = 10^{-10}$ while the error is
    still controlled by the step controller (benchmarks/stiff_scaling.py)."""
    tol = _chord_tolerance(rtol)
    return dfx.VeryChord(rtol=tol, atol=tol)


def _chord_tolerance(rtol):
    return jnp.minimum(1e-2, jnp.sqrt(jnp.asarray(rtol, jnp.float64)))


#: Chord (Newton) tolerance of the default implicit solver for systems with a structured
#: ``particle_jacobian`` (see ``default_solver``).
PARTICLE_CHORD_TOLERANCE = 1e-2


def default_solver(system: AbstractSystem, rtol: float = 1e-8) -> dfx.AbstractSolver:
    """Kvaerno5 (L-stable ESDIRK, order 5, with ``stiff_root_finder(rtol)``) for stiff
    systems, Tsit5 otherwise. Systems with a structured ``particle_jacobian`` get Kvaerno5 with
    ``StructuredChord`` (Woodbury Newton solves) at the same tolerance."""
    if not is_stiff(system):
        return dfx.Tsit5()
    if has_particle_jacobian(system):
        # Particle systems (many neurons, a 1/eps-fast second layer) carry round-off of order
        # u/eps in every stage value; a chord tolerance of sqrt(rtol) then rejects ever more
        # steps as eps shrinks. Measured on the single-index mean-field flow (m = 20, rtol 1e-8):
        # tolerance 1e-2 takes 236 / 552 / 815 / 1567 steps at eps = 1e-2 / 1e-4 / 1e-6 / 1e-8
        # against 236 / 587 / 1277 / 3417 with 1e-4, at the same error against a tight Radau
        # reference (1e-7 .. 5e-7 on the risk). The step controller still sets the accuracy.
        return dfx.Kvaerno5(root_finder=StructuredChord(rtol=PARTICLE_CHORD_TOLERANCE, atol=PARTICLE_CHORD_TOLERANCE))
    return dfx.Kvaerno5(root_finder=stiff_root_finder(rtol))


def default_controller(solver: dfx.AbstractSolver, rtol: float, atol: float):
    """A PID step-size controller; implicit solvers get the tuned coefficients."""
    # Tolerances as arrays: they are then dynamic inputs of the compiled solve, so changing
    # them does not recompile.
    rtol, atol = jnp.asarray(rtol, jnp.float64), jnp.asarray(atol, jnp.float64)
    if isinstance(solver, dfx.AbstractImplicitSolver):
        return dfx.PIDController(rtol=rtol, atol=atol, pcoeff=TUNED_PCOEFF, icoeff=TUNED_ICOEFF)
    return dfx.PIDController(rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------------------------
# The pure integration (traceable: jit, vmap)


def _integrate(system, y0, ts, t0, t1, args, *, solver, controller, max_steps, dense, progress_meter, adjoint=None, dt0=None):
    saveat = dfx.SaveAt(subs=[dfx.SubSaveAt(ts=ts), dfx.SubSaveAt(t1=True)], dense=dense)
    term, term_args = term_and_args(system, args, solver)
    sol = dfx.diffeqsolve(
        term,
        solver,
        t0,
        t1,
        dt0,
        y0,
        term_args,
        saveat=saveat,
        stepsize_controller=controller,
        max_steps=max_steps,
        throw=False,
        progress_meter=progress_meter,
        adjoint=dfx.RecursiveCheckpointAdjoint() if adjoint is None else adjoint,
    )
    ys, y_last = sol.ys
    ys = jax.tree_util.tree_map(lambda a: jnp.where(jnp.isfinite(a), a, jnp.nan), ys)
    observables = jax.vmap(system.observables)(ts, ys)
    return {
        "ys": ys,
        "observables": observables,
        "t_final": sol.ts[1][0],
        "y_final": jax.tree_util.tree_map(lambda a: a[0], y_last),
        "steps": sol.stats["num_steps"],
        "accepted": sol.stats["num_accepted_steps"],
        "rejected": sol.stats["num_rejected_steps"],
        "result": sol.result,
        "interpolation": sol.interpolation if dense else None,
    }


def _batched_integrate(system, y0, ts, t0, t1, args, *, y0_batched, **static):
    inner = functools.partial(_integrate, **static)
    return eqx.filter_vmap(inner, in_axes=(eqx.if_array(0), 0 if y0_batched else None, None, None, None, None))(
        system, y0, ts, t0, t1, args
    )


_COMPILED: dict = {}


def _run_compiled(fn, dynamic_inputs, static_inputs):
    """Run ``fn(**dynamic_inputs, **static_inputs)`` through a cache of AOT-compiled
    executables keyed by structure, shapes and static configuration. Returns
    ``(output, compile_seconds, run_seconds)``."""
    dyn, stat = eqx.partition(dynamic_inputs, eqx.is_array)
    dyn_leaves, dyn_def = jax.tree_util.tree_flatten(dyn)
    stat_leaves, stat_def = jax.tree_util.tree_flatten((stat, static_inputs))
    key = (fn, dyn_def, tuple((np.shape(x), str(x.dtype)) for x in dyn_leaves), stat_def, tuple(stat_leaves))
    try:
        compiled = _COMPILED.get(key)
        cacheable = True
    except TypeError:  # an unhashable static leaf: compile without caching
        compiled, cacheable = None, False
    compile_seconds = 0.0
    if compiled is None:
        start = time.perf_counter()

        def call(dyn_part):
            stat_part, static_kw = jax.tree_util.tree_unflatten(stat_def, stat_leaves)
            return fn(**eqx.combine(dyn_part, stat_part), **static_kw)

        compiled = jax.jit(call).lower(dyn).compile()
        compile_seconds = time.perf_counter() - start
        if cacheable:
            _COMPILED[key] = compiled
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(dyn))
    return out, compile_seconds, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Failure diagnosis


def _classify(result_ok: bool, result_message: str, y_final, accepted: int, rejected: int) -> str:
    finite = all(np.all(np.isfinite(np.asarray(l))) for l in jax.tree_util.tree_leaves(y_final))
    huge = any(np.any(np.abs(np.asarray(l)) > 1e150) for l in jax.tree_util.tree_leaves(y_final))
    if result_ok:
        return "success" if finite else "non_finite_state"
    if not finite or huge:
        return "non_finite_state"
    if "maximum number of solver steps" in result_message:
        return "step_size_collapse" if rejected > accepted else "max_steps_reached"
    return "solver_failure"


def _explain(status: str, result_message: str, t_final: float, t1: float, steps: int, rejected: int, max_steps: int, solver) -> str:
    where = f"at t = {t_final:.6g} (t1 = {t1:.6g}) after {steps} steps ({rejected} rejected) with {type(solver).__name__}"
    if isinstance(solver, dfx.AbstractImplicitSolver):
        stiff_hint = (
            "tolerances near round-off (rtol < ~1e-12) stall the implicit solver's Newton "
            "iterations: loosen them"
        )
    else:
        stiff_hint = (
            "if the system is stiff, an implicit solver (solver=diffrax.Kvaerno5(), or declare "
            "`timescale_ratio()` on the system)"
        )
    if status == "max_steps_reached":
        return (
            f"max_steps = {max_steps} reached {where}. Try: a larger `max_steps`; looser "
            f"`rtol`/`atol`; or, {stiff_hint}."
        )
    if status == "step_size_collapse":
        return (
            f"the step size collapsed {where}: most steps were rejected. The solution may be "
            f"singular there (finite-time blow-up), or {stiff_hint}. Also check the parameters, "
            "or stop at an earlier t1."
        )
    if status == "non_finite_state":
        return (
            f"the state became non-finite or diverged (|y| > 1e150) {where}. The dynamics may "
            "blow up in finite time from this initial state: check the parameters and y0, or "
            "stop at an earlier t1. States saved before this time are valid (throw=False)."
        )
    return f"the solver failed {where}: {result_message}. Try a smaller rtol/atol or another solver."


def _result_message(result) -> str:
    return str(dfx.RESULTS[result])


# ----------------------------------------------------------------------------------------------
# Public verbs


def _check_common(system, t0, t1, rtol, atol, max_steps):
    if not isinstance(system, AbstractSystem):
        raise ValueError(
            f"`system` must be a reducedflow.AbstractSystem; got {type(system).__name__}."
        )
    t0 = check_real("t0", t0)
    t1 = check_real("t1", t1)
    if not t1 > t0:
        raise ValueError(f"`t1` must be greater than t0 = {t0}; got {t1}.")
    check_positive("rtol", rtol)
    check_positive("atol", atol)
    max_steps = check_integer("max_steps", max_steps)
    return t0, t1, max_steps


def _as_state(y0, system=None):
    """``y0`` as float64 arrays. For a system whose state is one array, a nested list or
    tuple of numbers is taken as that array."""
    expected = None if system is None else system.state_shapes()
    if isinstance(expected, jax.ShapeDtypeStruct) and isinstance(y0, (list, tuple)):
        try:
            y0 = np.asarray(y0, dtype=np.float64)
        except (TypeError, ValueError):
            pass  # ragged: check_state reports the structure
    return jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype=jnp.float64), y0)


def solve(
    system: AbstractSystem,
    y0,
    t1: float,
    *,
    t0: float = 0.0,
    saveat=None,
    solver=None,
    stepsize_controller=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    events: tuple[Crossing, ...] = (),
    dense: bool = False,
    progress: bool = False,
    throw: bool = True,
    backend: str = "diffrax",
    log_time: bool = False,
    args: Any = None,
    key=None,
    dt0: float | None = None,
    n_paths: int = 1,
    brownian: str = "virtual",
) -> Trajectory:
    r"""Integrate $\dot y = f(t, y)$ of ``system`` from ``y0`` at ``t0`` to ``t1``.

    The solver is chosen from the system's declared stiffness: Tsit5 (explicit, adaptive)
    unless ``system.timescale_ratio() >= STIFF_THRESHOLD``, then Kvaerno5 (implicit, L-stable)
    with a PID controller tuned for it (pcoeff = icoeff = 0.3) and a chord root finder whose
    tolerance keeps the step count flat as the time-scale ratio grows. Compiled solves are cached:
    a second call with the same system type, shapes, solver and number of save times reuses
    the executable, also with other parameter values, ``y0``, ``t0``/``t1``, save times or
    tolerances.

    **Arguments:**

    - ``system``: an ``AbstractSystem``.
    - ``y0``: initial state, a PyTree matching ``system.state_shapes()``.
    - ``t1``, ``t0``: final and initial time (``t1 > t0``).
    - ``saveat``: ``None`` (200 log-spaced times, ``LogTimes()``), ``LogTimes(n)``,
      ``LinearTimes(n)`` or an increasing array of times in ``[t0, t1]``.
    - ``solver``: a diffrax solver (backend ``"diffrax"``) or a scipy method name
      (``"Radau"``, ``"BDF"``, ``"LSODA"``, ``"RK45"``, ``"DOP853"``; backend ``"scipy"``).
    - ``stepsize_controller``: a diffrax controller (default: ``PIDController(rtol, atol)``).
    - ``rtol``, ``atol``: error tolerances (> 0).
    - ``max_steps``: step budget (diffrax only).
    - ``events``: ``Crossing`` objects; their times are recorded, the solve goes on to ``t1``.
    - ``dense``: keep the dense interpolant (``Trajectory.evaluate``).
    - ``progress``: print progress while integrating (diffrax's text progress meter).
    - ``throw``: raise ``SolveError`` on failure; otherwise the failure is in
      ``Trajectory.status`` / ``message`` and states after it are NaN.
    - ``backend``: ``"diffrax"`` or ``"scipy"`` (``scipy.integrate.solve_ivp`` with the
      Jacobian from ``jax.jacfwd``; for cross-checks and benchmarks).
    - ``log_time``: integrate in $\sigma = \ln(1 + t)$ (``LogTime``), for dynamics whose
      rates decay like $1/t$. Everything in and out (``t0``, ``t1``, ``saveat``, event times,
      ``evaluate``) stays in the original time ``t``; requires ``t0 > -1``.
    - ``args``: passed through to ``system.vector_field``.
    - ``dt0``: for an ODE, the first step (default: diffrax's automatic choice; give one, e.g.
      ``1e-3 * epsilon``, when an explicit solver cannot find a first step on a very stiff
      system).
    - ``key``, ``dt0``, ``n_paths``, ``brownian``: for an ``AbstractSDESystem`` (Itô SDE)
      only: the random key or seed, the fixed step, the number of paths and the Brownian path
      (``"virtual"`` or ``"unsafe"``); see ``solve_sde``. Default solver ``diffrax.Euler()``.

    **Returns:** a ``Trajectory`` (for an SDE: batched over paths).
    """
    if isinstance(system, AbstractSDESystem):
        if key is None or dt0 is None:
            raise ValueError("`key` and `dt0` are required to solve an SDE system (a seed and a fixed step).")
        return solve_sde(system, y0, t1, key=key, dt=dt0, t0=t0, n_paths=n_paths, saveat=saveat,
                         solver=solver, brownian=brownian, args=args, throw=throw)
    t0, t1, max_steps = _check_common(system, t0, t1, rtol, atol, max_steps)
    check_in("backend", backend, ("diffrax", "scipy"))
    if dt0 is not None:
        check_positive("dt0", dt0)
    y0 = _as_state(y0, system)
    system.check_state(y0)
    for event in events:
        if not isinstance(event, Crossing):
            raise ValueError(f"`events` must hold reducedflow.Crossing objects; got {type(event).__name__}.")
    ts = resolve_save_times(saveat, t0, t1)
    if log_time:
        if t0 <= -1:
            raise ValueError(f"`t0` must be > -1 with log_time=True (sigma = ln(1 + t)); got {t0}.")
        original, real_ts = system, ts
        system, events = LogTime(system), tuple(event.in_log_time() for event in events)
        t0, t1 = math.log1p(t0), math.log1p(t1)
        ts = np.clip(np.log1p(real_ts), t0, t1)
    if backend == "scipy":
        from ._scipy_backend import solve_with_scipy

        traj = solve_with_scipy(system, y0, ts, t0, t1, solver, rtol, atol, events, dense, args)
    else:
        traj = _solve_with_diffrax(
            system, y0, ts, t0, t1, solver, stepsize_controller, rtol, atol, max_steps, events,
            dense, progress, args, dt0,
        )
    if log_time:
        traj = _back_from_log_time(traj, original, real_ts)
    if throw and not traj.succeeded:
        raise SolveError(traj.message, traj.status, traj.t_final, traj)
    return traj


def _back_from_log_time(traj: Trajectory, system, ts) -> Trajectory:
    """Map a trajectory solved in sigma = ln(1 + t) back to the original time."""
    events = {
        name: EventTimes(np.expm1(ev.times), ev.components, ev.directions) for name, ev in traj.events.items()
    }
    interpolation = traj.interpolation
    if interpolation is not None:
        interpolation = functools.partial(_evaluate_in_log_time, interpolation)
    message = traj.message if traj.succeeded else f"(solved in sigma = ln(1 + t), t = e^sigma - 1) {traj.message}"
    return dataclasses.replace(
        traj, ts=ts, t_final=math.expm1(traj.t_final), events=events, system=system,
        interpolation=interpolation, message=message,
    )


def _evaluate_in_log_time(interpolation, t):
    return interpolation(np.log1p(np.asarray(t, dtype=np.float64)))


def _resolve_diffrax_solver(system, solver, stepsize_controller, rtol, atol):
    if solver is None:
        solver = default_solver(system, rtol)
    if isinstance(solver, str) or not isinstance(solver, dfx.AbstractSolver):
        raise ValueError(
            f"`solver` must be a diffrax solver (e.g. diffrax.Kvaerno5()) for backend='diffrax'; "
            f"got {solver!r}. Scipy method names need backend='scipy'."
        )
    if stepsize_controller is None:
        stepsize_controller = default_controller(solver, rtol, atol)
    return solver, stepsize_controller


def _solve_with_diffrax(system, y0, ts, t0, t1, solver, controller, rtol, atol, max_steps, events, dense, progress, args, dt0=None):
    solver, controller = _resolve_diffrax_solver(system, solver, controller, rtol, atol)
    need_dense = dense or bool(events)
    out, compile_s, run_s = _run_compiled(
        _integrate,
        dict(system=system, y0=y0, ts=jnp.asarray(ts), t0=jnp.float64(t0), t1=jnp.float64(t1), args=args,
             solver=solver, controller=controller, dt0=None if dt0 is None else jnp.float64(dt0)),
        dict(
            max_steps=max_steps,
            dense=need_dense,
            progress_meter=dfx.TextProgressMeter() if progress else dfx.NoProgressMeter(),
        ),
    )
    steps, accepted, rejected = (int(out[k]) for k in ("steps", "accepted", "rejected"))
    t_final = float(out["t_final"])
    result_ok = bool(out["result"] == dfx.RESULTS.successful)
    message = _result_message(out["result"])
    status = _classify(result_ok, message, out["y_final"], accepted, rejected)
    solver_name = type(solver).__name__
    message = "success" if status == "success" else _explain(status, message, t_final, t1, steps, rejected, max_steps, solver)
    found = {}
    interpolation = out["interpolation"]
    if events:
        # Accepted step boundaries, padded to the fixed buffer size with the final time.
        step_times = np.asarray(interpolation.ts)
        step_times = np.where(np.isfinite(step_times), step_times, t_final)
        for event in events:
            found[event.name] = locate_crossings(event, system, interpolation, step_times)
    evaluate = None
    if dense:
        evaluate = jax.jit(jax.vmap(interpolation.evaluate))
        evaluate = functools.partial(_evaluate_many, evaluate)
    stats = SolverStats(solver_name, steps, accepted, rejected, compile_s, run_s)
    return Trajectory(
        ts=ts,
        ys=jax.tree_util.tree_map(np.asarray, out["ys"]),
        observables={k: np.asarray(v) for k, v in out["observables"].items()},
        events=found,
        stats=stats,
        status=status,
        message=message,
        t_final=t_final,
        system=system,
        interpolation=evaluate,
    )


def _evaluate_many(vmapped, t):
    t = np.asarray(t, dtype=np.float64)
    flat = vmapped(jnp.atleast_1d(t))
    out = jax.tree_util.tree_map(np.asarray, flat)
    return jax.tree_util.tree_map(lambda a: a[0], out) if t.ndim == 0 else out


def solve_arrays(
    system: AbstractSystem,
    y0,
    ts,
    *,
    t0=0.0,
    solver=None,
    stepsize_controller=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    adjoint=None,
    args: Any = None,
):
    r"""The traceable form of ``solve``: the states at times ``ts`` as JAX arrays, so that
    ``jax.jit``, ``jax.vmap`` and ``jax.grad`` pass through it (for example the gradient of a
    learning curve with respect to a system's parameters, by diffrax's checkpointed adjoint).

    No Python-side checks, events or failure diagnosis: states after a failure are NaN. Under
    tracing, ``system.timescale_ratio()`` may be unknown: pass ``solver`` explicitly then.

    **Arguments:** as in ``solve``; ``ts`` is an increasing array of save times, the last one
    being the final time ``t1``; ``adjoint`` is diffrax's differentiation method (default
    ``RecursiveCheckpointAdjoint()``, reverse mode: ``jax.grad``/``jacrev``; pass
    ``diffrax.ForwardMode()`` for ``jax.jacfwd``).

    **Returns:** the state PyTree with a leading axis of length ``len(ts)``.
    """
    if solver is None:
        solver = default_solver(system, rtol)
    if stepsize_controller is None:
        stepsize_controller = default_controller(solver, rtol, atol)
    ts = jnp.asarray(ts, jnp.float64)
    out = _integrate(
        system, _as_state(y0), ts, jnp.asarray(t0, jnp.float64), ts[-1], args,
        solver=solver, controller=stepsize_controller, max_steps=max_steps, dense=False,
        progress_meter=dfx.NoProgressMeter(), adjoint=adjoint,
    )
    return out["ys"]


def solve_many(
    systems: AbstractSystem,
    y0,
    t1: float,
    *,
    y0_batched: bool = False,
    t0: float = 0.0,
    saveat=None,
    solver=None,
    stepsize_controller=None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    max_steps: int = 100_000,
    throw: bool = True,
    args: Any = None,
) -> Trajectory:
    """Solve a batch of systems in one compiled, ``jax.vmap``-ed call (a parameter sweep).

    ``systems`` is one system whose array fields carry a leading batch axis, e.g.
    ``eqx.filter_vmap(BalancedModes)(singular_values_batch)``. ``y0`` is shared unless
    ``y0_batched``. Arguments as in ``solve``. The returned ``Trajectory`` has
    ``batched=True``: state parts and observables carry a leading batch axis, and
    ``stats.steps`` etc. are the largest over the batch.
    """
    t0, t1, max_steps = _check_common(systems, t0, t1, rtol, atol, max_steps)
    check_positive("rtol", rtol)
    y0 = _as_state(y0)
    if not y0_batched:
        systems_first = jax.tree_util.tree_map(lambda a: a[0] if eqx.is_array(a) else a, systems)
        systems_first.check_state(y0)
    ts = resolve_save_times(saveat, t0, t1)
    solver, controller = _resolve_diffrax_solver(systems, solver, stepsize_controller, rtol, atol)
    out, compile_s, run_s = _run_compiled(
        _batched_integrate,
        dict(system=systems, y0=y0, ts=jnp.asarray(ts), t0=jnp.float64(t0), t1=jnp.float64(t1), args=args,
             solver=solver, controller=controller),
        dict(max_steps=max_steps, dense=False,
             progress_meter=dfx.NoProgressMeter(), y0_batched=y0_batched),
    )
    results_ok = np.asarray(out["result"]._value) == int(dfx.RESULTS.successful._value)
    n_ok = int(results_ok.sum())
    status = "success" if n_ok == results_ok.size else "solver_failure"
    message = "success" if status == "success" else (
        f"{results_ok.size - n_ok} of {results_ok.size} batch members failed "
        f"(first failing index {int(np.argmin(results_ok))}); solve it alone for a diagnosis."
    )
    stats = SolverStats(
        type(solver).__name__,
        int(np.max(out["steps"])),
        int(np.max(out["accepted"])),
        int(np.max(out["rejected"])),
        compile_s,
        run_s,
    )
    traj = Trajectory(
        ts=ts,
        ys=jax.tree_util.tree_map(np.asarray, out["ys"]),
        observables={k: np.asarray(v) for k, v in out["observables"].items()},
        events={},
        stats=stats,
        status=status,
        message=message,
        t_final=float(np.min(out["t_final"])),
        system=systems,
        batched=True,
    )
    if throw and not traj.succeeded:
        raise SolveError(traj.message, traj.status, traj.t_final, traj)
    return traj
