"""The dynamics toolkit's speed: (a) a 1000-point parameter sweep (``analysis.sweep``: one
system vmap-ed over the grid, chunked) against a loop of scipy ``solve_ivp`` solves of the
same system at the same tolerances, compile time separate; (b) the fixed-point search
(``find_fixed_points``: vmap-ed multi-start Newton) on a 2-D and a 50-D system, compile time
separate; (c) the Lorenz Lyapunov spectrum.

Run: python benchmarks/dynamics_speed.py [--points 1000]
"""

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

import reducedflow  # noqa: F401  (float64)
from reducedflow._system import AbstractSystem
from reducedflow.analysis.fixed_points import find_fixed_points
from reducedflow.analysis.lyapunov import lyapunov_spectrum
from reducedflow.analysis.sweep import sweep
from reducedflow.models.classic import FitzHughNagumo, HopfNormalForm, Lorenz

from _common import table

RTOL, ATOL = 1e-8, 1e-10


def bench_sweep(points: int):
    rows = []
    cases = [
        ("HopfNormalForm over mu", HopfNormalForm(), "mu", np.linspace(-1.0, 1.0, points), {"x": 0.5, "y": 0.0}, 20.0,
         "DOP853",
         lambda mu: (lambda t, y: [mu * y[0] - y[1] - y[0] * (y @ y), y[0] + mu * y[1] - y[1] * (y @ y)])),
        ("FitzHughNagumo over I", FitzHughNagumo(), "current", np.linspace(0.0, 1.0, points), {"v": -1.0, "w": 1.0},
         100.0, "LSODA",
         lambda i: (lambda t, y: [y[0] - y[0] ** 3 / 3 - y[1] + i, (y[0] + 0.7 - 0.8 * y[1]) / 12.5])),
    ]
    for name, system, field, grid, y0, t1, method, rhs in cases:
        ts = np.linspace(0.0, t1, 51)
        start = time.perf_counter()
        ds = sweep(system, {field: grid}, y0, t1, saveat=ts, rtol=RTOL, atol=ATOL, chunk_size=1000)
        first = time.perf_counter() - start
        start = time.perf_counter()
        ds = sweep(system, {field: grid}, y0, t1, saveat=ts, rtol=RTOL, atol=ATOL, chunk_size=1000)
        warm = time.perf_counter() - start
        compile_s = first - warm
        start = time.perf_counter()
        ref = []
        y0_flat = list(y0.values())
        for value in grid:
            out = solve_ivp(rhs(value), (0.0, t1), y0_flat, method=method, t_eval=ts, rtol=RTOL, atol=ATOL)
            ref.append(out.y[0])
        scipy_s = time.perf_counter() - start
        first_var = list(y0)[0]
        diff = np.nanmax(np.abs(ds[first_var].values - np.array(ref)))
        rows.append([name, points, ds.attrs["solver"], f"{compile_s:.2f}", f"{warm:.2f}",
                     f"scipy {method}", f"{scipy_s:.2f}", f"{scipy_s / warm:.1f}", f"{diff:.1e}",
                     int((ds["status"] == "success").sum())])
    return rows


class HopfieldNetwork(AbstractSystem):
    """x' = -x + W tanh(x): a 50-D system with many fixed points (symmetric coupling)."""

    coupling: jax.Array = eqx.field(converter=lambda a: jnp.asarray(a, jnp.float64))

    def vector_field(self, t, y, args):
        return -y + self.coupling @ jnp.tanh(y)

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.coupling.shape[0],), jnp.float64)


def bench_fixed_points():
    rng = np.random.default_rng(0)
    n = 50
    patterns = rng.choice([-1.0, 1.0], size=(3, n))
    coupling = 1.5 * patterns.T @ patterns / n
    rows = []
    for name, system, lo, hi, starts in (
        ("FitzHughNagumo (2-D)", FitzHughNagumo(), [-3.0, -3.0], [3.0, 3.0], 256),
        ("Hopfield network (50-D)", HopfieldNetwork(coupling), -3.0, 3.0, 256),
        ("Hopfield network (50-D)", HopfieldNetwork(coupling), -3.0, 3.0, 1024),
    ):
        first = find_fixed_points(system, lo, hi, starts=starts)
        warm = find_fixed_points(system, lo, hi, starts=starts)
        kinds = {}
        for p in warm:
            kinds[p.label] = kinds.get(p.label, 0) + 1
        rows.append([name, starts, f"{first.seconds - warm.seconds:.2f}", f"{warm.seconds:.3f}", len(warm),
                     "; ".join(f"{v} {k}" for k, v in sorted(kinds.items()))])
    return rows


def bench_lyapunov():
    rows = []
    for k, t1 in ((1, 1000.0), (3, 1000.0)):
        first = lyapunov_spectrum(Lorenz(), {"x": 1.0, "y": 1.0, "z": 20.0}, t1=t1, dt=0.01, transient=20.0,
                                  n_exponents=k)
        warm = lyapunov_spectrum(Lorenz(), {"x": 1.0, "y": 1.0, "z": 20.0}, t1=t1, dt=0.01, transient=20.0,
                                 n_exponents=k)
        rows.append([k, f"{t1:g}", f"{first.seconds - warm.seconds:.2f}", f"{warm.seconds:.2f}",
                     ", ".join(f"{e:.4f}" for e in warm.exponents)])
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=1000)
    options = parser.parse_args()
    print(f"(a) {options.points}-point sweep, rtol={RTOL:g}, atol={ATOL:g}, 51 saved times")
    print(table(["system", "points", "solver", "compile s", "sweep s", "reference", "ref s", "speed-up",
                 "max |diff|", "succeeded"], bench_sweep(options.points)))
    print("\n(b) fixed-point search (multi-start Newton, vmap-ed)")
    print(table(["system", "starts", "compile s", "search s", "found", "types"], bench_fixed_points()))
    print("\n(c) Lorenz Lyapunov exponents (RK4 dt = 0.01, QR every 1.0; reference 0.9056, 0, -14.5723)")
    print(table(["exponents", "t1", "compile s", "run s", "values"], bench_lyapunov()))
