"""``reducedflow run single-index``: the mean-field flow of a wide two-layer network learning a
single-index target (Berthier, Montanari, Zhou 2023), for one or several time-scale ratios eps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._registry import Command, float_list


def _function_or_coefficients(text: str):
    """A function name (``relu``, ``exp``, ``erf_sqrt2``, ...) or comma-separated Hermite coefficients."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        return text


def _arguments(parser):
    parser.add_argument("--activation", type=_function_or_coefficients, default="exp",
                        help="activation: a name (exp, relu, tanh, erf, ...) or Hermite coefficients c0,c1,... (default exp)")
    parser.add_argument("--target", type=_function_or_coefficients, default=[0.0, 1.0, 1.0, 1.0, 0.0],
                        help="target link: a name or Hermite coefficients (default 0,1,1,1,0 = He1 + He2/sqrt2! + He3/sqrt3!)")
    parser.add_argument("--degree", type=int, default=4, help="Hermite truncation degree K (default 4)")
    parser.add_argument("--epsilon", type=float_list, default=[1e-2, 1e-3, 1e-4],
                        help="time-scale ratios eps (first-layer / second-layer rate), comma-separated (default 1e-2,1e-3,1e-4)")
    parser.add_argument("--width", type=int, default=200, help="number of neurons m (particles; default 200)")
    parser.add_argument("--law", choices=("gaussian", "uniform", "rademacher"), default="gaussian",
                        help="law of a(0), discretised by quantiles (default gaussian)")
    parser.add_argument("--t1", type=float, default=5.0, help="final time (default 5)")
    parser.add_argument("--out", type=Path, default=Path("runs/single-index"), help="output folder (default runs/single-index)")


def _run(args):
    from .._solve import solve
    from ..analysis.plateaus import detect_plateaus
    from ..models.single_index import (
        SingleIndexMeanField,
        half_learning_times,
        hermite_coefficients,
        mean_field_initial_state,
        phase_one_second_moment,
        phase_one_time,
    )

    coefficients = hermite_coefficients(args.activation, args.target, degree=args.degree)
    print(f"activation {coefficients.names[0]}: sigma_k = {np.array2string(coefficients.activation, precision=4)}")
    print(f"target {coefficients.names[1]}: phi_k = {np.array2string(coefficients.target, precision=4)}"
          f" (tail beyond degree {coefficients.degree}: {coefficients.target_tail:.2e})")
    if coefficients.unfittable_degrees():
        print(f"note: degrees {coefficients.unfittable_degrees()} have phi_k != 0 but sigma_k = 0: not learnable")
    y0 = mean_field_initial_state(args.width, args.law)
    second_moment = phase_one_second_moment(y0["second_layer"], coefficients)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    for eps in args.epsilon:
        system = SingleIndexMeanField(coefficients, eps, args.width)
        ts = np.logspace(math.log10(min(eps, 1e-3) / 100), math.log10(args.t1), 300)
        ts[-1] = args.t1
        traj = solve(system, y0, args.t1, saveat=ts)
        halves = half_learning_times(traj, coefficients)
        line = ", ".join(f"t_half({k}) = {v:.4g}" for k, v in halves.items())
        print(f"eps = {eps:g}: {traj.stats.steps} steps ({traj.stats.rejected} rejected), "
              f"compile {traj.stats.compile_seconds:.1f} s, run {traj.stats.run_seconds:.2f} s; final risk "
              f"{traj.observables['risk'][-1]:.3e}; {line}")
        if coefficients.activation[1] * coefficients.target[1] > 0:
            law = phase_one_time(eps, coefficients.activation[1], coefficients.target[1], second_moment)
            print(f"    phase-1 law (T1): t_1 = {law:.4g} (measured / law = {halves.get(1, float('nan')) / law:.4f})")
        analysis = detect_plateaus(ts, traj.observables["risk"])
        print("    plateaus: " + ", ".join(f"{p.level:.3g} on [{p.start:.2g}, {p.end:.2g}]" for p in analysis.plateaus))
        ds = traj.to_xarray()
        ds.attrs.update(epsilon=eps, width=args.width, law=args.law)
        path = out / f"single_index_eps{eps:g}.nc"
        ds.to_netcdf(path, engine="h5netcdf")
        runs.append((eps, traj))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for eps, traj in runs:
        axes[0].semilogx(traj.ts, traj.observables["risk"], label=f"eps = {eps:g}")
        axes[1].semilogx(traj.ts, traj.observables["mean_abs_overlap"], label=f"eps = {eps:g}")
    axes[0].set_xlabel("t"); axes[0].set_ylabel("risk"); axes[0].legend(fontsize="small")
    axes[0].set_title(f"mean-field risk, m = {args.width}", fontsize="medium")
    axes[1].set_xlabel("t"); axes[1].set_ylabel("mean |s_i|"); axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(out / "single_index.png", dpi=120)
    plt.close(fig)
    print(f"wrote {len(runs)} NetCDF files and {out / 'single_index.png'}")


COMMANDS = [
    Command(
        "run", "single-index", "mean-field flow of a two-layer network on a single-index target (Berthier et al. 2023)",
        _arguments, _run,
        description="Solve the mean-field particle flow eps a_i' = sum_k sigma_k r_k s_i^k, "
        "s_i' = (1 - s_i^2) a_i sum_k k sigma_k r_k s_i^(k-1) from s = 0 for each eps (implicit solver "
        "with Woodbury Newton solves), print the half-learning time of each Hermite degree, the "
        "phase-1 law and the detected plateaus, and write NetCDF + PNG.",
    ),
]
