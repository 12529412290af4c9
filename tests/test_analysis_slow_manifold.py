"""Slow manifolds (analysis/slow_manifold.py): the critical manifold solved for the declared
fast coordinates, the reduced slow flow against an independent scipy solve of its closed-form
equation, the O(epsilon) gap of the full flow, and normal stability of FitzHugh–Nagumo's
cubic branches."""

import numpy as np
import pytest

import reducedflow as rf
from reducedflow.analysis.slow_manifold import critical_manifold, reduced_slow_flow, slow_flow_gap
from reducedflow.models.classic import FitzHughNagumo, Lorenz
from reducedflow.models.fast_slow import CurvedFastSlowGradientFlow, FastSlowGradientFlow


def test_curved_critical_manifold_and_reduced_flow():
    system = CurvedFastSlowGradientFlow(epsilon=1e-3)
    manifold = critical_manifold(system)
    assert manifold.slow_names == ("slow",) and manifold.fast_names == ("fast",)
    x = np.linspace(-1.5, 1.5, 7)
    np.testing.assert_allclose(manifold.curve(x)[:, 0], x**2, atol=1e-12)  # z = x^2
    assert manifold.attracting(np.array([0.3]))
    reduced = reduced_slow_flow(system)
    ts = np.linspace(0.0, 4.0, 9)
    traj = rf.solve(reduced, np.array([0.2]), 4.0, saveat=ts, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(traj.ys[:, 0], CurvedFastSlowGradientFlow.reduced_slow_flow(ts, 0.2), atol=1e-8)
    lifted = reduced.lift(np.array([0.5]))
    assert float(lifted["fast"]) == pytest.approx(0.25, abs=1e-12)
    assert "potential" in traj.observables


def test_full_flow_approaches_the_reduced_flow_like_epsilon():
    system = CurvedFastSlowGradientFlow(epsilon=0.1)
    gap = slow_flow_gap(system, {"slow": 0.2, "fast": 0.5}, 3.0, [1e-1, 1e-2, 1e-3], saveat=np.linspace(0.5, 3.0, 6))
    gaps = gap["gap"].values
    assert np.all(np.diff(gaps) < 0)
    assert gap.attrs["order"] == pytest.approx(1.0, abs=0.1)
    # Linear system: its reduced flow x' = -(x - x*) against the exact eps -> 0 limit.
    linear = reduced_slow_flow(FastSlowGradientFlow(epsilon=1e-2, target=2.0))
    traj = rf.solve(linear, np.array([0.0]), 3.0, saveat=np.linspace(0, 3, 4))
    np.testing.assert_allclose(traj.ys[:, 0], 2.0 * (1 - np.exp(-np.linspace(0, 3, 4))), atol=1e-7)


def test_fitzhugh_nagumo_branches_of_the_cubic():
    system = FitzHughNagumo()
    w = np.array([0.0, 0.5])
    for guess, attracting, side in ((2.0, True, 1), (-2.0, True, -1), (0.0, False, 0)):
        manifold = critical_manifold(system, guess=guess)
        v = manifold.curve(w[:, None])[:, 0]
        np.testing.assert_allclose(v - v**3 / 3 - w + 0.5, 0.0, atol=1e-12)
        assert np.all(np.sign(np.round(v)) == side) if side else np.all(np.abs(v) < 1)
        assert all(manifold.attracting(np.array([wi])) == attracting for wi in w)


def test_fast_coordinates_must_be_declared_or_given():
    with pytest.raises(ValueError, match="declares no fast components"):
        critical_manifold(Lorenz())
    manifold = critical_manifold(Lorenz(), fast=["y"])  # y = x (rho - z) on {y' = 0}
    np.testing.assert_allclose(manifold.curve(np.array([[2.0, 10.0]]))[0], [2.0 * 18.0], rtol=1e-12)
    with pytest.raises(ValueError, match="`fast`"):
        critical_manifold(Lorenz(), fast=["x", "y", "z"])
    with pytest.raises(ValueError, match="`fast`"):
        critical_manifold(Lorenz(), fast=["w"])
    assert FastSlowGradientFlow(epsilon=0.1).fast_components() == {"fast": True, "slow": False}
