"""Fixed points and their types (analysis/fixed_points.py) on systems with known answers:
linear systems of every type, FitzHugh–Nagumo (roots of a cubic), a tilted double well
(gradient flow with a known saddle) and Lorenz (closed-form fixed points)."""

import numpy as np
import pytest

from reducedflow.analysis.fixed_points import classify, find_fixed_points, jacobian
from reducedflow.models.classic import DoubleWell, FitzHughNagumo, LinearSystem, Lorenz

LINEAR_CASES = [
    ([[-1.0, 0.0], [0.0, -3.0]], "stable node", 0),
    ([[-1.0, 2.0], [-2.0, -1.0]], "stable focus", 0),
    ([[1.0, 0.5], [0.0, -2.0]], "saddle", 1),
    ([[2.0, 1.0], [0.0, 1.0]], "unstable node", 2),
    ([[0.5, -3.0], [3.0, 0.5]], "unstable focus", 2),
    ([[0.0, 1.0], [-1.0, 0.0]], "non-hyperbolic", 0),  # a centre
]


@pytest.mark.parametrize("matrix, kind, unstable", LINEAR_CASES)
def test_linear_systems_have_one_fixed_point_of_the_right_type(matrix, kind, unstable):
    found = find_fixed_points(LinearSystem(matrix), -1.0, 1.0, starts=16)
    assert len(found) == 1
    point = found[0]
    np.testing.assert_allclose(point.coordinates, 0.0, atol=1e-12)
    assert point.kind == kind and point.unstable_dimension == unstable
    expected = np.linalg.eigvals(np.array(matrix))
    np.testing.assert_allclose(np.sort_complex(point.eigenvalues), np.sort_complex(expected), atol=1e-12)


def test_saddle_with_two_unstable_directions_in_3d():
    found = find_fixed_points(LinearSystem(np.diag([1.0, 0.5, -2.0])), -1.0, 1.0, starts=16)
    assert [p.label for p in found] == ["saddle (2 unstable)"]


def test_classify_tolerance_and_errors():
    assert classify([1e-10, -1.0]) == ("non-hyperbolic", 0)
    assert classify([1e-3, -1.0]) == ("saddle", 1)
    assert classify([-1 + 1e-12j, -1 - 1e-12j])[0] == "stable node"
    with pytest.raises(ValueError, match="eigenvalues"):
        classify([])
    with pytest.raises(ValueError, match="tol"):
        classify([-1.0], tol=0.0)


def test_fitzhugh_nagumo_fixed_point_and_type():
    for current, kind in ((0.5, "unstable focus"), (0.0, "stable focus")):
        system = FitzHughNagumo(current=current)
        found = find_fixed_points(system, [-3.0, -3.0], [3.0, 3.0], starts=64)
        v = system.fixed_point_voltages()
        assert len(found) == len(v) == 1
        np.testing.assert_allclose(found[0].coordinates, [v[0], (v[0] + 0.7) / 0.8], atol=1e-10)
        assert found[0].kind == kind
        # Eigenvalues against the hand-written Jacobian [[1 - v^2, -1], [1/tau, -b/tau]].
        jac = np.array([[1 - v[0] ** 2, -1.0], [1 / 12.5, -0.8 / 12.5]])
        np.testing.assert_allclose(np.sort_complex(found[0].eigenvalues), np.sort_complex(np.linalg.eigvals(jac)),
                                   atol=1e-10)
        np.testing.assert_allclose(jacobian(system, found[0].state), jac, atol=1e-12)


def test_double_well_gradient_flow_has_two_minima_and_a_saddle():
    system = DoubleWell(tilt=0.1, stiffness=2.0)
    found = find_fixed_points(system, [-2.0, -2.0], [2.0, 2.0], starts=128)
    roots = system.critical_points()
    assert len(found) == 3
    np.testing.assert_allclose(found.coordinates[:, 0], roots, atol=1e-10)
    np.testing.assert_allclose(found.coordinates[:, 1], 0.0, atol=1e-12)
    assert [p.label for p in found] == ["stable node", "saddle (1 unstable)", "stable node"]
    # Hessian of the potential: eigenvalues -(3x^2 - 1) and -k.
    for point, x in zip(found, roots):
        np.testing.assert_allclose(np.sort(point.eigenvalues.real), np.sort([1 - 3 * x**2, -2.0]), atol=1e-10)
    saddle = found.of_kind("saddle")[0]
    np.testing.assert_allclose(np.abs(saddle.eigenvectors[:, 0]), [1.0, 0.0], atol=1e-12)  # unstable along x
    assert found.nearest([1.0, 0.0]) is found[2]
    text = repr(found)
    assert "saddle (1 unstable)" in text and "stable node" in text
    ds = found.to_xarray()
    assert list(ds["kind"].values) == ["stable node", "saddle", "stable node"]
    np.testing.assert_allclose(ds["x"].values, roots, atol=1e-10)


def test_lorenz_fixed_points_in_closed_form():
    found = find_fixed_points(Lorenz(), [-30.0, -30.0, -5.0], [30.0, 30.0, 50.0], starts=128)
    c = np.sqrt(8.0 / 3.0 * 27.0)
    expected = np.array([[-c, -c, 27.0], [0.0, 0.0, 0.0], [c, c, 27.0]])
    np.testing.assert_allclose(found.coordinates, expected, atol=1e-9)
    assert [p.label for p in found] == ["saddle (2 unstable)", "saddle (1 unstable)", "saddle (2 unstable)"]


def test_points_outside_the_box_are_not_reported():
    found = find_fixed_points(DoubleWell(), [0.5, -1.0], [2.0, 1.0], starts=32)
    np.testing.assert_allclose(found.coordinates, [[1.0, 0.0]], atol=1e-10)


def test_bad_boxes_and_arguments_raise_clear_errors():
    system = DoubleWell()
    with pytest.raises(ValueError, match="`lower` must be below `upper`.*x: 1 >= -1"):
        find_fixed_points(system, [1.0, -1.0], [-1.0, 1.0])
    with pytest.raises(ValueError, match="`upper`"):
        find_fixed_points(system, [-1.0, -1.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="`lower`"):
        find_fixed_points(system, [np.nan, -1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="`starts`"):
        find_fixed_points(system, -1.0, 1.0, starts=0)
    with pytest.raises(ValueError, match="`system`"):
        find_fixed_points("not a system", -1.0, 1.0)


def test_linear_system_closed_form_against_a_solve():
    import reducedflow as rf

    system = LinearSystem([[-0.5, 2.0], [-2.0, -0.5]])
    ts = np.linspace(0.0, 3.0, 7)
    traj = rf.solve(system, np.array([1.0, -0.5]), 3.0, saveat=ts, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(traj.ys, system.closed_form(ts, np.array([1.0, -0.5])), atol=1e-9)
    with pytest.raises(ValueError, match="`matrix` must be a square"):
        LinearSystem(np.ones((2, 3)))
