"""The command registry behind the ``reducedflow`` command line.

Each module in ``reducedflow.commands`` (not starting with ``_``) defines ``COMMANDS``, a list of
:class:`Command`. A command belongs to a verb (``run``, ``validate``, ``portrait``, ``sweep``,
...) and either names a system (``reducedflow run linear-modes``) or, with ``name=None``, is the
verb itself (``reducedflow portrait ...``). A family adds its jobs to the command line by adding a
module here; ``cli.py`` does not change.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import pkgutil
from typing import Callable

VERB_HELP = {
    "run": "solve a reduced system, write NetCDF + PNG, print a summary",
    "validate": "train finite networks and measure their gap to the reduced system",
    "portrait": "draw the phase portrait of a 2-D system or slice",
    "sweep": "solve a system over a parameter grid, write NetCDF",
}


@dataclasses.dataclass(frozen=True)
class Command:
    """One command-line job.

    **Arguments:**

    - `verb`: the first word (``"run"``, ``"validate"``, ...).
    - `name`: the system's name under the verb, or ``None`` when the command is the verb itself.
    - `help`: one line for ``--help`` listings.
    - `add_arguments`: adds the command's options to its ``argparse`` parser.
    - `execute`: runs the command from the parsed namespace; returns an exit status (``None``
      means 0). A ``ValueError`` it raises is printed as ``reducedflow: error: ...`` (status 2).
    - `description`: the longer text of the command's own ``--help``.
    """

    verb: str
    name: str | None
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    execute: Callable[[argparse.Namespace], int | None]
    description: str | None = None


def iter_commands() -> list[Command]:
    """Every registered command, from every module of ``reducedflow.commands``."""
    from reducedflow import commands as package

    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found.extend(getattr(module, "COMMANDS", []))
    return found


def float_list(text: str) -> list[float]:
    """``argparse`` type for comma-separated numbers: ``"3,2,1"`` -> ``[3.0, 2.0, 1.0]``."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
