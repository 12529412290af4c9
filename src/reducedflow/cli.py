"""The ``reducedflow`` command line: ``check``, ``list``, and the jobs registered in
``reducedflow.commands`` (``run``, ``validate``, ``portrait``, ...)."""

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


def _parser() -> argparse.ArgumentParser:
    from .commands import iter_commands
    from .commands._registry import VERB_HELP

    parser = argparse.ArgumentParser(
        prog="reducedflow",
        description="Reduced equations of neural-network learning dynamics: solve, check, plot.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    verbs: dict[str, argparse.ArgumentParser] = {}
    systems: dict[str, argparse._SubParsersAction] = {}
    for command in iter_commands():
        if command.name is None:
            sub = commands.add_parser(command.verb, help=command.help, description=command.description)
            command.add_arguments(sub)
            sub.set_defaults(_command=command)
            continue
        if command.verb not in verbs:
            verbs[command.verb] = commands.add_parser(command.verb, help=VERB_HELP.get(command.verb, command.help))
            systems[command.verb] = verbs[command.verb].add_subparsers(dest="job", metavar="SYSTEM")
        sub = systems[command.verb].add_parser(command.name, help=command.help, description=command.description)
        command.add_arguments(sub)
        sub.set_defaults(_command=command)

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
        if args.command == "check":
            return _check(args.paper, args.claim)
        if args.command == "list":
            return _list()
        command = getattr(args, "_command", None)
        if command is None:  # a verb without its SYSTEM
            parser.parse_args([args.command, "--help"])
        status = command.execute(args)
        return 0 if status is None else int(status)
    except ValueError as err:
        print(f"reducedflow: error: {err}", file=sys.stderr)
        return 2


def _list() -> int:
    from .claims import papers
    from .commands import iter_commands

    print("commands (reducedflow VERB [SYSTEM] ...):")
    for command in iter_commands():
        print(f"  {command.verb} {command.name or ''}".rstrip().ljust(34) + command.help)
    print("papers with checks (reducedflow check PAPER):")
    for paper in papers():
        print(f"  {paper}")
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
