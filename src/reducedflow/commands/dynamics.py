"""``reducedflow portrait SYSTEM ...`` and ``reducedflow sweep SYSTEM ...``: the dynamics
toolkit on the command line, for the systems in ``SYSTEMS``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from ._registry import Command


@dataclasses.dataclass(frozen=True)
class PortraitSystem:
    """A system the dynamics commands know by name: how to build it with its defaults, the
    default window and initial state, and a one-line description."""

    build: Callable
    help: str
    xlim: tuple[float, float] = (-2.0, 2.0)
    ylim: tuple[float, float] = (-2.0, 2.0)
    y0: dict | None = None
    log: bool = False


def _classic(name):
    def build():
        from ..models import classic

        return getattr(classic, name)()

    return build


def _linear():
    import numpy as np

    from ..models.classic import LinearSystem

    return LinearSystem(np.array([[0.0, 1.0], [-1.0, -0.5]]))


def _fast_slow():
    from ..models.fast_slow import FastSlowGradientFlow

    return FastSlowGradientFlow(epsilon=0.1)


def _curved_fast_slow():
    from ..models.fast_slow import CurvedFastSlowGradientFlow

    return CurvedFastSlowGradientFlow(epsilon=0.1)


def _unbalanced_modes():
    from ..models.linear_modes import UnbalancedModes

    return UnbalancedModes(singular_values=[2.0])


#: The systems ``portrait`` and ``sweep`` accept, by name.
SYSTEMS: dict[str, PortraitSystem] = {
    "linear": PortraitSystem(_linear, "y' = A y (default A = [[0, 1], [-1, -0.5]]: a stable focus)"),
    "fitzhugh-nagumo": PortraitSystem(_classic("FitzHughNagumo"), "FitzHugh-Nagumo neuron (v fast, w slow)",
                                      (-2.5, 2.5), (-1.0, 2.0), {"v": -1.0, "w": 1.0}),
    "lorenz": PortraitSystem(_classic("Lorenz"), "Lorenz 1963 (a 2-D slice; --fixed or --slaved the third)",
                             (-20.0, 20.0), (0.0, 50.0), {"x": 1.0, "y": 1.0, "z": 20.0}),
    "fold": PortraitSystem(_classic("FoldNormalForm"), "x' = r + x^2 (1-D: sweep only)", y0={"x": 0.0}),
    "hopf": PortraitSystem(_classic("HopfNormalForm"), "supercritical Hopf normal form", y0={"x": 0.5, "y": 0.0}),
    "double-well": PortraitSystem(_classic("DoubleWell"), "gradient flow of a tilted double well",
                                  y0={"x": 0.5, "y": 0.5}),
    "fast-slow": PortraitSystem(_fast_slow, "linear fast/slow gradient flow (models.fast_slow)", (-0.5, 1.5),
                                (-0.5, 1.5), {"slow": 0.0, "fast": 1.0}),
    "curved-fast-slow": PortraitSystem(_curved_fast_slow, "curved fast/slow gradient flow (models.fast_slow)",
                                       (-1.5, 1.5), (-0.5, 2.0), {"slow": 0.0, "fast": 1.0}),
    "unbalanced-modes": PortraitSystem(_unbalanced_modes, "two-layer linear modes a, b (Saxe et al. 2014)",
                                       (1e-3, 3.0), (1e-3, 3.0), {"first_layer": [0.01], "second_layer": [0.02]},
                                       log=True),
}


def _resolve(name: str) -> PortraitSystem:
    if name not in SYSTEMS:
        raise ValueError(f"`SYSTEM` must be one of {sorted(SYSTEMS)}; got {name!r}.")
    return SYSTEMS[name]


def _split_pair(text: str, option: str) -> tuple[str, str]:
    if "=" not in text:
        raise ValueError(f"`{option}` takes NAME=VALUE; got {text!r}.")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def _numbers(text: str, option: str):
    import numpy as np

    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"`{option}` expects numbers (comma-separated); got {text!r}.") from None
    if not values:
        raise ValueError(f"`{option}` expects at least one number; got {text!r}.")
    return np.array(values)


def with_parameters(system, assignments: list[str]):
    """``system`` with the fields named in ``assignments`` (``"name=value"``, values
    comma-separated for array fields, reshaped to the field's shape) replaced through the
    constructor, so the system's own checks run."""
    import numpy as np

    if not assignments:
        return system
    fields = {f.name for f in dataclasses.fields(system)}
    changes = {}
    for text in assignments:
        key, value = _split_pair(text, "--param")
        if key not in fields:
            raise ValueError(f"`--param`: {key!r} is not a parameter of {type(system).__name__}; "
                             f"parameters: {sorted(fields)}.")
        values = _numbers(value, f"--param {key}")
        current = np.shape(getattr(system, key))
        if values.size == int(np.prod(current)) and current:
            values = values.reshape(current)
        elif values.size == 1:
            values = float(values[0])
        elif len(current) == 2 and int(np.sqrt(values.size)) ** 2 == values.size:
            k = int(np.sqrt(values.size))
            values = values.reshape(k, k)
        changes[key] = values
    return dataclasses.replace(system, **changes)


def _limits(text, option):
    values = _numbers(text, option)
    if values.size != 2:
        raise ValueError(f"`{option}` takes LOW,HIGH; got {text!r}.")
    return float(values[0]), float(values[1])


# ----------------------------------------------------------------------------------------------
# portrait


def _portrait_arguments(parser):
    parser.add_argument("system", metavar="SYSTEM", help=f"one of: {', '.join(SYSTEMS)}")
    parser.add_argument("--x", default=None, help="horizontal coordinate (default: the first)")
    parser.add_argument("--y", default=None, help="vertical coordinate (default: the second)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter (repeatable; arrays comma-separated)")
    parser.add_argument("--xlim", default=None, metavar="LOW,HIGH", help="horizontal window")
    parser.add_argument("--ylim", default=None, metavar="LOW,HIGH", help="vertical window")
    parser.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                        help="value of a coordinate not plotted (repeatable; default 0)")
    parser.add_argument("--slaved", default=None, metavar="NAMES",
                        help="coordinates solved from their own equations = 0 (comma-separated), "
                        "or 'fast' for the declared fast coordinates")
    parser.add_argument("--trajectory", action="append", default=[], metavar="U,V",
                        help="draw the trajectory from this plane point (repeatable)")
    parser.add_argument("--t1", type=float, default=20.0, help="trajectory length (default 20)")
    parser.add_argument("--log-x", action="store_true", help="logarithmic horizontal axis")
    parser.add_argument("--log-y", action="store_true", help="logarithmic vertical axis")
    parser.add_argument("--out", type=Path, default=Path("portrait.png"), help="image file (default portrait.png)")


def _portrait(args):
    import matplotlib

    matplotlib.use("Agg")
    from ..analysis._layout import layout_of
    from ..plot.portrait import phase_portrait

    entry = _resolve(args.system)
    system = with_parameters(entry.build(), args.param)
    layout = layout_of(system)
    if layout.size < 2:
        raise ValueError(f"`SYSTEM`: {args.system} has one coordinate {list(layout.names)}; a phase portrait "
                         "needs two (try `reducedflow sweep`).")
    x = args.x if args.x is not None else layout.names[0]
    y = args.y if args.y is not None else layout.names[1]
    layout.index(x, "--x")
    layout.index(y, "--y")
    fixed = {}
    for text in args.fixed:
        key, value = _split_pair(text, "--fixed")
        layout.index(key, "--fixed")
        fixed[key] = float(_numbers(value, "--fixed")[0])
    slaved = None
    if args.slaved:
        slaved = True if args.slaved == "fast" else [s.strip() for s in args.slaved.split(",") if s.strip()]
    xlim = _limits(args.xlim, "--xlim") if args.xlim else entry.xlim
    ylim = _limits(args.ylim, "--ylim") if args.ylim else entry.ylim
    trajectories = [tuple(_numbers(text, "--trajectory")) for text in args.trajectory]
    for start in trajectories:
        if len(start) not in (2, layout.size):
            raise ValueError(f"`--trajectory` takes U,V (or all {layout.size} coordinates); got {start}.")
    portrait = phase_portrait(system, x, y, xlim=xlim, ylim=ylim, fixed=fixed or None, slaved=slaved,
                              trajectories=trajectories, t1=args.t1, log_x=args.log_x or entry.log,
                              log_y=args.log_y or entry.log)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    portrait.savefig(args.out)
    print(portrait.fixed_points)
    print(f"wrote {args.out}")


# ----------------------------------------------------------------------------------------------
# sweep


def _sweep_arguments(parser):
    parser.add_argument("system", metavar="SYSTEM", help=f"one of: {', '.join(SYSTEMS)}")
    parser.add_argument("--over", action="append", default=[], metavar="NAME=START:STOP:NUM[:log]",
                        help="a swept parameter and its grid (repeatable: outer product), or NAME=v1,v2,...")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="set a parameter that is not swept (repeatable)")
    parser.add_argument("--y0", action="append", default=[], metavar="NAME=VALUE",
                        help="initial value of a state part (repeatable; default: the system's)")
    parser.add_argument("--t1", type=float, default=10.0, help="final time (default 10)")
    parser.add_argument("--saves", type=int, default=50, help="number of saved times (default 50, linear)")
    parser.add_argument("--rtol", type=float, default=1e-8, help="relative tolerance (default 1e-8)")
    parser.add_argument("--atol", type=float, default=1e-10, help="absolute tolerance (default 1e-10)")
    parser.add_argument("--chunk-size", type=int, default=256, help="grid points per compiled call (default 256)")
    parser.add_argument("--out", type=Path, default=Path("sweep.nc"), help="NetCDF file (default sweep.nc)")


def _grid(text):
    import numpy as np

    key, spec = _split_pair(text, "--over")
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
            raise ValueError(f"`--over` takes NAME=START:STOP:NUM[:log]; got {text!r}.")
        try:
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError:
            raise ValueError(f"`--over` takes NAME=START:STOP:NUM[:log] with numbers; got {text!r}.") from None
        if num < 1:
            raise ValueError(f"`--over`: NUM must be >= 1; got {num}.")
        if len(parts) == 4:
            if start <= 0 or stop <= 0:
                raise ValueError(f"`--over`: a log grid needs START, STOP > 0; got {text!r}.")
            return key, np.geomspace(start, stop, num)
        return key, np.linspace(start, stop, num)
    return key, _numbers(spec, "--over")


def _sweep(args):
    import jax
    import numpy as np

    from ..analysis.sweep import sweep

    entry = _resolve(args.system)
    system = with_parameters(entry.build(), args.param)
    if not args.over:
        raise ValueError("`--over` is required: NAME=START:STOP:NUM[:log] (repeatable).")
    over = dict(_grid(text) for text in args.over)
    y0 = dict(entry.y0) if entry.y0 is not None else None
    shapes = system.state_shapes()
    if y0 is None:
        y0 = jax.tree_util.tree_map(lambda s: np.zeros(s.shape), shapes)
    for text in args.y0:
        key, value = _split_pair(text, "--y0")
        if not isinstance(y0, dict) or key not in y0:
            names = sorted(y0) if isinstance(y0, dict) else []
            raise ValueError(f"`--y0`: {key!r} is not a state part of {type(system).__name__}; parts: {names}.")
        values = _numbers(value, f"--y0 {key}")
        y0[key] = values.reshape(np.shape(y0[key])) if np.ndim(y0[key]) else float(values[0])
    if args.saves < 2:
        raise ValueError(f"`--saves` must be >= 2; got {args.saves}.")
    ds = sweep(system, over, y0, args.t1, saveat=np.linspace(0.0, args.t1, args.saves), rtol=args.rtol,
               atol=args.atol, chunk_size=args.chunk_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    ds.to_netcdf(args.out, engine="h5netcdf")
    statuses, counts = np.unique(ds["status"].values, return_counts=True)
    summary = ", ".join(f"{c} {s}" for s, c in zip(statuses, counts))
    print(f"{type(system).__name__}: {ds.attrs['n_points']} points over {', '.join(over)} ({summary}); "
          f"compile {ds.attrs['compile_seconds']:.2f} s, run {ds.attrs['run_seconds']:.2f} s")
    print(f"wrote {args.out}")


COMMANDS = [
    Command(
        "portrait", None, "draw the phase portrait of a 2-D system or slice",
        _portrait_arguments, _portrait,
        description="Vector field, nullclines, fixed points by type (printed as a table), the critical "
        "manifold of fast/slow systems and trajectories, on the plane of two coordinates --x, --y. "
        "Systems: " + "; ".join(f"{k}: {v.help}" for k, v in SYSTEMS.items()),
    ),
    Command(
        "sweep", None, "solve a system over a parameter grid, write NetCDF",
        _sweep_arguments, _sweep,
        description="Solve SYSTEM at every point of the grid given by --over (vmap over systems, chunked); "
        "a failing point is recorded with its status, the others are kept.",
    ),
]
