r"""Fixed points of a system in a box, by multi-start Newton, each classified from the
eigenvalues of its Jacobian.

A fixed point $y^*$ solves $f(t, y^*) = 0$. Near it, $\dot\delta = J\delta$ with
$J = \partial f/\partial y(y^*)$; when no eigenvalue of $J$ lies on the imaginary axis
(hyperbolic point) the eigenvalues decide the local phase portrait (Hartman–Grobman):

- all $\operatorname{Re}\lambda < 0$: stable (a *focus* if some $\lambda$ is complex, else a
  *node*); all $\operatorname{Re}\lambda > 0$: unstable node / focus;
- both signs: a *saddle*, whose unstable manifold has the dimension
  $\#\{\lambda : \operatorname{Re}\lambda > 0\}$;
- some $|\operatorname{Re}\lambda| \le$ tolerance: *non-hyperbolic* (linearisation
  inconclusive; typical at bifurcations and on continua of fixed points).
"""

from __future__ import annotations

import dataclasses
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import scipy.stats.qmc

from .._checks import check_finite, check_integer, check_positive, check_real
from .._system import AbstractSystem
from ._layout import StateLayout, as_flat, flat_field, layout_of

#: The kinds ``classify`` returns.
KINDS = ("stable node", "stable focus", "saddle", "unstable node", "unstable focus", "non-hyperbolic")


def classify(eigenvalues, tol: float = 1e-7) -> tuple[str, int]:
    r"""The type of a fixed point from the eigenvalues of its Jacobian.

    An eigenvalue counts as on the imaginary axis when
    $|\operatorname{Re}\lambda| \le \text{tol}\cdot\max(1, \max_i|\lambda_i|)$ and as complex
    when $|\operatorname{Im}\lambda| > \text{tol}\cdot\max(1, |\lambda|)$.

    **Arguments:**

    - ``eigenvalues``: the eigenvalues of the Jacobian (1-D, complex or real).
    - ``tol``: relative tolerance of the hyperbolicity test (> 0).

    **Returns:** ``(kind, unstable_dimension)``: ``kind`` one of ``KINDS``, and the number of
    eigenvalues with positive real part.
    """
    check_positive("tol", tol)
    lam = np.atleast_1d(np.asarray(eigenvalues, dtype=complex))
    if lam.size == 0:
        raise ValueError("`eigenvalues` must hold at least one eigenvalue.")
    scale = max(1.0, float(np.max(np.abs(lam))))
    re = lam.real
    unstable = int(np.sum(re > tol * scale))
    if np.any(np.abs(re) <= tol * scale):
        return "non-hyperbolic", unstable
    complex_ = bool(np.any(np.abs(lam.imag) > tol * np.maximum(1.0, np.abs(lam))))
    if unstable == 0:
        return ("stable focus" if complex_ else "stable node"), 0
    if unstable == lam.size:
        return ("unstable focus" if complex_ else "unstable node"), unstable
    return "saddle", unstable


@dataclasses.dataclass(frozen=True)
class FixedPoint:
    """One fixed point.

    **Attributes:**

    - ``state``: the fixed point as a state PyTree of the system.
    - ``coordinates``: the same as a flat vector (order of ``FixedPoints.names``).
    - ``kind``: one of ``KINDS``; ``unstable_dimension``: eigenvalues with Re > 0.
    - ``eigenvalues``: of the Jacobian, sorted by decreasing real part; ``eigenvectors`` the
      matching columns; ``jacobian`` the (flat) Jacobian itself.
    - ``residual``: $\\max_i |f_i(y^*)|$.
    """

    state: object
    coordinates: np.ndarray
    kind: str
    unstable_dimension: int
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray = dataclasses.field(repr=False)
    jacobian: np.ndarray = dataclasses.field(repr=False)
    residual: float

    @property
    def stable(self) -> bool:
        return self.kind in ("stable node", "stable focus")

    @property
    def label(self) -> str:
        """The kind, with the unstable dimension for saddles (``"saddle (1 unstable)"``)."""
        return f"saddle ({self.unstable_dimension} unstable)" if self.kind == "saddle" else self.kind


def _format_eigenvalue(lam: complex) -> str:
    if abs(lam.imag) <= 1e-12 * max(1.0, abs(lam)):
        return f"{lam.real:.4g}"
    return f"{lam.real:.4g}{lam.imag:+.4g}j"


@dataclasses.dataclass(frozen=True)
class FixedPoints:
    """The fixed points found by ``find_fixed_points``: a sequence of ``FixedPoint`` with a
    table as its repr and ``to_xarray()``.

    **Attributes:** ``points`` (tuple of ``FixedPoint``, sorted lexicographically by
    coordinates), ``names`` (the coordinate names), ``lower``/``upper`` (the box, flat),
    ``system`` (type name), ``starts`` (Newton starts), ``converged`` (starts that converged
    inside the box), ``seconds`` (wall time, compilation included).
    """

    points: tuple[FixedPoint, ...]
    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    system: str
    starts: int
    converged: int
    seconds: float

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self):
        return iter(self.points)

    def __getitem__(self, i) -> FixedPoint:
        return self.points[i]

    @property
    def coordinates(self) -> np.ndarray:
        """All points as rows, shape ``(len(self), n)``."""
        return np.array([p.coordinates for p in self.points]).reshape(len(self.points), len(self.names))

    @property
    def kinds(self) -> list[str]:
        return [p.kind for p in self.points]

    def of_kind(self, kind: str) -> list[FixedPoint]:
        """The points of one kind (``"saddle"``, ``"stable node"``, ...)."""
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {list(KINDS)}; got {kind!r}.")
        return [p for p in self.points if p.kind == kind]

    def nearest(self, state) -> FixedPoint:
        """The point nearest (Euclidean, flat coordinates) to ``state`` (PyTree or flat)."""
        if not self.points:
            raise ValueError("there are no fixed points to choose from.")
        target = np.asarray(state, dtype=float).reshape(-1) if not isinstance(state, dict) else None
        if target is None or target.size != len(self.names):
            target = np.concatenate([np.ravel(np.asarray(l, float)) for l in jax.tree_util.tree_leaves(state)])
        return self.points[int(np.argmin(np.linalg.norm(self.coordinates - target, axis=1)))]

    def __repr__(self) -> str:
        box = ", ".join(f"{n} in [{lo:.4g}, {hi:.4g}]" for n, lo, hi in zip(self.names, self.lower, self.upper))
        head = (f"FixedPoints of {self.system}: {len(self.points)} found ({self.converged} of "
                f"{self.starts} Newton starts converged in the box; {box})")
        if not self.points:
            return head
        shown_names = list(self.names[:6]) + (["..."] if len(self.names) > 6 else [])
        width = max(10, *(len(n) for n in shown_names))
        kind_w = max(len(p.label) for p in self.points)
        rows = [head, "  " + "  ".join(["#".rjust(3), "kind".ljust(kind_w)] + [n.rjust(width) for n in shown_names]
                                     + ["eigenvalues"])]
        for i, p in enumerate(self.points):
            coords = [f"{c:.6g}".rjust(width) for c in p.coordinates[:6]] + (["".rjust(width)] if len(self.names) > 6 else [])
            lams = ", ".join(_format_eigenvalue(l) for l in p.eigenvalues[:4]) + (", ..." if p.eigenvalues.size > 4 else "")
            rows.append("  " + "  ".join([str(i).rjust(3), p.label.ljust(kind_w)] + coords + [lams]))
        return "\n".join(rows)

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimension ``point``: one variable per coordinate, ``kind``,
        ``unstable_dimension``, ``residual``, and ``eigenvalue_real`` / ``eigenvalue_imag``
        of shape ``(point, eigenvalue)``; the box and search statistics as attributes."""
        import xarray as xr

        coords = self.coordinates
        lam = np.array([p.eigenvalues for p in self.points]).reshape(len(self.points), len(self.names))
        data = {name: ("point", coords[:, i]) for i, name in enumerate(self.names)}
        data.update(
            kind=("point", np.array(self.kinds, dtype=str)),
            unstable_dimension=("point", np.array([p.unstable_dimension for p in self.points], dtype=int)),
            residual=("point", np.array([p.residual for p in self.points])),
            eigenvalue_real=(("point", "eigenvalue"), lam.real),
            eigenvalue_imag=(("point", "eigenvalue"), lam.imag),
        )
        attrs = dict(system=self.system, starts=self.starts, converged=self.converged,
                     seconds=self.seconds, lower=self.lower, upper=self.upper,
                     coordinate_names=",".join(self.names))
        return xr.Dataset(data, coords={"point": np.arange(len(self.points))}, attrs=attrs)


# ----------------------------------------------------------------------------------------------
# The search


@eqx.filter_jit
def _newton_from_starts(system, layout, starts, t, args, lower, upper, tol, max_steps):
    def residual(x, _):
        return flat_field(system, layout, t, x, args)

    solver = optx.Newton(rtol=tol, atol=tol)

    def one(x0):
        sol = optx.root_find(residual, solver, x0, options=dict(lower=lower, upper=upper),
                             max_steps=max_steps, throw=False)
        return sol.value, sol.result == optx.RESULTS.successful

    return jax.vmap(one)(starts)


@eqx.filter_jit
def _field_and_jacobian(system, layout, points, t, args):
    def one(x):
        f = lambda x: flat_field(system, layout, t, x, args)
        return f(x), jax.jacfwd(f)(x)

    return jax.vmap(one)(points)


def jacobian(system: AbstractSystem, state, *, t: float = 0.0, args=None, like=None) -> np.ndarray:
    r"""The Jacobian $\partial f_i/\partial y_j$ of ``system`` at ``state`` on the flat
    coordinates (ordered as the ``StateLayout`` names), by forward-mode autodiff.

    **Arguments:** ``system``; ``state`` (a state PyTree or flat vector); ``t``; ``args``;
    ``like`` (an example state when the system has no ``state_shapes()``).

    **Returns:** an ``(n, n)`` NumPy array.
    """
    layout = layout_of(system, like)
    x = as_flat(layout, state, "state")
    check_finite("state", x)
    _, jac = _field_and_jacobian(system, layout, jnp.asarray(x)[None], jnp.float64(t), args)
    return np.asarray(jac[0])


def _deduplicate(points: np.ndarray, scale: np.ndarray, tol: float) -> np.ndarray:
    """Indices of representatives: a point within ``tol`` (max-norm in units of ``scale``) of
    an earlier kept one is a duplicate."""
    kept: list[int] = []
    for i, p in enumerate(points):
        if not any(np.max(np.abs(p - points[j]) / scale) <= tol for j in kept):
            kept.append(i)
    return np.array(kept, dtype=int)


def _box(layout: StateLayout, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    lo = as_flat(layout, lower, "lower")
    hi = as_flat(layout, upper, "upper")
    check_finite("lower", lo)
    check_finite("upper", hi)
    bad = ~(lo < hi)
    if np.any(bad):
        which = ", ".join(f"{layout.names[i]}: {lo[i]:g} >= {hi[i]:g}" for i in np.flatnonzero(bad))
        raise ValueError(f"`lower` must be below `upper` in every coordinate; got {which}.")
    return lo, hi


def find_fixed_points(
    system: AbstractSystem,
    lower,
    upper,
    *,
    starts: int = 256,
    guesses=None,
    seed: int = 0,
    t: float = 0.0,
    args=None,
    like=None,
    tol: float = 1e-11,
    max_steps: int = 100,
    residual_tol: float = 1e-8,
    duplicate_tol: float = 1e-6,
    hyperbolic_tol: float = 1e-7,
) -> FixedPoints:
    r"""All fixed points $f(t, y^*) = 0$ of ``system`` in the box ``lower <= y <= upper``, by
    Newton's method (``optimistix.Newton``, Jacobians by ``jax.jacfwd``) from many starting
    points, run as one ``jax.vmap``-ed, compiled solve.

    The starts are a scrambled Sobol sequence filling the box (plus ``guesses``). Newton
    iterates are kept within the box enlarged by 5% of its width on each side. A start counts
    when Newton converged, the residual is small,
    $\max_i|f_i| \le \text{residual\_tol}\,(1 + \|J\|_\infty\,\max(1, \|y^*\|_\infty))$
    (scaled so that stiff $1/\varepsilon$ rows are judged fairly), and $y^*$ lies in the box.
    Points closer than ``duplicate_tol`` times the box width (max-norm) are merged. Each point
    is classified by ``classify`` from the eigenvalues of its Jacobian.

    Newton finds roots from a start in its basin; a root whose basin misses every start is
    missed. More ``starts`` (or ``guesses`` near where you expect points) make this rare. On
    a continuum of fixed points the result is a sample of it, flagged ``"non-hyperbolic"``.

    **Arguments:**

    - ``system``: an ``AbstractSystem``.
    - ``lower``, ``upper``: the box, each a state PyTree, a flat vector (order of
      ``layout.names``), or a scalar for every coordinate; ``lower < upper`` everywhere.
    - ``starts``: number of Sobol starting points (integer >= 1).
    - ``guesses``: extra starting points, a sequence of states (PyTrees or flat vectors).
    - ``seed``: seed of the scrambled Sobol sequence.
    - ``t``, ``args``: time and arguments passed to ``vector_field`` (non-autonomous
      systems: fixed points of the frozen field at time ``t``).
    - ``like``: an example state, for systems without ``state_shapes()``.
    - ``tol``: Newton's step tolerance (relative and absolute, > 0); ``max_steps`` its
      iteration budget.
    - ``residual_tol``: acceptance threshold of the scaled residual (> 0).
    - ``duplicate_tol``: merge distance in units of the box width (> 0).
    - ``hyperbolic_tol``: tolerance of ``classify`` (> 0).

    **Returns:** a ``FixedPoints`` table (printable; ``to_xarray()``).
    """
    start_time = time.perf_counter()
    layout = layout_of(system, like)
    lo, hi = _box(layout, lower, upper)
    starts = check_integer("starts", starts)
    max_steps = check_integer("max_steps", max_steps)
    for name, value in (("tol", tol), ("residual_tol", residual_tol), ("duplicate_tol", duplicate_tol),
                        ("hyperbolic_tol", hyperbolic_tol)):
        check_positive(name, value)
    t = check_real("t", t)
    n = layout.size
    sobol = scipy.stats.qmc.Sobol(d=n, scramble=True, seed=seed)
    m = int(np.ceil(np.log2(max(starts, 2))))
    unit = sobol.random_base2(m)[:starts]
    x0 = lo + unit * (hi - lo)
    if guesses is not None:
        extra = np.array([as_flat(layout, g, "guesses") for g in guesses]).reshape(-1, n)
        check_finite("guesses", extra)
        x0 = np.concatenate([extra, x0])
    margin = 0.05 * (hi - lo)
    values, ok = _newton_from_starts(
        system, layout, jnp.asarray(x0), jnp.float64(t), args, jnp.asarray(lo - margin),
        jnp.asarray(hi + margin), jnp.float64(tol), max_steps,
    )
    values, ok = np.asarray(values), np.asarray(ok)
    inside = np.all((values >= lo - 1e-9 * (hi - lo)) & (values <= hi + 1e-9 * (hi - lo)), axis=1)
    candidates = values[ok & inside & np.all(np.isfinite(values), axis=1)]
    if candidates.shape[0]:
        field, jac = (np.asarray(a) for a in _field_and_jacobian(system, layout, jnp.asarray(candidates), jnp.float64(t), args))
        jac_norm = np.max(np.sum(np.abs(jac), axis=2), axis=1)
        allowed = residual_tol * (1.0 + jac_norm * np.maximum(1.0, np.max(np.abs(candidates), axis=1)))
        residual = np.max(np.abs(field), axis=1)
        good = np.isfinite(residual) & (residual <= allowed) & np.all(np.isfinite(jac), axis=(1, 2))
        candidates, jac, residual = candidates[good], jac[good], residual[good]
    else:
        jac, residual = np.zeros((0, n, n)), np.zeros(0)
    converged = candidates.shape[0]
    # Best residual first so that the representative of a cluster is its most accurate member.
    order = np.argsort(residual, kind="stable")
    candidates, jac, residual = candidates[order], jac[order], residual[order]
    keep = _deduplicate(candidates, hi - lo, duplicate_tol)
    candidates, jac, residual = candidates[keep], jac[keep], residual[keep]
    order = np.lexsort(candidates.T[::-1]) if candidates.shape[0] else np.zeros(0, int)
    points = []
    for i in order:
        lam, vec = np.linalg.eig(jac[i])
        sort = np.argsort(-lam.real, kind="stable")
        lam, vec = lam[sort], vec[:, sort]
        kind, unstable = classify(lam, hyperbolic_tol)
        points.append(FixedPoint(layout.unravel_numpy(candidates[i]), candidates[i], kind, unstable, lam, vec,
                                 jac[i], float(residual[i])))
    return FixedPoints(tuple(points), layout.names, lo, hi, type(system).__name__, x0.shape[0], converged,
                       time.perf_counter() - start_time)
