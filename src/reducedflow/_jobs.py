"""The jobs behind ``reducedflow run``: solve, write NetCDF and PNG, print a summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._checks import check_positive
from ._events import Crossing
from ._save_times import LogTimes
from ._solve import solve


def _half_way(t, y, system):
    return y


def run_linear_modes(singular_values, depth=2, u0=1e-3, tau=1.0, t1=None, out=Path("runs/linear-modes")):
    """Solve the mode strengths of a depth-``depth`` linear network from ``u0`` and compare the
    time each mode reaches ``s/2`` with theory (closed form for depth 2, quadrature otherwise).
    Writes ``trajectory.nc`` and ``modes.png`` into ``out``; returns the Trajectory."""
    from .models.linear_modes import BalancedModes, DeepModes

    s = np.asarray(singular_values, dtype=float)
    check_positive("singular_values", s)
    if not 0 < u0 < s.min():
        raise ValueError(f"`init` (u0) must lie in (0, min(singular_values)) = (0, {s.min():g}); got {u0:g}.")
    system = BalancedModes(s, tau=tau) if depth == 2 else DeepModes(s, depth=depth, tau=tau)
    y0 = np.full(s.shape, u0)
    theory = np.asarray(system.learning_time(y0, s / 2))
    t1 = float(2 * theory.max()) if t1 is None else t1
    check_positive("t1", t1)
    half = Crossing("half_learned", _half_way, level=s / 2, direction=+1)
    print(f"solving {type(system).__name__}(depth={depth}, s={s.tolist()}, tau={tau:g}) from u0={u0:g} to t1={t1:.4g} ...", flush=True)
    traj = solve(system, y0, t1, saveat=LogTimes(400, first=1e-3 * t1), events=(half,))
    measured = traj.events["half_learned"].first_per_component(s.size)

    stats = traj.stats
    print(f"solver {stats.solver}: {stats.steps} steps ({stats.rejected} rejected), "
          f"compile {stats.compile_seconds:.2f} s, run {stats.run_seconds * 1e3:.1f} ms")
    kind = "closed form" if depth == 2 else "quadrature"
    print(f"{'mode':>4} {'s':>8} {'t(u=s/2) solved':>16} {'theory (' + kind + ')':>24} {'rel. error':>11}")
    for i, (si, tm, tt) in enumerate(zip(s, measured, theory)):
        print(f"{i:>4} {si:>8.4g} {tm:>16.8g} {tt:>24.8g} {abs(tm - tt) / tt:>11.2e}")

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    traj.to_xarray().to_netcdf(out / "trajectory.nc", engine="h5netcdf")
    _plot_modes(traj, s, measured, theory, out / "modes.png")
    print(f"wrote {out / 'trajectory.nc'} and {out / 'modes.png'}")
    return traj


def _plot_modes(traj, s, measured, theory, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    keep = traj.ts > 0
    for i in range(s.size):
        line, = ax.plot(traj.ts[keep], traj.ys[keep, i], label=f"s = {s[i]:g}")
        ax.axvline(theory[i], color=line.get_color(), ls="--", lw=0.8)
        ax.plot([measured[i]], [s[i] / 2], "o", color=line.get_color(), ms=4)
    ax.set_xscale("log")
    ax.set_xlabel("t (log scale)")
    ax.set_ylabel("mode strength u(t)")
    ax.set_title("dashed: learning time from theory; dots: u = s/2 in the solve", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def validate_linear_modes_job(singular_values, widths, learning_rates, u0=1e-2, t1=10.0, seed=0, out=None):
    """Train the deep linear network at each learning rate, print the gap to the reduced
    modes and the fitted order in the learning rate; optionally write the study as NetCDF."""
    from .validate import convergence_in_learning_rate, validate_linear_modes

    widths = tuple(int(w) for w in widths)
    if any(w != int(w) for w in widths):
        raise ValueError(f"`widths` must be integers; got {widths}.")
    print(f"validating depth-{len(widths) - 1} linear network, widths {widths}, s = {list(singular_values)}, "
          f"u0 = {u0:g}, t1 = {t1:g}", flush=True)
    study = convergence_in_learning_rate(
        validate_linear_modes, list(learning_rates), singular_values=singular_values,
        widths=widths, t1=t1, key=seed, initial_strength=u0,
    )
    print(f"{'learning rate':>14} {'max |u_net - u_reduced|':>24} {'ratio':>7} {'max off-diagonal':>17}")
    ratios = [float("nan"), *study.ratios]
    for lr, err, ratio, res in zip(study.values, study.errors, ratios, study.results):
        off = float(np.max(res.diagnostics["off_diagonal"]))
        print(f"{lr:>14.4g} {err:>24.4e} {ratio:>7.3f} {off:>17.2e}")
    print(f"fitted order in the learning rate: {study.order:.3f} (gradient descent vs flow: 1)")
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        study.to_xarray().to_netcdf(out / "validation.nc", engine="h5netcdf")
        print(f"wrote {out / 'validation.nc'}")
    return study
