"""(a) Steps, rejected steps, wall time and error against the time-scale ratio eps on the two
fast/slow test systems, t in [0, 10], rtol = 1e-8, atol = 1e-10:

- FastSlowGradientFlow (linear; error against its closed form),
- CurvedFastSlowGradientFlow (nonlinear, curved slow manifold; error against scipy Radau at
  rtol = 1e-12),

for Kvaerno5 with diffrax's defaults (root finder at the controller's tolerance, PID(0, 1)),
each of reducedflow's two changes alone, reducedflow's default (both), Tsit5, and scipy
Radau/BDF/LSODA (through reducedflow's scipy backend: JAX-compiled right-hand side and
Jacobian called from scipy).

Run: python benchmarks/stiff_scaling.py
"""

import diffrax as dfx
import numpy as np

import reducedflow as rf
from reducedflow.models import CurvedFastSlowGradientFlow, FastSlowGradientFlow

from _common import best_of, table

T1 = 10.0
RTOL, ATOL = 1e-8, 1e-10
EPSILONS = [1e-2, 1e-4, 1e-6, 1e-8, 1e-10]
TSIT5_MAX_EPS = 1e-4  # below this Tsit5 needs > 10^6 steps
SYSTEMS = {
    "linear": (FastSlowGradientFlow, {"slow": 0.0, "fast": 2.0}),
    "curved": (CurvedFastSlowGradientFlow, {"slow": 0.2, "fast": 2.0}),
}


def configurations():
    default_pid = dfx.PIDController(rtol=RTOL, atol=ATOL)
    tuned_pid = rf.default_controller(dfx.Kvaerno5(), RTOL, ATOL)
    loose = dfx.Kvaerno5(root_finder=rf.stiff_root_finder(RTOL))
    yield "Kvaerno5, diffrax defaults", dict(solver=dfx.Kvaerno5(), stepsize_controller=default_pid)
    yield "Kvaerno5, PID(0.3, 0.3) only", dict(solver=dfx.Kvaerno5(), stepsize_controller=tuned_pid)
    yield "Kvaerno5, sqrt(rtol) root finder only", dict(solver=loose, stepsize_controller=default_pid)
    yield "reducedflow default (both)", dict()
    yield "Tsit5", dict(solver=dfx.Tsit5(), max_steps=2_000_000)
    for method in ("Radau", "BDF", "LSODA"):
        yield f"scipy {method}", dict(backend="scipy", solver=method)


def reference(system_name, system, y0, ts):
    if system_name == "linear":
        return system.closed_form(ts, y0)
    return rf.solve(system, y0, T1, saveat=ts, backend="scipy", solver="Radau", rtol=1e-12, atol=1e-14).ys


def main():
    for system_name, (cls, y0) in SYSTEMS.items():
        rows = []
        ts = rf.LinearTimes(101).times(0.0, T1)
        refs = {eps: reference(system_name, cls(eps), y0, ts) for eps in EPSILONS}
        for name, kwargs in configurations():
            for eps in EPSILONS:
                if name == "Tsit5" and eps < TSIT5_MAX_EPS:
                    rows.append([name, f"{eps:.0e}", "-", "-", "-", "(> 10^6 steps)"])
                    continue
                system = cls(eps)
                solve = lambda: rf.solve(system, y0, T1, saveat=ts, rtol=RTOL, atol=ATOL, throw=False, **kwargs)
                traj = solve()
                if not traj.succeeded:
                    rows.append([name, f"{eps:.0e}", traj.stats.steps, traj.stats.rejected, "-", traj.status])
                    continue
                err = max(np.max(np.abs(traj.ys[k] - refs[eps][k])) for k in y0)
                wall = best_of(solve, repeats=2)
                rejected = "-" if traj.stats.rejected is None else traj.stats.rejected
                rows.append([name, f"{eps:.0e}", traj.stats.steps, rejected, f"{wall * 1e3:.1f}", f"{err:.1e}"])
                print(f"{system_name} {name:40s} eps={eps:.0e} steps={traj.stats.steps}", flush=True)
        print(f"\n{system_name} system\n")
        print(table(["solver", "eps", "steps", "rejected", "run ms", "max error"], rows))
        print()


if __name__ == "__main__":
    main()
