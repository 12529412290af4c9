"""reducedflow: reduced equations of neural-network learning dynamics.

Importing reducedflow enables JAX's float64 mode (``jax_enable_x64``): every array created
after the import defaults to float64, which the tolerances used here (1e-8 and below) need.
"""

import jax as _jax

_jax.config.update("jax_enable_x64", True)

from ._events import Crossing as Crossing, EventTimes as EventTimes
from ._sde import AbstractSDESystem as AbstractSDESystem
from ._solve_sde import euler_maruyama as euler_maruyama, solve_sde as solve_sde
from ._save_times import LinearTimes as LinearTimes, LogTimes as LogTimes
from ._solve import (
    SolveError as SolveError,
    default_controller as default_controller,
    default_solver as default_solver,
    solve as solve,
    solve_arrays as solve_arrays,
    solve_many as solve_many,
    stiff_root_finder as stiff_root_finder,
)
from ._structured import ParticleJacobian as ParticleJacobian, StructuredChord as StructuredChord
from ._time_change import LogTime as LogTime
from ._system import AbstractSystem as AbstractSystem, STIFF_THRESHOLD as STIFF_THRESHOLD
from ._trajectory import SolverStats as SolverStats, Trajectory as Trajectory

__version__ = "0.1.0"


def __getattr__(name):
    # Heavier layers load on first use: `reducedflow.derive`, `.symbolic` (sympy), `.analysis`, `.plot`.
    if name in ("derive", "symbolic", "analysis", "plot"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'reducedflow' has no attribute {name!r}")
