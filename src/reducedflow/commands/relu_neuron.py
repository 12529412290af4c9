"""``reducedflow run relu-neuron``: the exact event-driven flow of a single ReLU neuron."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._registry import Command


def _arguments(parser):
    parser.add_argument("--gamma", type=float, default=2.0,
                        help="gamma of the Vardi-Shamir data set x3 = (0, gamma, gamma) (default 2)")
    parser.add_argument("--random", type=int, nargs=2, metavar=("N", "D"), default=None,
                        help="use a random problem with N points in D dimensions instead")
    parser.add_argument("--init", type=float, default=1e-3, help="initial scale for --random (default 1e-3)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --random (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs/relu-neuron"),
                        help="output folder (default runs/relu-neuron)")


def _run(args):
    from ..models.relu_neuron import ReluNeuron, random_relu_problem, solve_event_driven, vardi_shamir_data

    if args.random is None:
        x, y, w0 = vardi_shamir_data(args.gamma)
        label = f"Vardi-Shamir data, gamma = {args.gamma:g}"
    else:
        x, y, w0 = random_relu_problem(args.seed, args.random[0], args.random[1], args.init)
        label = f"random problem n = {args.random[0]}, d = {args.random[1]}, init {args.init:g}, seed {args.seed}"
    sol = solve_event_driven(ReluNeuron(x, y), w0)
    print(f"{label}: {len(sol.events)} switching events")
    print(sol.event_log())
    print(f"limit w = {np.array2string(sol.limit, precision=8)}, loss {sol.limit_loss:.3e}, "
          f"support vectors {list(sol.final_active)}, ever active {list(sol.ever_active)}, "
          f"stationary residual {sol.stationary_residual:.2e}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ds = sol.to_xarray()
    ds.to_netcdf(out / "trajectory.nc", engine="h5netcdf")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    t = ds["time"].values[1:]
    for k in range(ds["w"].shape[1]):
        axes[0].plot(t, ds["w"].values[1:, k], label=f"w[{k}]")
    for e in sol.events:
        axes[0].axvline(e.time, color="k", ls=":", lw=0.7)
    axes[0].set_xscale("log"); axes[0].set_xlabel("t"); axes[0].legend(fontsize="small")
    axes[0].set_title("weights (dotted: switching events)", fontsize="medium")
    axes[1].loglog(t, ds["loss"].values[1:], label="loss")
    axes[1].loglog(t, ds["norm_squared"].values[1:], label="||w||^2")
    axes[1].set_xlabel("t"); axes[1].legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out / "relu_neuron.png", dpi=120)
    plt.close(fig)
    print(f"wrote {out / 'trajectory.nc'} and {out / 'relu_neuron.png'}")


COMMANDS = [
    Command(
        "run", "relu-neuron", "exact gradient flow of one ReLU neuron (Lee-Sim-Ye 2022, Vardi-Shamir 2021)",
        _arguments, _run,
        description="Solve the gradient flow of a single ReLU neuron on the square loss exactly "
        "(closed form per activation region, switching times by root finding), print the event "
        "log and the limit with its support vectors, write NetCDF + PNG.",
    ),
]
