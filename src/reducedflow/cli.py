"""The ``reducedflow`` command line: ``run``, ``check``, ``list``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _enable_compilation_cache() -> None:
    """Persist XLA compilations across CLI invocations (JAX's persistent cache)."""
    import jax

    cache = Path(os.environ.get("REDUCEDFLOW_CACHE", Path.home() / ".cache" / "reducedflow" / "jax"))
    try:
        cache.mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", str(cache))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    except OSError:
        pass  # a read-only home: run without the cache


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reducedflow",
        description="Reduced equations of neural-network learning dynamics: solve, check, plot.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="solve a reduced system, write NetCDF + PNG, print a summary")
    jobs = run.add_subparsers(dest="job", metavar="SYSTEM")
    linear = jobs.add_parser(
        "linear-modes",
        help="mode strengths of a deep linear network (Saxe et al. 2014)",
        description="Solve the balanced mode ODEs tau du/dt = D u^(2-2/D) (s - u) and compare "
        "the learning times (u = s/2) with the closed form (D = 2) or quadrature.",
    )
    linear.add_argument("--depth", type=int, default=2, help="number of weight matrices D (>= 2; default 2)")
    linear.add_argument("--singular-values", type=_float_list, default=[3.0, 2.0, 1.0],
                        help="input-output singular values s, comma-separated (default 3,2,1)")
    linear.add_argument("--init", type=float, default=1e-3, help="initial mode strength u0 (default 1e-3)")
    linear.add_argument("--tau", type=float, default=1.0, help="time constant tau (default 1)")
    linear.add_argument("--t1", type=float, default=None,
                        help="final time (default: twice the slowest learning time)")
    linear.add_argument("--out", type=Path, default=Path("runs/linear-modes"),
                        help="output folder (default runs/linear-modes)")

    validate = commands.add_parser(
        "validate", help="train finite networks and measure their gap to the reduced system"
    )
    vjobs = validate.add_subparsers(dest="job", metavar="SYSTEM")
    vlinear = vjobs.add_parser(
        "linear-modes",
        help="deep linear network (full-batch GD, aligned init) vs its mode ODEs",
        description="Train a deep linear network with full-batch GD at several learning rates "
        "and print the maximum gap between its mode strengths and the reduced mode ODEs; the "
        "gap of GD to gradient flow is O(learning rate).",
    )
    vlinear.add_argument("--singular-values", type=_float_list, default=[3.0, 1.5, 0.5],
                         help="singular values s (default 3,1.5,0.5)")
    vlinear.add_argument("--widths", type=_float_list, default=[5, 6, 4],
                         help="layer widths N1,...,N_{D+1} (default 5,6,4: two layers)")
    vlinear.add_argument("--learning-rates", type=_float_list, default=[0.02, 0.01, 0.005],
                         help="GD steps to compare (default 0.02,0.01,0.005)")
    vlinear.add_argument("--init", type=float, default=1e-2, help="initial mode strength u0 (default 1e-2)")
    vlinear.add_argument("--t1", type=float, default=10.0, help="time horizon (default 10)")
    vlinear.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    vlinear.add_argument("--out", type=Path, default=None, help="write the study as NetCDF here")

    check = commands.add_parser("check", help="check papers' claims numerically")
    check.add_argument("paper", nargs="?", default=None, help="paper key (see `reducedflow list`)")
    check.add_argument("--claim", default=None, help="only this claim")

    commands.add_parser("list", help="list runnable systems and papers with checks")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _enable_compilation_cache()
    try:
        if args.command == "run":
            if args.job is None:
                parser.parse_args(["run", "--help"])
            from ._jobs import run_linear_modes

            run_linear_modes(
                singular_values=args.singular_values, depth=args.depth, u0=args.init,
                tau=args.tau, t1=args.t1, out=args.out,
            )
            return 0
        if args.command == "validate":
            if args.job is None:
                parser.parse_args(["validate", "--help"])
            from ._jobs import validate_linear_modes_job

            validate_linear_modes_job(
                singular_values=args.singular_values, widths=args.widths,
                learning_rates=args.learning_rates, u0=args.init, t1=args.t1, seed=args.seed,
                out=args.out,
            )
            return 0
        if args.command == "check":
            return _check(args.paper, args.claim)
        if args.command == "list":
            from .claims import papers

            print("systems (reducedflow run / validate ...):\n  linear-modes")
            print("papers with checks (reducedflow check ...):")
            for paper in papers():
                print(f"  {paper}")
            return 0
    except ValueError as err:
        print(f"reducedflow: error: {err}", file=sys.stderr)
        return 2
    return 0


def _check(paper, name) -> int:
    from .claims import iter_checks

    results = []
    for result in iter_checks(paper, name):
        print(result.summary(), flush=True)
        results.append(result)
    failed = sum(not r.passed for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
