"""Parameter sweeps (analysis/sweep.py): vmap over systems, chunked; failing points (finite-time
blow-up, rejected parameters) are recorded and every other point is still returned and right."""

import numpy as np
import pytest

import reducedflow as rf
from reducedflow.analysis.sweep import sweep
from reducedflow.models.classic import DoubleWell, FoldNormalForm, HopfNormalForm

T1 = 4.0
TIMES = np.linspace(0.0, T1, 9)


def _fold_closed_form(r, t):
    """x' = r + x^2 from x(0) = 0: -sqrt(-r) tanh(sqrt(-r) t) for r < 0; blows up at
    t = pi / (2 sqrt r) for r > 0."""
    root = np.sqrt(np.maximum(-r, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(r < 0, -root * np.tanh(root * t), np.where(r == 0, 0.0, np.nan))


def test_sweep_records_blow_up_and_keeps_every_other_point():
    r = np.linspace(-1.0, 1.0, 21)
    ds = sweep(FoldNormalForm(), {"r": r}, {"x": 0.0}, T1, saveat=TIMES, chunk_size=8, max_steps=2000)
    blows_up = r > (np.pi / (2 * T1)) ** 2
    assert ds["x"].shape == (21, 9)
    np.testing.assert_array_equal(ds["status"].values != "success", blows_up)
    assert ds.attrs["n_failed"] == int(blows_up.sum())
    good = ~blows_up & (r <= 0)
    np.testing.assert_allclose(ds["x"].values[good], _fold_closed_form(r[good, None], TIMES[None, :]), atol=1e-7)
    assert np.all(np.isnan(ds["x"].values[blows_up]))
    # Failed points stop near the blow-up time and say so.
    np.testing.assert_allclose(ds["t_final"].values[blows_up], np.pi / (2 * np.sqrt(r[blows_up])), rtol=1e-3)
    assert all("solve this point alone" in m for m in ds["message"].values[blows_up])
    # The small r > 0 that survive: x = sqrt(r) tan(sqrt(r) t).
    ok_pos = ~blows_up & (r > 0)
    np.testing.assert_allclose(ds["x"].values[ok_pos], np.sqrt(r[ok_pos, None]) * np.tan(np.sqrt(r[ok_pos, None]) * TIMES),
                               rtol=1e-6)


def test_two_parameter_grid_matches_single_solves():
    mu, omega = np.array([-1.0, -0.2, 0.5]), np.array([1.0, 3.0])
    ds = sweep(HopfNormalForm(), {"mu": mu, "omega": omega}, {"x": 0.3, "y": 0.0}, T1, saveat=TIMES)
    assert ds["x"].dims == ("mu", "omega", "time") and (ds["status"] == "success").all()
    for i, m in enumerate(mu):
        for j, w in enumerate(omega):
            single = rf.solve(HopfNormalForm(mu=m, omega=w), {"x": 0.3, "y": 0.0}, T1, saveat=TIMES)
            np.testing.assert_allclose(ds["x"].values[i, j], single.ys["x"], atol=1e-9)
    # Independent check: the radius obeys r' = mu r - r^3, r(t)^2 = mu / (1 + (mu/r0^2 - 1) e^{-2 mu t}).
    radius2 = ds["x"].values ** 2 + ds["y"].values ** 2
    expected = mu[:, None, None] / (1 + (mu[:, None, None] / 0.09 - 1) * np.exp(-2 * mu[:, None, None] * TIMES))
    np.testing.assert_allclose(radius2, np.broadcast_to(expected, radius2.shape), rtol=1e-6)


def test_rejected_parameters_are_recorded_not_fatal():
    stiffness = np.array([-1.0, 0.5, 2.0])
    ds = sweep(DoubleWell(), {"stiffness": stiffness}, {"x": 0.0, "y": 1.0}, T1, saveat=TIMES)
    assert list(ds["status"].values) == ["invalid_parameters", "success", "success"]
    assert "`stiffness` must be finite and > 0" in str(ds["message"].values[0])
    assert np.all(np.isnan(ds["y"].values[0]))
    np.testing.assert_allclose(ds["y"].values[1:], np.exp(-stiffness[1:, None] * TIMES), atol=1e-8)


def test_bad_sweep_arguments():
    with pytest.raises(ValueError, match="not a field of FoldNormalForm"):
        sweep(FoldNormalForm(), {"q": [1.0]}, {"x": 0.0}, 1.0)
    with pytest.raises(ValueError, match="`over`"):
        sweep(FoldNormalForm(), {}, {"x": 0.0}, 1.0)
    with pytest.raises(ValueError, match="`chunk_size`"):
        sweep(FoldNormalForm(), {"r": [1.0]}, {"x": 0.0}, 1.0, chunk_size=0)
    with pytest.raises(ValueError, match="`t1`"):
        sweep(FoldNormalForm(), {"r": [1.0]}, {"x": 0.0}, -1.0)
