"""Pseudo-arclength continuation (analysis/continuation.py): the fold of x' = r + x^2 at
r = 0, the Hopf point of the supercritical Hopf normal form at mu = 0, and the Hopf points of
FitzHugh–Nagumo against the closed-form condition trace J = 0."""

import matplotlib
import numpy as np
import pytest

from reducedflow.analysis.continuation import continuation
from reducedflow.models.classic import FitzHughNagumo, FoldNormalForm, HopfNormalForm


def test_fold_of_the_saddle_node_normal_form():
    branch = continuation(FoldNormalForm(r=-1.0), "r", {"x": -1.0}, bounds=(-2.0, 1.0), direction=1)
    assert [b.kind for b in branch.bifurcations] == ["fold"]
    fold = branch.folds[0]
    assert abs(fold.parameter) < 1e-8 and abs(fold.coordinates[0]) < 1e-4
    x, r = branch.coordinate("x"), branch.parameter
    np.testing.assert_allclose(r, -(x**2), atol=1e-10)  # every point is on the branch
    assert x.min() < -0.9 and x.max() > 0.9  # it went round the fold and back
    # Stable (eigenvalue 2x < 0) on the lower half, unstable on the upper half.
    np.testing.assert_array_equal(branch.stable[np.abs(x) > 1e-3], x[np.abs(x) > 1e-3] < 0)
    np.testing.assert_allclose(branch.eigenvalues[:, 0].real, 2 * x, atol=1e-10)
    assert "fold" in repr(branch)


def test_hopf_point_of_the_hopf_normal_form():
    branch = continuation(HopfNormalForm(mu=-1.0, omega=2.0), "mu", {"x": 0.1, "y": -0.1}, bounds=(-1.5, 1.0))
    assert [b.kind for b in branch.bifurcations] == ["hopf"]
    hopf = branch.hopf_points[0]
    assert abs(hopf.parameter) < 1e-8 and abs(hopf.frequency - 2.0) < 1e-8
    np.testing.assert_allclose(branch.coordinates, 0.0, atol=1e-12)
    mu = branch.parameter
    np.testing.assert_array_equal(branch.stable, mu < 0)
    np.testing.assert_array_equal(branch.unstable_dimension, np.where(mu > 0, 2, 0))
    ds = branch.to_xarray()
    assert list(ds["bifurcation_kind"].values) == ["hopf"]


def test_fitzhugh_nagumo_hopf_points_in_the_current():
    a, b, tau = 0.7, 0.8, 12.5
    system = FitzHughNagumo(current=0.0)
    v0 = system.fixed_point_voltages()[0]
    branch = continuation(system, "current", {"v": v0, "w": (v0 + a) / b}, bounds=(-0.5, 2.0), max_step=0.05)
    # Hopf where trace J = 1 - v^2 - b/tau = 0, i.e. v = -+sqrt(1 - b/tau), at
    # I = v^3/3 - v + (v + a)/b (the fixed-point equation).
    v_h = np.array([-1.0, 1.0]) * np.sqrt(1 - b / tau)
    current_h = v_h**3 / 3 - v_h + (v_h + a) / b
    hopf = branch.hopf_points
    assert len(hopf) == 2 and not branch.folds
    np.testing.assert_allclose([h.parameter for h in hopf], current_h, atol=1e-8)
    np.testing.assert_allclose([h.coordinates[0] for h in hopf], v_h, atol=1e-7)
    # Frequency: the imaginary part sqrt(det J) there, det J = (b(v^2 - 1) + 1)/tau.
    np.testing.assert_allclose([h.frequency for h in hopf], np.sqrt((b * (v_h**2 - 1) + 1) / tau), rtol=1e-6)
    inside = (branch.parameter > current_h[0] + 1e-6) & (branch.parameter < current_h[1] - 1e-6)
    assert not branch.stable[inside].any() and branch.stable[~inside & (branch.parameter < current_h[0])].all()


def test_bifurcation_diagram_draws_stable_and_unstable_parts():
    matplotlib.use("Agg")
    branch = continuation(FoldNormalForm(r=-1.0), "r", {"x": -1.0}, bounds=(-2.0, 1.0))
    ax = branch.plot()
    labels = ax.get_legend_handles_labels()[1]
    assert {"stable", "unstable", "fold"} <= set(labels)
    matplotlib.pyplot.close(ax.figure)


def test_bad_continuation_arguments():
    system = FoldNormalForm(r=-1.0)
    with pytest.raises(ValueError, match="`parameter`"):
        continuation(system, "q", {"x": -1.0}, bounds=(-2.0, 1.0))
    with pytest.raises(ValueError, match="`bounds`"):
        continuation(system, "r", {"x": -1.0}, bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match="`y0`"):
        continuation(FoldNormalForm(r=1.0), "r", {"x": 0.0}, bounds=(0.0, 2.0))
    with pytest.raises(ValueError, match="`direction`"):
        continuation(system, "r", {"x": -1.0}, bounds=(-2.0, 1.0), direction=0)
