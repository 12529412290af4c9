"""Each paper's claims as executable checks (``reducedflow check``)."""

from ._registry import (
    CheckResult as CheckResult,
    REGISTRY as REGISTRY,
    claim as claim,
    compare as compare,
    iter_checks as iter_checks,
    papers as papers,
    run_checks as run_checks,
)
