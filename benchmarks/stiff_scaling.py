"""(a) Steps, rejected steps and wall time against the time-scale ratio eps on the fast/slow
test system (FastSlowGradientFlow), t in [0, 10], rtol = 1e-8, atol = 1e-10:
Kvaerno5 with diffrax's default PID and with the tuned one, Tsit5, scipy Radau/BDF/LSODA.
Also reports each solver's maximum error against the closed form.

Run: python benchmarks/stiff_scaling.py
"""

import diffrax as dfx
import numpy as np

import reducedflow as rf
from reducedflow.models import FastSlowGradientFlow

from _common import best_of, table

Y0 = {"slow": 0.0, "fast": 2.0}
T1 = 10.0
RTOL, ATOL = 1e-8, 1e-10
EPSILONS = [1e-2, 1e-4, 1e-6, 1e-8, 1e-10]
TSIT5_MAX_EPS = 1e-4  # below this Tsit5 needs > 10^6 steps


def configurations():
    yield "Kvaerno5, PID(0, 1) default", dict(solver=dfx.Kvaerno5(), stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL))
    yield "Kvaerno5, PID(0.3, 0.3) tuned", dict(solver=dfx.Kvaerno5(), stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL, pcoeff=0.3, icoeff=0.3))
    yield "Kvaerno5, PID(0.2, 0.4)", dict(solver=dfx.Kvaerno5(), stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL, pcoeff=0.2, icoeff=0.4))
    yield "Kvaerno5, PID(0.1, 0.6)", dict(solver=dfx.Kvaerno5(), stepsize_controller=dfx.PIDController(rtol=RTOL, atol=ATOL, pcoeff=0.1, icoeff=0.6))
    yield "reducedflow default", dict()
    yield "Tsit5", dict(solver=dfx.Tsit5(), max_steps=2_000_000)
    for method in ("Radau", "BDF", "LSODA"):
        yield f"scipy {method}", dict(backend="scipy", solver=method)


def main():
    rows = []
    for name, kwargs in configurations():
        for eps in EPSILONS:
            if name == "Tsit5" and eps < TSIT5_MAX_EPS:
                rows.append([name, f"{eps:.0e}", "-", "-", "-", "-", "(> 10^6 steps)"])
                continue
            system = FastSlowGradientFlow(eps)
            solve = lambda: rf.solve(system, Y0, T1, saveat=rf.LinearTimes(101), rtol=RTOL, atol=ATOL, **kwargs)
            traj = solve()
            exact = system.closed_form(traj.ts, Y0)
            err = max(np.max(np.abs(traj.ys[k] - exact[k])) for k in exact)
            wall = best_of(solve, repeats=2)
            rejected = "-" if traj.stats.rejected is None else traj.stats.rejected
            rows.append([name, f"{eps:.0e}", traj.stats.steps, rejected, f"{wall * 1e3:.1f}",
                         f"{traj.stats.compile_seconds if 'scipy' not in name else 0:.2f}", f"{err:.1e}"])
            print(f"{name:32s} eps={eps:.0e} steps={traj.stats.steps}", flush=True)
    print()
    print(table(["solver", "eps", "steps", "rejected", "run ms", "compile s", "max error"], rows))


if __name__ == "__main__":
    main()
