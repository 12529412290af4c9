r"""Two-dimensional slices of a system and their nullclines.

A ``PlaneSlice`` restricts $\dot y = f(y)$ to a plane of two coordinates $(u, v)$: the other
coordinates are either held at fixed values, or *slaved* — solved from their own equations
$f_k = 0$ at each $(u, v)$ (the critical manifold of fast coordinates, or a quasi-steady-state
approximation). The slice is itself an ``AbstractSystem`` on the 2-vector $(u, v)$ whose
field is $(f_u, f_v)$ at the completed state, so ``find_fixed_points`` and ``solve`` apply.
For a system with two coordinates the slice is the system.

The $u$-nullcline is $\{f_u = 0\}$ and the $v$-nullcline $\{f_v = 0\}$; they cross at the
fixed points of the slice. ``nullclines`` traces them as the zero contours of $f_u$ and
$f_v$ on a grid (marching squares, ``contourpy``), independently of Newton's method.
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite, check_integer
from .._system import AbstractSystem
from ._layout import StateLayout, as_flat, flat_field, layout_of
from .slow_manifold import SlowManifold, critical_manifold


class PlaneSlice(AbstractSystem):
    r"""The field $(f_u, f_v)$ of ``system`` on the plane of coordinates ``x_name`` and
    ``y_name`` (module docstring). Build it with ``plane_slice``.

    State: a vector of shape ``(2,)``, $(u, v)$. ``full_state(uv)`` is the completed flat
    state of the whole system.
    """

    system: AbstractSystem
    layout: StateLayout
    x_index: int = eqx.field(static=True)
    y_index: int = eqx.field(static=True)
    base: jax.Array
    manifold: SlowManifold | None

    @property
    def x_name(self) -> str:
        return self.layout.names[self.x_index]

    @property
    def y_name(self) -> str:
        return self.layout.names[self.y_index]

    def full_state(self, uv, t=0.0, args=None) -> jax.Array:
        """The flat state of the whole system at the plane point ``uv``: other coordinates
        from ``base``, slaved ones solved on the manifold."""
        uv = jnp.asarray(uv, jnp.float64)
        flat = self.base.at[jnp.array([self.x_index, self.y_index])].set(uv)
        if self.manifold is not None:
            m = self.manifold
            slow = flat[jnp.array(m.slow_index)]
            flat = m.assemble(slow, m.fast_part(slow, t, args))
        return flat

    def vector_field(self, t, y, args):
        field = flat_field(self.system, self.layout, t, self.full_state(y, t, args), args)
        return field[jnp.array([self.x_index, self.y_index])]

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2,), jnp.float64)

    def field_on_grid(self, xs, ys, t=0.0, args=None) -> tuple[np.ndarray, np.ndarray]:
        """$(f_u, f_v)$ on the grid ``xs`` x ``ys``, each of shape ``(len(ys), len(xs))``
        (rows follow ``ys``, as ``matplotlib`` expects)."""
        xx, yy = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float))
        pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
        values = _in_chunks(_field_many, self, pts, t, args)
        return values[:, 0].reshape(xx.shape), values[:, 1].reshape(xx.shape)

    def full_states(self, uv_points, t=0.0, args=None) -> np.ndarray:
        """``full_state`` at many points, shape ``(m, n)``."""
        return _in_chunks(_full_many, self, np.asarray(uv_points, float).reshape(-1, 2), t, args)


#: Points per compiled evaluation on a plane (padded): one compilation serves every grid size.
CHUNK = 2048


def _in_chunks(kernel, plane, points, t, args) -> np.ndarray:
    out = []
    for begin in range(0, points.shape[0], CHUNK):
        block = points[begin : begin + CHUNK]
        padded = np.concatenate([block, np.repeat(block[-1:], CHUNK - block.shape[0], axis=0)])
        out.append(np.asarray(kernel(plane, jnp.asarray(padded), jnp.float64(t), args))[: block.shape[0]])
    return np.concatenate(out)


@eqx.filter_jit
def _field_many(plane, pts, t, args):
    return jax.vmap(lambda p: plane.vector_field(t, p, args))(pts)


@eqx.filter_jit
def _full_many(plane, pts, t, args):
    return jax.vmap(lambda p: plane.full_state(p, t, args))(pts)


def plane_slice(system: AbstractSystem, x, y, *, fixed=None, slaved=None, guess=None, like=None) -> PlaneSlice:
    r"""The ``PlaneSlice`` of ``system`` on coordinates ``x`` and ``y``.

    **Arguments:**

    - ``system``: an ``AbstractSystem``.
    - ``x``, ``y``: names (``"v"``, ``"first_layer[0]"``) or flat indices of two different
      coordinates.
    - ``fixed``: values of the other coordinates: a full state (PyTree or flat vector; its
      ``x``/``y`` entries are ignored), a dict ``{name: value}`` of some coordinates (the rest
      0), or ``None`` (all 0).
    - ``slaved``: coordinates solved from their own equations $f_k = 0$ at each plane point:
      a list of names, or ``True`` for the fast coordinates the system declares
      (``fast_components``) other than ``x`` and ``y``; ``None``: none.
    - ``guess``: Newton's start for the slaved coordinates (selects the branch).
    - ``like``: an example state, for systems without ``state_shapes()``.

    **Returns:** a ``PlaneSlice``.
    """
    layout = layout_of(system, like)
    if layout.size < 2:
        raise ValueError(f"`system`: a phase plane needs at least 2 coordinates; {type(system).__name__} has "
                         f"{list(layout.names)}.")
    xi, yi = layout.index(x, "x"), layout.index(y, "y")
    if xi == yi:
        raise ValueError(f"`x` and `y` must be different coordinates; both are {layout.names[xi]!r}.")
    base = np.zeros(layout.size)
    if isinstance(fixed, dict) and not _is_full_dict(layout, fixed):
        for name, value in fixed.items():
            base[layout.index(name, "fixed")] = float(value)
    elif fixed is not None:
        base = as_flat(layout, fixed, "fixed")
    check_finite("fixed", base)
    manifold = None
    if slaved is not None and slaved is not False:
        if slaved is True:
            declared = system.fast_components()
            if declared is None:
                raise ValueError(f"`slaved=True`: {type(system).__name__} declares no fast components; "
                                 "name the slaved coordinates instead.")
            from .slow_manifold import _fast_mask

            mask = _fast_mask(system, layout, None)
            names = [layout.names[i] for i in np.flatnonzero(mask) if i not in (xi, yi)]
        else:
            names = [slaved] if isinstance(slaved, (str, int)) else list(slaved)
        idx = [layout.index(s, "slaved") for s in names]
        if xi in idx or yi in idx:
            raise ValueError(f"`slaved` must not contain the plotted coordinates {layout.names[xi]!r}, "
                             f"{layout.names[yi]!r}; got {names}.")
        if idx:
            manifold = critical_manifold(system, fast=idx, guess=guess, like=like)
    return PlaneSlice(system, layout, xi, yi, jnp.asarray(base), manifold)


def _is_full_dict(layout: StateLayout, value) -> bool:
    try:
        layout.treedef.flatten_up_to(value)
        return True
    except (TypeError, ValueError):
        return False


@dataclasses.dataclass(frozen=True)
class Nullclines:
    """The nullclines of a plane slice: ``x_nullcline`` ($f_u = 0$) and ``y_nullcline``
    ($f_v = 0$), each a list of polylines (arrays of shape ``(m, 2)``, columns $(u, v)$);
    ``x_name``, ``y_name``."""

    x_name: str
    y_name: str
    x_nullcline: list
    y_nullcline: list

    def crossings(self) -> np.ndarray:
        """The points where the two nullclines cross, shape ``(k, 2)`` (segment
        intersections of the polylines, duplicates at shared vertices merged)."""
        return polyline_intersections(self.x_nullcline, self.y_nullcline)


def zero_contour(xs, ys, values) -> list:
    """The zero level set of ``values`` (shape ``(len(ys), len(xs))``) on the grid, as a
    list of polylines ``(m, 2)`` (marching squares, ``contourpy``)."""
    import contourpy

    values = np.asarray(values, dtype=float)
    values = np.where(np.isfinite(values), values, np.nan)
    generator = contourpy.contour_generator(np.asarray(xs, float), np.asarray(ys, float), values,
                                            line_type=contourpy.LineType.Separate)
    return [np.asarray(line) for line in generator.lines(0.0) if len(line) >= 2]


def nullclines(plane: PlaneSlice, xlim, ylim, *, resolution: int = 201, log_x: bool = False, log_y: bool = False,
               t: float = 0.0, args=None) -> Nullclines:
    """The nullclines of ``plane`` in the window ``xlim`` x ``ylim`` from a
    ``resolution`` x ``resolution`` grid (geometric along log axes)."""
    resolution = check_integer("resolution", resolution, minimum=3)
    xs = _axis_values("xlim", xlim, resolution, log_x)
    ys = _axis_values("ylim", ylim, resolution, log_y)
    fu, fv = plane.field_on_grid(xs, ys, t, args)
    return Nullclines(plane.x_name, plane.y_name, zero_contour(xs, ys, fu), zero_contour(xs, ys, fv))


def _axis_values(name, limits, count, log):
    try:
        low, high = (float(v) for v in limits)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (low, high); got {limits!r}.") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"`{name}` must be finite with low < high; got {limits!r}.")
    if log:
        if low <= 0:
            raise ValueError(f"`{name}` must be positive on a log axis; got {limits!r}.")
        return np.geomspace(low, high, count)
    return np.linspace(low, high, count)


def polyline_intersections(first: list, second: list, merge_tol: float = 1e-9) -> np.ndarray:
    """All intersection points of the segments of two sets of polylines, shape ``(k, 2)``."""
    def segments(lines):
        if not lines:
            return np.zeros((0, 2, 2))
        return np.concatenate([np.stack([l[:-1], l[1:]], axis=1) for l in lines if len(l) >= 2])

    a, b = segments(first), segments(second)
    if not a.size or not b.size:
        return np.zeros((0, 2))
    p, r = a[:, None, 0, :], (a[:, 1] - a[:, 0])[:, None, :]
    q, s = b[None, :, 0, :], (b[:, 1] - b[:, 0])[None, :, :]
    cross = r[..., 0] * s[..., 1] - r[..., 1] * s[..., 0]
    qp = q - p
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ = (qp[..., 0] * s[..., 1] - qp[..., 1] * s[..., 0]) / cross
        u_ = (qp[..., 0] * r[..., 1] - qp[..., 1] * r[..., 0]) / cross
    hit = (cross != 0) & (t_ >= 0) & (t_ <= 1) & (u_ >= 0) & (u_ <= 1)
    i, j = np.nonzero(hit)
    points = p[i, 0] + t_[i, j][:, None] * r[i, 0]
    scale = max(1.0, float(np.max(np.abs(points)))) if points.size else 1.0
    kept = []
    for point in points:
        if not any(np.max(np.abs(point - k)) <= merge_tol * scale + 1e-12 for k in kept):
            kept.append(point)
    return np.array(kept).reshape(-1, 2)
