"""``reducedflow run linear-modes`` and ``reducedflow validate linear-modes``."""

from __future__ import annotations

from pathlib import Path

from ._registry import Command, float_list


def _run_arguments(parser):
    parser.add_argument("--depth", type=int, default=2, help="number of weight matrices D (>= 2; default 2)")
    parser.add_argument("--singular-values", type=float_list, default=[3.0, 2.0, 1.0],
                        help="input-output singular values s, comma-separated (default 3,2,1)")
    parser.add_argument("--init", type=float, default=1e-3, help="initial mode strength u0 (default 1e-3)")
    parser.add_argument("--tau", type=float, default=1.0, help="time constant tau (default 1)")
    parser.add_argument("--t1", type=float, default=None,
                        help="final time (default: twice the slowest learning time)")
    parser.add_argument("--out", type=Path, default=Path("runs/linear-modes"),
                        help="output folder (default runs/linear-modes)")


def _run(args):
    from .._jobs import run_linear_modes

    run_linear_modes(singular_values=args.singular_values, depth=args.depth, u0=args.init,
                     tau=args.tau, t1=args.t1, out=args.out)


def _validate_arguments(parser):
    parser.add_argument("--singular-values", type=float_list, default=[3.0, 1.5, 0.5],
                        help="singular values s (default 3,1.5,0.5)")
    parser.add_argument("--widths", type=float_list, default=[5, 6, 4],
                        help="layer widths N1,...,N_{D+1} (default 5,6,4: two layers)")
    parser.add_argument("--learning-rates", type=float_list, default=[0.02, 0.01, 0.005],
                        help="GD steps to compare (default 0.02,0.01,0.005)")
    parser.add_argument("--init", type=float, default=1e-2, help="initial mode strength u0 (default 1e-2)")
    parser.add_argument("--t1", type=float, default=10.0, help="time horizon (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=None, help="write the study as NetCDF here")


def _validate(args):
    from .._jobs import validate_linear_modes_job

    validate_linear_modes_job(singular_values=args.singular_values, widths=args.widths,
                              learning_rates=args.learning_rates, u0=args.init, t1=args.t1,
                              seed=args.seed, out=args.out)


COMMANDS = [
    Command(
        "run", "linear-modes", "mode strengths of a deep linear network (Saxe et al. 2014)",
        _run_arguments, _run,
        description="Solve the balanced mode ODEs tau du/dt = D u^(2-2/D) (s - u) and compare "
        "the learning times (u = s/2) with the closed form (D = 2) or quadrature.",
    ),
    Command(
        "validate", "linear-modes", "deep linear network (full-batch GD, aligned init) vs its mode ODEs",
        _validate_arguments, _validate,
        description="Train a deep linear network with full-batch GD at several learning rates "
        "and print the maximum gap between its mode strengths and the reduced mode ODEs; the "
        "gap of GD to gradient flow is O(learning rate).",
    ),
]
