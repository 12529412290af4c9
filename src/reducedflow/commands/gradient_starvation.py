"""``reducedflow run gradient-starvation``: the two-feature toy of Pezeshki et al. 2021 (the
authors' ``Figure_6/toy_fig_6.py``) with weight decay and with Spectral Decoupling."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._registry import Command, float_list


def _arguments(parser):
    parser.add_argument("--s1", type=float_list, default=[2.0, 3.0, 4.0, 5.0, 6.0],
                        help="strengths s1 of feature 1, comma-separated (default 2,3,4,5,6)")
    parser.add_argument("--s2", type=float, default=2.0, help="strength s2 of feature 2 (default 2)")
    parser.add_argument("--overlap", type=float, default=0.5, help="overlap delta of the two features, in (-1, 1) (default 0.5)")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="lambda_WD of the cross-entropy run (default 0.01)")
    parser.add_argument("--spectral-decoupling", type=float, default=0.002,
                        help="lambda_SD of the Spectral Decoupling run (default 0.002)")
    parser.add_argument("--t1", type=float, default=None, help="final time (default 30 / slowest late rate)")
    parser.add_argument("--out", type=Path, default=Path("runs/gradient-starvation"),
                        help="output folder (default runs/gradient-starvation)")


def run_gradient_starvation(s1_values, s2=2.0, overlap=0.5, weight_decay=0.01, spectral_decoupling=0.002, t1=None,
                            out=Path("runs/gradient-starvation")):
    """Solve the feature-response flows of the two-feature toy for each ``s1`` with weight decay
    (cross-entropy + WD) and with Spectral Decoupling (cross-entropy + SD), compute the Newton fixed
    points and the starvation derivative dz2*/d(s1^2), print a table, and write
    ``gradient_starvation.nc`` and ``phase_plane.png`` into ``out``. Returns the xarray Dataset."""
    import xarray as xr

    from .._checks import check_positive
    from .._save_times import LogTimes
    from .._solve import solve
    from ..models.ntk_cross_entropy import two_feature_starvation_derivative, two_feature_system

    s1_values = np.asarray(s1_values, float)
    if s1_values.ndim != 1 or s1_values.size == 0:
        raise ValueError("`s1` must list at least one value.")
    check_positive("s1", s1_values)
    check_positive("s2", s2)
    check_positive("weight_decay", weight_decay)
    check_positive("spectral_decoupling", spectral_decoupling)
    if not -1.0 < overlap < 1.0:
        raise ValueError(f"`overlap` (delta) must lie in (-1, 1); got {overlap}.")
    slowest = min(weight_decay, spectral_decoupling * min(s2, s1_values.min()) ** 2)
    t1 = 30.0 / slowest if t1 is None else float(t1)
    check_positive("t1", t1)
    saveat = LogTimes(200, first=1e-3)

    runs = {"weight_decay": [], "spectral_decoupling": []}
    fixed = {"weight_decay": [], "spectral_decoupling": []}
    derivative = []
    print(f"two-feature toy: s2 = {s2:g}, overlap = {overlap:g}, lambda_WD = {weight_decay:g}, "
          f"lambda_SD = {spectral_decoupling:g}, t1 = {t1:.4g}", flush=True)
    print(f"{'s1':>6} {'z* (WD)':>24} {'dz2*/d(s1^2)':>14} {'z* (SD)':>24} {'|z(t1) - z*|':>13}")
    for s1 in s1_values:
        systems = {"weight_decay": two_feature_system(s1, s2, overlap, weight_decay, 0.0),
                   "spectral_decoupling": two_feature_system(s1, s2, overlap, 0.0, spectral_decoupling)}
        gap = 0.0
        for key, system in systems.items():
            traj = solve(system, np.zeros(2), t1, saveat=saveat, log_time=True, rtol=1e-10, atol=1e-12)
            runs[key].append(traj)
            fixed[key].append(system.fixed_point())
            gap = max(gap, float(np.max(np.abs(traj.ys[-1] - fixed[key][-1]))))
        derivative.append(two_feature_starvation_derivative(systems["weight_decay"], fixed["weight_decay"][-1]))
        print(f"{s1:>6.3g} {np.array2string(fixed['weight_decay'][-1], precision=5):>24} {derivative[-1]:>14.4e} "
              f"{np.array2string(fixed['spectral_decoupling'][-1], precision=5):>24} {gap:>13.2e}")
    stats = runs["weight_decay"][-1].stats
    print(f"solver {stats.solver}: {stats.steps} steps, compile {stats.compile_seconds:.2f} s, run {stats.run_seconds * 1e3:.1f} ms")

    times = runs["weight_decay"][0].ts
    data = xr.Dataset(
        {
            f"responses_{key}": (("s1", "time", "feature"), np.stack([np.asarray(t.ys) for t in runs[key]]))
            for key in runs
        }
        | {f"fixed_point_{key}": (("s1", "feature"), np.stack(fixed[key])) for key in fixed}
        | {"starvation_derivative": (("s1",), np.asarray(derivative))},
        coords={"s1": s1_values, "time": times, "feature": [1, 2]},
        attrs={"s2": s2, "overlap": overlap, "weight_decay": weight_decay, "spectral_decoupling": spectral_decoupling,
               "model": "two-feature toy of Pezeshki et al. 2021 (arXiv:2011.09468), Figure_6/toy_fig_6.py"},
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data.to_netcdf(out / "gradient_starvation.nc", engine="h5netcdf")
    _plot(data, out / "phase_plane.png")
    print(f"wrote {out / 'gradient_starvation.nc'} and {out / 'phase_plane.png'}")
    return data


def _plot(data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colours = plt.cm.viridis(np.linspace(0.0, 0.9, data.sizes["s1"]))
    for i, s1 in enumerate(data["s1"].values):
        for key, style in (("weight_decay", "-"), ("spectral_decoupling", "--")):
            z = data[f"responses_{key}"].values[i]
            ax.plot(z[:, 0], z[:, 1], style, color=colours[i], lw=1.2, label=f"s1 = {s1:g}" if key == "weight_decay" else None)
            star = data[f"fixed_point_{key}"].values[i]
            ax.plot(star[0], star[1], "o" if key == "weight_decay" else "s", color=colours[i], ms=5)
    ax.set_xlabel("z1 (response to feature 1)")
    ax.set_ylabel("z2 (response to feature 2)")
    ax.set_title("solid/circles: CE + weight decay; dashed/squares: CE + Spectral Decoupling", fontsize="small")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run(args):
    run_gradient_starvation(args.s1, s2=args.s2, overlap=args.overlap, weight_decay=args.weight_decay,
                            spectral_decoupling=args.spectral_decoupling, t1=args.t1, out=args.out)


COMMANDS = [
    Command(
        "run", "gradient-starvation", "feature responses of cross-entropy with WD vs Spectral Decoupling (Pezeshki et al. 2021)",
        _arguments, _run,
        description="Solve the NTK feature-response flows of the two-feature toy (U a rotation by the overlap, "
        "y = (1, 1)) for each s1, with weight decay and with Spectral Decoupling; print the Newton fixed points "
        "and the starvation derivative dz2*/d(s1^2); write NetCDF and the z1-z2 phase plane.",
    ),
]
