"""Phase portraits (plot/portrait.py, analysis/nullclines.py): the nullclines traced by
marching squares cross where Newton's method finds the fixed points; fixed points are drawn by
type; slices of a 3-D system with a slaved coordinate; log axes; clear errors."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

from reducedflow.analysis.nullclines import nullclines, plane_slice, polyline_intersections
from reducedflow.models.classic import DoubleWell, FitzHughNagumo, Lorenz
from reducedflow.models.linear_modes import UnbalancedModes
from reducedflow.plot.portrait import phase_portrait


def _match(points, targets, tol):
    """Every point has a target within tol and vice versa."""
    points, targets = np.atleast_2d(points), np.atleast_2d(targets)
    assert points.shape == targets.shape
    distance = np.linalg.norm(points[:, None, :] - targets[None, :, :], axis=2)
    assert distance.min(axis=1).max() < tol and distance.min(axis=0).max() < tol


def test_double_well_nullclines_cross_at_the_fixed_points(tmp_path):
    system = DoubleWell(tilt=0.1, stiffness=1.5)
    portrait = phase_portrait(system, "x", "y", xlim=(-2.0, 2.0), ylim=(-1.5, 1.7), trajectories=[(0.3, 1.0)],
                              t1=15.0)
    assert len(portrait.fixed_points) == 3
    crossings = portrait.nullclines.crossings()
    _match(crossings, portrait.fixed_points.coordinates, 1e-4)
    _match(crossings[:, 0][:, None], system.critical_points()[:, None], 1e-4)
    # What is on the axes is what was computed: the nullcline lines and one marker per point.
    drawn = [l for l in portrait.ax.get_lines() if l.get_gid() == "x_nullcline"]
    assert len(drawn) == len(portrait.nullclines.x_nullcline)
    np.testing.assert_allclose(drawn[0].get_xydata(), portrait.nullclines.x_nullcline[0])
    markers = [l for l in portrait.ax.get_lines() if l.get_gid() == "fixed_point"]
    assert len(markers) == 3
    labels = portrait.ax.get_legend_handles_labels()[1]
    assert "saddle" in labels and "stable node" in labels
    # The trajectory from (0.3, 1) ends in the right-hand well.
    np.testing.assert_allclose(portrait.trajectories[0][-1], [system.critical_points()[-1], 0.0], atol=1e-5)
    portrait.savefig(tmp_path / "double_well.png")
    assert (tmp_path / "double_well.png").stat().st_size > 20_000
    plt.close(portrait.figure)


def test_fitzhugh_nagumo_nullclines_and_critical_manifold():
    system = FitzHughNagumo()
    portrait = phase_portrait(system, "v", "w", xlim=(-2.5, 2.5), ylim=(-1.0, 2.0), show_fixed_points=True)
    v = system.fixed_point_voltages()[0]
    _match(portrait.nullclines.crossings(), [[v, (v + 0.7) / 0.8]], 2e-4)
    _match(portrait.fixed_points.coordinates, [[v, (v + 0.7) / 0.8]], 1e-9)
    # The critical manifold (v fast) is the cubic w = v - v^3/3 + I.
    line = np.concatenate(portrait.critical_manifold)
    np.testing.assert_allclose(line[:, 1], line[:, 0] - line[:, 0] ** 3 / 3 + 0.5, atol=1e-3)
    dashed = [l for l in portrait.ax.get_lines() if l.get_gid() == "critical_manifold" and l.get_linestyle() == "--"]
    repelling = np.concatenate([l.get_xydata() for l in dashed])
    repelling = repelling[np.isfinite(repelling[:, 0])]
    assert np.all(np.abs(repelling[:, 0]) < 1.0 + 1e-2)  # repelling where 1 - v^2 > 0
    plt.close(portrait.figure)


def test_lorenz_slice_with_slaved_coordinate_recovers_the_fixed_points():
    portrait = phase_portrait(Lorenz(), "x", "z", xlim=(-15.0, 15.0), ylim=(-5.0, 40.0), slaved=["y"], density=12,
                              resolution=101)
    c = np.sqrt(8.0 / 3.0 * 27.0)
    _match(portrait.fixed_points.coordinates, [[-c, 27.0], [0.0, 0.0], [c, 27.0]], 1e-8)
    assert portrait.fixed_points.names == ("x", "z")
    assert "y slaved" in portrait.ax.get_title()
    # Slice with y fixed instead: x-nullcline of sigma (y - x) at y = 3 is the line x = 3.
    lines = nullclines(plane_slice(Lorenz(), "x", "z", fixed={"y": 3.0}), (-5.0, 5.0), (0.0, 10.0))
    np.testing.assert_allclose(np.concatenate(lines.x_nullcline)[:, 0], 3.0, atol=1e-9)
    plt.close(portrait.figure)


def test_log_axes_portrait_of_linear_modes():
    system = UnbalancedModes(singular_values=[2.0])
    portrait = phase_portrait(system, "first_layer[0]", "second_layer[0]", xlim=(1e-3, 3.0), ylim=(1e-3, 3.0),
                              log_x=True, log_y=True, trajectories=[(1e-2, 2e-2)], t1=20.0, show_fixed_points=False)
    assert portrait.ax.get_xscale() == "log" and portrait.ax.get_yscale() == "log"
    end = portrait.trajectories[0][-1]
    assert end[0] * end[1] == pytest.approx(2.0, rel=1e-6)  # learned: a b = s
    # Nullclines: both are the hyperbola a b = s inside the window.
    points = np.concatenate(portrait.nullclines.x_nullcline)
    np.testing.assert_allclose(points[:, 0] * points[:, 1], 2.0, rtol=1e-2)
    plt.close(portrait.figure)


def test_polyline_intersections():
    square = [np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])]
    diagonal = [np.array([[-1.0, -0.5], [2.0, 1.0]])]
    np.testing.assert_allclose(polyline_intersections(square, diagonal), [[0.0, 0.0], [1.0, 0.5]], atol=1e-12)


def test_bad_portrait_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match=r"`y` must name a state coordinate, one of \['x', 'y'\]"):
        phase_portrait(DoubleWell(), "x", "velocity")
    with pytest.raises(ValueError, match="`x` and `y` must be different"):
        phase_portrait(DoubleWell(), "x", "x")
    with pytest.raises(ValueError, match="`xlim`"):
        phase_portrait(DoubleWell(), "x", "y", xlim=(1.0, -1.0))
    with pytest.raises(ValueError, match="`xlim` must be positive on a log axis"):
        phase_portrait(DoubleWell(), "x", "y", log_x=True)
    with pytest.raises(ValueError, match="`slaved`"):
        plane_slice(Lorenz(), "x", "z", slaved=["z"])
    with pytest.raises(ValueError, match="declares no fast components"):
        plane_slice(Lorenz(), "x", "z", slaved=True)
