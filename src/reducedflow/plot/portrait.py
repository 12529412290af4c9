r"""Phase portraits of 2-D systems and of 2-D slices of larger ones: the vector field
(streamlines, or direction arrows on log axes), the nullclines, the fixed points marked by
type, the critical manifold of fast/slow systems (attracting parts solid, repelling parts
dashed) and trajectories from chosen initial states."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from .._checks import check_integer, check_positive
from .._system import AbstractSystem
from ..analysis._layout import as_flat
from ..analysis.nullclines import Nullclines, PlaneSlice, _axis_values, _field_many, _in_chunks, plane_slice, zero_contour

#: Marker style per fixed-point kind: (marker, face colour).
FIXED_POINT_STYLE = {
    "stable node": ("o", "black"),
    "stable focus": ("o", "tab:blue"),
    "saddle": ("X", "tab:orange"),
    "unstable node": ("o", "white"),
    "unstable focus": ("o", "lightsteelblue"),
    "non-hyperbolic": ("D", "tab:gray"),
}


@dataclasses.dataclass(frozen=True)
class Portrait:
    """What ``phase_portrait`` drew.

    **Attributes:** ``figure``, ``ax``; ``plane`` (the ``PlaneSlice``); ``nullclines``
    (``Nullclines``); ``fixed_points`` (``FixedPoints`` of the slice, or ``None``);
    ``trajectories`` (list of ``(m, 2)`` arrays in the plane); ``critical_manifold`` (list of
    polylines, empty when not drawn).
    """

    figure: object
    ax: object
    plane: PlaneSlice
    nullclines: Nullclines
    fixed_points: object
    trajectories: list
    critical_manifold: list

    def savefig(self, path, **kwargs):
        self.figure.savefig(path, **{"dpi": 150, "bbox_inches": "tight", **kwargs})


def _critical_manifold_lines(plane: PlaneSlice, xs, ys, fu, fv):
    """The zero set of the fast equation when exactly one of the plotted coordinates is a
    declared fast coordinate, each polyline split into attracting / repelling parts by the
    sign of the derivative of the fast equation along the fast coordinate."""
    declared = plane.system.fast_components()
    if declared is None:
        return [], None
    from ..analysis.slow_manifold import _fast_mask

    try:
        mask = _fast_mask(plane.system, plane.layout, None)
    except ValueError:
        return [], None
    x_fast, y_fast = bool(mask[plane.x_index]), bool(mask[plane.y_index])
    if x_fast == y_fast:
        return [], None
    lines = zero_contour(xs, ys, fu if x_fast else fv)
    axis = 0 if x_fast else 1
    step = 1e-6 * (xs[-1] - xs[0] if x_fast else ys[-1] - ys[0])
    out = []
    for line in lines:
        shifted = line.copy()
        shifted[:, axis] += step
        g_plus = np.asarray(_plane_field(plane, shifted))[:, axis]
        shifted[:, axis] -= 2 * step
        g_minus = np.asarray(_plane_field(plane, shifted))[:, axis]
        out.append((line, (g_plus - g_minus) < 0))
    return out, plane.layout.names[plane.x_index if x_fast else plane.y_index]


def title_of(plane: PlaneSlice) -> str:
    """The system's name, with how the coordinates not plotted are set for a slice."""
    title = type(plane.system).__name__
    if plane.layout.size > 2:
        others = [nm for i, nm in enumerate(plane.layout.names) if i not in (plane.x_index, plane.y_index)]
        how = "slaved" if plane.manifold is not None else "fixed"
        title += f" (slice; {', '.join(others[:4])}{'...' if len(others) > 4 else ''} {how})"
    return title


def _plane_field(plane, points):
    return _in_chunks(_field_many, plane, np.asarray(points, float), 0.0, None)


def phase_portrait(
    system: AbstractSystem,
    x,
    y,
    *,
    xlim=(-2.0, 2.0),
    ylim=(-2.0, 2.0),
    fixed=None,
    slaved=None,
    guess=None,
    trajectories=(),
    t1: float = 20.0,
    log_x: bool = False,
    log_y: bool = False,
    density: int = 25,
    resolution: int = 301,
    show_fixed_points: bool = True,
    show_nullclines: bool = True,
    show_manifold: bool = True,
    fixed_point_starts: int = 64,
    ax=None,
    like=None,
) -> Portrait:
    r"""Draw the phase portrait of ``system`` on the plane of coordinates ``x``, ``y``.

    **Arguments:**

    - ``system``: an ``AbstractSystem`` (2-D, or larger with ``fixed`` / ``slaved``).
    - ``x``, ``y``: coordinate names (``"v"``, ``"y[0]"``, ``"first_layer[1]"``) or indices.
    - ``xlim``, ``ylim``: the window ``(low, high)``.
    - ``fixed``, ``slaved``, ``guess``: how the other coordinates are set (``plane_slice``).
    - ``trajectories``: initial states, each a plane point ``(u, v)`` (completed as the slice
      is) or a full state; solved with ``reducedflow.solve`` up to ``t1`` and drawn projected
      on the plane.
    - ``log_x``, ``log_y``: logarithmic axes (the field is then drawn as direction arrows).
    - ``density``: arrows/streamlines per axis; ``resolution``: grid per axis of the
      nullcline contours.
    - ``show_fixed_points``, ``show_nullclines``, ``show_manifold``: what to draw. Fixed
      points are those of the slice in the window (``find_fixed_points`` with
      ``fixed_point_starts`` starts), marked by type (``FIXED_POINT_STYLE``); on a slice of a
      larger system the types are those of the 2-D slice flow (with slaved coordinates the
      points are fixed points of the whole system, but e.g. a saddle of the full flow whose
      unstable directions are slaved shows as stable: classify with ``find_fixed_points`` on
      the system for the full spectrum). The critical
      manifold is drawn when one plotted coordinate is a declared fast coordinate and the
      other is slow.
    - ``ax``: a matplotlib axes to draw on (default: a new figure).
    - ``like``: an example state, for systems without ``state_shapes()``.

    **Returns:** a ``Portrait``.
    """
    import matplotlib.pyplot as plt

    from .._solve import solve
    from ..analysis.fixed_points import find_fixed_points

    density = check_integer("density", density, minimum=2)
    resolution = check_integer("resolution", resolution, minimum=3)
    check_positive("t1", t1)
    plane = plane_slice(system, x, y, fixed=fixed, slaved=slaved, guess=guess, like=like)
    xs_fine = _axis_values("xlim", xlim, resolution, log_x)
    ys_fine = _axis_values("ylim", ylim, resolution, log_y)
    if ax is None:
        figure, ax = plt.subplots(figsize=(6, 5))
    else:
        figure = ax.figure
    ax.set_xscale("log" if log_x else "linear")
    ax.set_yscale("log" if log_y else "linear")

    xs = _axis_values("xlim", xlim, density, log_x)
    ys = _axis_values("ylim", ylim, density, log_y)
    fu, fv = plane.field_on_grid(xs, ys)
    if not (log_x or log_y):
        speed = np.hypot(fu, fv)
        ax.streamplot(xs, ys, fu, fv, color=np.log10(speed + 1e-300), cmap="Greys", density=1.2, linewidth=0.7,
                      arrowsize=0.8)
    else:
        # Direction in axes-fraction units: d(log x)/dt over the decades shown, etc.
        dx = fu / (xs[None, :] if log_x else 1.0) / (np.log(xlim[1] / xlim[0]) if log_x else (xlim[1] - xlim[0]))
        dy = fv / (ys[:, None] if log_y else 1.0) / (np.log(ylim[1] / ylim[0]) if log_y else (ylim[1] - ylim[0]))
        norm = np.hypot(dx, dy)
        norm = np.where(norm > 0, norm, 1.0)
        xx, yy = np.meshgrid(xs, ys)
        ax.quiver(xx, yy, dx / norm, dy / norm, angles=np.degrees(np.arctan2(dy, dx)), color="0.5",
                  pivot="mid", scale=1.5 * density, width=0.003)

    fu_fine, fv_fine = plane.field_on_grid(xs_fine, ys_fine)
    lines = Nullclines(plane.x_name, plane.y_name, zero_contour(xs_fine, ys_fine, fu_fine),
                       zero_contour(xs_fine, ys_fine, fv_fine))
    if show_nullclines:
        for k, line in enumerate(lines.x_nullcline):
            ax.plot(line[:, 0], line[:, 1], color="tab:red", lw=1.5, gid="x_nullcline",
                    label=f"{plane.x_name}-nullcline" if k == 0 else None)
        for k, line in enumerate(lines.y_nullcline):
            ax.plot(line[:, 0], line[:, 1], color="tab:green", lw=1.5, gid="y_nullcline",
                    label=f"{plane.y_name}-nullcline" if k == 0 else None)

    manifold_lines = []
    if show_manifold:
        parts, fast_name = _critical_manifold_lines(plane, xs_fine, ys_fine, fu_fine, fv_fine)
        for k, (line, attracting) in enumerate(parts):
            manifold_lines.append(line)
            for flag, style in ((True, "-"), (False, "--")):
                seg = np.where(attracting == flag, 1.0, np.nan)[:, None] * line
                ax.plot(seg[:, 0], seg[:, 1], style, color="tab:purple", lw=4, alpha=0.35, gid="critical_manifold",
                        label=(f"critical manifold ({fast_name} fast; dashed: repelling)" if k == 0 and flag else None))

    found = None
    if show_fixed_points:
        lo = [xlim[0], ylim[0]]
        hi = [xlim[1], ylim[1]]
        found = find_fixed_points(plane, lo, hi, starts=fixed_point_starts)
        found = dataclasses.replace(found, names=(plane.x_name, plane.y_name), system=title_of(plane))
        seen = set()
        for point in found:
            marker, face = FIXED_POINT_STYLE[point.kind]
            label = point.kind if point.kind not in seen else None
            seen.add(point.kind)
            ax.plot(point.coordinates[0], point.coordinates[1], marker, markerfacecolor=face, markeredgecolor="black",
                    markersize=9, zorder=5, gid="fixed_point", label=label)

    drawn = []
    if trajectories:
        n = plane.layout.size
        ts = np.geomspace(1e-3 * t1, t1, 400) if (log_x or log_y) else np.linspace(0.0, t1, 400)
        ts = np.concatenate([[0.0], ts])
        for start in trajectories:
            flat = np.asarray(start, dtype=float).reshape(-1) if not isinstance(start, dict) else None
            if flat is not None and flat.size == 2 and n != 2:
                full = plane.full_states(flat[None])[0]
            elif flat is not None and flat.size == 2:
                full = flat
            else:
                full = as_flat(plane.layout, start, "trajectories")
            state = plane.layout.unravel_numpy(full)
            traj = solve(system, state, t1, saveat=ts, throw=False)
            leaves = jax.tree_util.tree_leaves(traj.ys)
            flat_ys = np.concatenate([np.asarray(l).reshape(len(ts), -1) for l in leaves], axis=1)
            uv = flat_ys[:, [plane.x_index, plane.y_index]]
            drawn.append(uv)
            ax.plot(uv[:, 0], uv[:, 1], color="tab:blue", lw=1.2, gid="trajectory")
            ax.plot(uv[0, 0], uv[0, 1], ".", color="tab:blue")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel(plane.x_name)
    ax.set_ylabel(plane.y_name)
    ax.set_title(title_of(plane), fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    return Portrait(figure, ax, plane, lines, found, drawn, manifold_lines)
