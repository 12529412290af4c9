"""``reducedflow run committee``: the Saad–Solla / Goldt et al. order-parameter ODEs of online SGD
in a soft committee machine, optionally against online SGD at a finite input dimension."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._registry import Command


def _arguments(parser):
    parser.add_argument("--K", type=int, default=2, help="student hidden units K (default 2)")
    parser.add_argument("--M", type=int, default=2, help="teacher hidden units M (default 2)")
    parser.add_argument("--lr", type=float, default=0.5, help="first-layer learning rate eta (default 0.5)")
    parser.add_argument("--second-layer", choices=("fixed", "trained"), default="fixed",
                        help="fixed v = 1 (soft committee machine, default) or trained second layer")
    parser.add_argument("--second-layer-lr", type=float, default=None,
                        help="second-layer learning rate eta_v (default: --lr)")
    parser.add_argument("--noise", type=float, default=0.0, help="output-noise standard deviation sigma (default 0)")
    parser.add_argument("--t1", type=float, default=None,
                        help="final time t = steps/N (default: three times a rough escape time, ln(N^1/2)/rate + 20/eta)")
    parser.add_argument("--dimension", type=int, default=1000,
                        help="input dimension N of the random initial weights (sets the O(N^-1/2) "
                             "symmetry breaking; default 1000; replaced by --sgd-N when that is > 0)")
    parser.add_argument("--sgd-N", type=int, default=0,
                        help="also run online SGD at this input dimension N (0: no SGD; default 0)")
    parser.add_argument("--sgd-seeds", type=int, default=2, help="SGD runs with independent samples (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the initial weights and samples")
    parser.add_argument("--out", type=Path, default=Path("runs/committee"),
                        help="output prefix: writes PREFIX.nc and PREFIX.png (default runs/committee)")


def _plateau_from_trajectory(ts, eg, t_end):
    """The error where it is flattest in log time in the two decades before ``t_end`` (the
    escape, or the final time): the plateau height."""
    keep = (ts > t_end / 100) & (ts < t_end)
    if keep.sum() < 5:
        return float("nan")
    slope = np.abs(np.gradient(eg[keep], np.log(ts[keep])))
    return float(eg[keep][np.argmin(slope)])


def run_committee(*, width, teacher_width, learning_rate, second_layer="fixed", second_layer_rate=None,
                  noise=0.0, t1=None, dimension=1000, sgd_dimension=0, sgd_seeds=2, seed=0,
                  out=Path("runs/committee")):
    """Solve the committee ODE from the order parameters of random weights, print a summary,
    write ``<out>.nc`` and ``<out>.png``; returns ``(trajectory, summary dict)``."""
    from .._checks import check_in, check_integer, check_positive
    from .._save_times import LogTimes
    from .._solve import solve
    from ..analysis.plateaus import transition_time
    from ..models.committee import (SoftCommittee, noise_floor, plateau_escape_rate, plateau_generalisation_error,
                                    random_weight_overlaps, symmetric_plateau)

    k = check_integer("K", width)
    m = check_integer("M", teacher_width)
    check_positive("lr", learning_rate)
    check_in("second_layer", second_layer, ("fixed", "trained"))
    check_positive("noise", noise, allow_zero=True)
    sgd_dimension = check_integer("sgd_N", sgd_dimension, minimum=0)
    sgd_seeds = check_integer("sgd_seeds", sgd_seeds)
    eta_v = learning_rate if second_layer_rate is None else second_layer_rate
    check_positive("second_layer_lr", eta_v, allow_zero=True)
    trained = second_layer == "trained"
    n_init = sgd_dimension if sgd_dimension > 0 else check_integer("dimension", dimension, minimum=k + m)

    # The closed forms of the symmetric plateau apply to K = M, T = I, v = A = 1 fixed.
    symmetric = k == m and not trained and k >= 2
    rate_closed = plateau_escape_rate(max(k, 2), learning_rate)
    plateau = symmetric_plateau(k, learning_rate) if symmetric else None
    rate = plateau.escape_rate if symmetric else rate_closed
    if t1 is None:
        t1 = 3.0 * (0.5 * math.log(n_init) / rate + 20.0 / learning_rate)
    check_positive("t1", t1)

    system = SoftCommittee(np.eye(m), k, learning_rate=learning_rate, second_layer_rate=eta_v, noise=noise,
                           train_second_layer=trained)
    sgd = None
    if sgd_dimension > 0:
        from ..networks.committee import sample_committee, train_committee_sgd

        if sgd_dimension < k + m:
            raise ValueError(f"`sgd_N` must be 0 or >= K + M = {k + m}; got {sgd_dimension}.")
        teacher, students = sample_committee(k, m, sgd_dimension, key=seed, seeds=sgd_seeds)
        print(f"online SGD: N = {sgd_dimension}, {sgd_seeds} runs, {round(t1 * sgd_dimension)} steps each ...", flush=True)
        sgd = train_committee_sgd(teacher, students, t1, learning_rate=learning_rate, second_layer_rate=eta_v,
                                  train_second_layer=trained, noise=noise, n_records=200, key=seed + 1)
        y0 = {key: np.asarray(val) for key, val in sgd.initial_state(0).items()}
        t1 = float(sgd.times[-1])
        system = SoftCommittee(sgd.teacher_overlaps, k, learning_rate=learning_rate, second_layer_rate=eta_v,
                               noise=noise, train_second_layer=trained)
    else:
        y0 = {key: val[0] for key, val in random_weight_overlaps(k, m, n_init, seed).items()}

    print(f"solving SoftCommittee(K={k}, M={m}, eta={learning_rate:g}, second layer {second_layer}, "
          f"sigma={noise:g}) from random weights at N={n_init} to t1={t1:.4g} ...", flush=True)
    ts = LogTimes(400, first=1e-3).times(0.0, t1) if t1 > 1e-3 else np.linspace(0, t1, 50)
    traj = solve(system, y0, t1, saveat=ts, rtol=1e-9, atol=1e-12)
    eg = np.asarray(traj.observables["generalisation_error"])
    stats = traj.stats
    print(f"solver {stats.solver}: {stats.steps} steps ({stats.rejected} rejected), "
          f"compile {stats.compile_seconds:.2f} s, run {stats.run_seconds * 1e3:.1f} ms")
    summary = {"final_generalisation_error": float(eg[-1])}
    print(f"final eps_g: {eg[-1]:.6e} at t = {traj.ts[-1]:.6g}")
    if noise > 0 and k == m:
        summary["noise_floor"] = noise_floor(system) if system.weight_decay == 0 else float("nan")
        print(f"noise floor (linear response at the perfect solution): {summary['noise_floor']:.6e}")
    if symmetric:
        level = 0.5 * plateau.generalisation_error
        t_escape = transition_time(traj.ts[1:], eg[1:], level)
        measured = _plateau_from_trajectory(traj.ts, eg, t_escape if np.isfinite(t_escape) else t1)
        summary.update(plateau_measured=measured, plateau_closed_form=plateau_generalisation_error(k),
                       plateau_at_lr=plateau.generalisation_error, escape_time=t_escape, escape_rate=rate,
                       escape_rate_closed_form=rate_closed)
        print(f"plateau eps_g: measured {measured:.6e}, closed form (eta -> 0) {summary['plateau_closed_form']:.6e}, "
              f"fixed point at eta (with eta^2 terms) {plateau.generalisation_error:.6e}")
        print(f"escape time: {t_escape:.6g} (first eps_g < half the plateau); escape rate {rate:.6e} "
              f"(eta -> 0 closed form {rate_closed:.6e}); ln(N^1/2)/rate = {0.5 * math.log(n_init) / rate:.6g}")
    else:
        print("plateau closed forms apply to K = M >= 2 with a fixed second layer: not compared")

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ds = traj.to_xarray()
    ds.attrs.update({"K": k, "M": m, "learning_rate": learning_rate, "second_layer": second_layer,
                     "second_layer_rate": eta_v, "noise": noise, "init_dimension": n_init, "seed": seed,
                     **{key: value for key, value in summary.items()}})
    if sgd is not None:
        ode_on_sgd = np.interp(sgd.times, traj.ts, eg)
        gap = float(np.sqrt(np.mean((sgd.generalisation_error - ode_on_sgd) ** 2)))
        summary["sgd_final_generalisation_error"] = float(sgd.generalisation_error[:, -1].mean())
        summary["sgd_rms_gap"] = gap
        print(f"online SGD at N = {sgd_dimension}: final eps_g {summary['sgd_final_generalisation_error']:.6e} "
              f"(mean of {sgd_seeds}); RMS gap to the ODE {gap:.3e}")
        ds["sgd_generalisation_error"] = (("sgd_seed", "sgd_time"), sgd.generalisation_error)
        ds = ds.assign_coords(sgd_time=sgd.times)
        ds.attrs["sgd_dimension"] = sgd_dimension
        ds.attrs["sgd_rms_gap"] = gap
    nc_path, png_path = out.with_name(out.name + ".nc"), out.with_name(out.name + ".png")
    ds.to_netcdf(nc_path, engine="h5netcdf")
    _plot(traj.ts, eg, sgd, summary, k, learning_rate, png_path)
    print(f"wrote {nc_path} and {png_path}")
    return traj, summary


def _plot(ts, eg, sgd, summary, k, learning_rate, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    keep = ts > 0
    ax.loglog(ts[keep], eg[keep], color="k", lw=2, label="ODE")
    if sgd is not None:
        for s, curve in enumerate(sgd.generalisation_error):
            ax.loglog(sgd.times[1:], curve[1:], color="tab:orange", lw=0.8, alpha=0.8,
                      label=f"online SGD, N = {sgd.dimension}" if s == 0 else None)
    if "plateau_at_lr" in summary:
        ax.axhline(summary["plateau_closed_form"], color="tab:blue", ls=":", lw=1,
                   label="plateau, closed form (eta -> 0)")
        ax.axhline(summary["plateau_at_lr"], color="tab:blue", ls="--", lw=1, label="plateau at this eta")
        if np.isfinite(summary["escape_time"]):
            ax.axvline(summary["escape_time"], color="0.5", ls="-.", lw=0.8, label="escape")
    if "noise_floor" in summary:
        ax.axhline(summary["noise_floor"], color="tab:red", ls="--", lw=1, label="noise floor (linear response)")
    ax.set_xlabel("t = steps / N (log scale)")
    ax.set_ylabel("generalisation error")
    ax.set_title(f"soft committee machine, K = {k}, eta = {learning_rate:g}", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run(args):
    run_committee(width=args.K, teacher_width=args.M, learning_rate=args.lr, second_layer=args.second_layer,
                  second_layer_rate=args.second_layer_lr, noise=args.noise, t1=args.t1, dimension=args.dimension,
                  sgd_dimension=args.sgd_N, sgd_seeds=args.sgd_seeds, seed=args.seed, out=args.out)


COMMANDS = [
    Command(
        "run", "committee", "online SGD of a soft committee machine: order-parameter ODEs (Saad-Solla 1995)",
        _arguments, _run,
        description="Solve the order-parameter ODEs of online SGD in a soft committee machine (K student, M "
        "teacher erf units, T = I) from the overlaps of random weights at input dimension N; print the final "
        "generalisation error, the plateau height against its closed form and the escape time; optionally run "
        "online SGD at --sgd-N and plot it over the ODE. Writes PREFIX.nc and PREFIX.png.",
    ),
]
