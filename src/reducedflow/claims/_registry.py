"""The claim registry: each paper's claims as functions that measure and compare."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of checking one claim: what was measured against what theory predicts.

    ``measured`` and ``expected`` map quantity names to numbers; ``tolerance`` is the accepted
    relative (or stated) deviation; ``passed`` says whether every quantity was within it."""

    paper: str
    name: str
    statement: str
    passed: bool
    measured: dict
    expected: dict
    tolerance: float
    seconds: float = 0.0
    note: str = ""

    def summary(self) -> str:
        mark = "PASS" if self.passed else "FAIL"
        lines = [f"[{mark}] {self.paper} :: {self.name} ({self.seconds:.1f} s)", f"    claim: {self.statement}"]
        for key in self.measured:
            lines.append(
                f"    {key}: measured {_fmt(self.measured[key])}, theory {_fmt(self.expected.get(key))}"
            )
        lines.append(f"    tolerance: {self.tolerance:g}" + (f"; {self.note}" if self.note else ""))
        return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "-"
    arr = np.asarray(value)
    if arr.ndim == 0:
        return f"{arr.item():.6g}" if np.issubdtype(arr.dtype, np.number) else str(arr.item())
    return np.array2string(arr, precision=6, separator=", ")


@dataclasses.dataclass(frozen=True)
class Claim:
    paper: str
    name: str
    statement: str
    check: Callable[[], tuple[dict, dict, float, bool, str]]

    def run(self) -> CheckResult:
        start = time.perf_counter()
        measured, expected, tolerance, passed, note = self.check()
        return CheckResult(
            self.paper, self.name, self.statement, bool(passed), measured, expected, tolerance,
            time.perf_counter() - start, note,
        )


REGISTRY: dict[str, dict[str, Claim]] = {}


def claim(paper: str, name: str, statement: str):
    """Register a check. The decorated function takes no arguments and returns
    ``(measured, expected, tolerance, passed, note)``; use ``compare`` for the common case."""

    def register(fn):
        REGISTRY.setdefault(paper, {})[name] = Claim(paper, name, statement, fn)
        return fn

    return register


def compare(measured: dict, expected: dict, rtol: float, note: str = ""):
    """Pass when every measured quantity is within relative tolerance ``rtol`` of theory."""
    passed = all(
        np.allclose(np.asarray(measured[k], float), np.asarray(expected[k], float), rtol=rtol, atol=0.0)
        for k in expected
    )
    return measured, expected, rtol, passed, note


def papers() -> list[str]:
    _load_all()
    return sorted(REGISTRY)


def run_checks(paper: str | None = None, name: str | None = None) -> list[CheckResult]:
    """Run the registered claims (all, one paper's, or one claim) and return their results."""
    return list(iter_checks(paper, name))


def iter_checks(paper: str | None = None, name: str | None = None):
    """Like ``run_checks``, yielding each result as soon as it is measured."""
    _load_all()
    if paper is not None and paper not in REGISTRY:
        raise ValueError(f"`paper` must be one of {sorted(REGISTRY)}; got {paper!r}.")
    selected = [REGISTRY[paper]] if paper else [REGISTRY[p] for p in sorted(REGISTRY)]
    claims = [c for group in selected for c in group.values() if name is None or c.name == name]
    if name is not None and not claims:
        known = sorted(c.name for group in selected for c in group.values())
        raise ValueError(f"`name` must be one of {known}; got {name!r}.")
    for c in claims:
        yield c.run()


def _load_all():
    """Import every paper module of this package (``claims/<paper>.py``): importing one
    registers its claims, so a new paper needs no edit here."""
    import importlib
    import pkgutil

    from .. import claims

    for module in pkgutil.iter_modules(claims.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{claims.__name__}.{module.name}")
