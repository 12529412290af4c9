r"""Gradient flow of a single ReLU neuron on a finite data set under the square loss:
the exact, event-driven solution, its support vectors and its path-dependent limit.

$$f_w(x) = \sigma(w^\top x),\quad \sigma(z) = \max(z, 0),\qquad
  L(w) = \tfrac12\sum_{i=1}^n \big(\sigma(w^\top x_i) - y_i\big)^2,\qquad \dot w = -\nabla L(w).$$

With pre-activations $u_i = x_i^\top w$ and the active set $A(w) = \{i : u_i > 0\}$ the flow is
$\dot w = -X_A^\top(X_A w - y_A)$: linear inside each activation region, with the closed form
(``G = X_A^T X_A``, ``b = X_A^T y_A``)

$$w(t) = w_0 - G^{+}\big(I - e^{-Gt}\big)(Gw_0 - b),$$

and switching where some $u_j$ crosses 0. ``solve_event_driven`` walks from region to region:
in each it diagonalises $G$, finds the first root of every $u_j(t)$ (a constant plus decaying
exponentials) by bracketing on a log-spaced grid and ``brentq``, jumps there and re-classifies
the points on the switching surface. On a surface $u_j = 0$ (theory note §2):

- the inactive field pushes $u_j$ up and the active one too: $j$ activates;
- both push down: $j$ stays (or becomes) inactive;
- inactive pushes up, active pushes down (only possible for $y_j < 0$): a Filippov **sliding
  mode**, $u_j \equiv 0$ with $\dot w$ the projection of the inactive field on $x_j^\perp$
  (still linear: $\dot w = -PGPw + Pb$);
- inactive pushes down, active pushes up (only for $y_j > 0$): the solution is not unique;
  the convention $\sigma'(0)$ picks the branch (``relu_derivative_at_zero = 0``: inactive,
  ``1``: active).

Convention $\sigma'(0)$: ``relu_derivative_at_zero`` (default 0, what autodiff of
``jnp.maximum(z, 0)`` gives). A point with $u_i = 0$ enters the gradient with this weight. Bias:
``bias=True`` augments every input with a constant 1 (the last weight is the bias).

Identities (used as tests): $\frac{d}{dt}\tfrac12\|w\|^2 = \sum_{i\in A}u_i(y_i - u_i)$;
$\dot L = -\|\nabla L\|^2$; the component of $w$ orthogonal to $\mathrm{span}\{x_i\}$ is
conserved; with $X$ of full row rank, $w - w_0 = \sum_i c_ix_i$ with $\dot c_i = (y_i - u_i)1[i\in A]$,
so a point that leaves the active set freezes its coefficient. If every point ever active is
active at the limit (and $X_{A_\infty}$ has full row rank), the limit is the projection
$w_\infty = w_0 + X_A^\top(X_AX_A^\top)^{-1}(y_A - X_Aw_0)$ of $w_0$ on $\{X_Aw = y_A\}$.

References: K. Lee, B. Sim, J. C. Ye, "Support Vectors and Gradient Dynamics of Single-Neuron
ReLU Networks", arXiv:2202.05510 (2022); G. Vardi, O. Shamir, "Implicit Regularization in ReLU
Networks with the Square Loss", COLT 2021, arXiv:2012.05156. The event-driven solver and the
identities are derived from the model (``shared/theory/relu_neuron.md``).
"""

from __future__ import annotations

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.optimize

from .._checks import as_float_array, check_finite, check_integer
from .._events import Crossing
from .._system import AbstractSystem

__all__ = [
    "ReluNeuron",
    "SwitchEvent",
    "Segment",
    "EventDrivenSolution",
    "solve_event_driven",
    "projection_limit",
    "interpolation_coefficients",
    "vardi_shamir_data",
    "random_relu_problem",
    "switching_crossing",
]

INACTIVE, ACTIVE, SLIDING = "inactive", "active", "sliding"

# Relative thresholds of the exact solver.
_ZERO_EIGENVALUE = 1e-12  # eigenvalues below this times the largest count as 0
_SURFACE = 1e-11  # |u_j| below this times ||x_j|| ||w|| counts as "on the switching surface"
_TANGENT = 1e-10  # |du_j/dt| below this times its scale counts as tangential
_HORIZON = 60.0  # after 60 / (smallest positive eigenvalue) every exponential is < 1e-26


def _as_data(inputs, targets):
    """Validate a data set: ``inputs`` (n, d) and ``targets`` (n,), finite, n >= 1, d >= 1."""
    try:
        x = np.asarray(inputs, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("`inputs` and `targets` must be numeric arrays.") from None
    if x.ndim != 2:
        raise ValueError(f"`inputs` must be a 2-D array (n points x d features); got shape {x.shape}.")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"`inputs` must hold at least one point with at least one feature (empty data set); got shape {x.shape}.")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(
            f"`targets` must be a 1-D array with one entry per row of `inputs` (shape ({x.shape[0]},)); "
            f"got shape {y.shape}."
        )
    check_finite("inputs", x)
    check_finite("targets", y)
    return x, y


class ReluNeuron(AbstractSystem):
    r"""Gradient flow of one ReLU neuron on the square loss
    $L(w) = \tfrac12\sum_i(\sigma(w^\top x_i) - y_i)^2$:

    $$\dot w = -\sum_{i=1}^n \sigma'(u_i)\,(\sigma(u_i) - y_i)\,x_i,\qquad u_i = x_i^\top w,$$

    with $\sigma'(u) = 1[u > 0]$ and $\sigma'(0) = $ ``relu_derivative_at_zero``.

    **Arguments:**

    - ``inputs``: $X$, shape ``(n, d)``, one data point per row (n >= 1, finite).
    - ``targets``: $y$, shape ``(n,)`` (finite).
    - ``bias``: if ``True`` each input is augmented to $(x_i, 1)$ and the state is $(w, b)$,
      of dimension ``d + 1``.
    - ``relu_derivative_at_zero``: the value used for $\sigma'(0)$, 0 (default, as autodiff)
      or 1.

    State: $w$, shape ``(d,)`` (``(d + 1,)`` with bias). Observables: ``"loss"``,
    ``"norm_squared"`` ($\|w\|^2$), ``"norm_rate"`` ($\sum_{i\in A}u_i(y_i - u_i)$, equal to
    $\frac{d}{dt}\tfrac12\|w\|^2$), ``"active_count"``.

    Reference: Lee, Sim, Ye 2022, arXiv:2202.05510; Vardi, Shamir, COLT 2021, arXiv:2012.05156.
    """

    inputs: jax.Array = eqx.field(converter=as_float_array)
    targets: jax.Array = eqx.field(converter=as_float_array)
    bias: bool = eqx.field(default=False, static=True)
    relu_derivative_at_zero: float = eqx.field(default=0.0, static=True)

    def __check_init__(self):
        _as_data(self.inputs, self.targets)
        if self.relu_derivative_at_zero not in (0, 1):
            raise ValueError(
                f"`relu_derivative_at_zero` must be 0 or 1 (the value used for relu'(0)); got {self.relu_derivative_at_zero!r}."
            )
        if not isinstance(self.bias, bool):
            raise ValueError(f"`bias` must be True or False; got {self.bias!r}.")

    @property
    def design_matrix(self) -> jax.Array:
        """The rows $x_i$ the weight acts on: ``inputs``, with a column of ones if ``bias``."""
        if self.bias:
            return jnp.concatenate([self.inputs, jnp.ones((self.inputs.shape[0], 1))], axis=1)
        return self.inputs

    @property
    def dimension(self) -> int:
        """Dimension of the weight (``d``, or ``d + 1`` with bias)."""
        return self.inputs.shape[1] + int(self.bias)

    def _relu_derivative(self, u):
        return jnp.where(u > 0, 1.0, jnp.where(u == 0, float(self.relu_derivative_at_zero), 0.0))

    def vector_field(self, t, y, args):
        x = self.design_matrix
        u = x @ y
        residual = jnp.maximum(u, 0.0) - self.targets
        return -x.T @ (self._relu_derivative(u) * residual)

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.dimension,), jnp.float64)

    def loss(self, w):
        """$L(w) = \\tfrac12\\sum_i(\\sigma(x_i^\\top w) - y_i)^2$ (``w`` may carry leading axes)."""
        u = jnp.asarray(w, jnp.float64) @ self.design_matrix.T
        return 0.5 * jnp.sum((jnp.maximum(u, 0.0) - self.targets) ** 2, axis=-1)

    def observables(self, t, y):
        u = self.design_matrix @ y
        active = u > 0
        return {
            "loss": self.loss(y),
            "norm_squared": jnp.sum(y**2),
            "norm_rate": jnp.sum(jnp.where(active, u * (self.targets - u), 0.0)),
            "active_count": jnp.sum(active).astype(jnp.float64),
        }

    def closed_form(self, t, y0):
        """The exact flow $w(t)$ (event-driven solver); ``t`` of any shape, returns
        ``t.shape + (dim,)``."""
        return solve_event_driven(self, y0).evaluate(t)


def switching_crossing(name: str = "switch") -> Crossing:
    """A ``Crossing`` of every pre-activation $u_j = x_j^\\top w$ through 0, for ``solve``:
    its times are the switching events of the flow (component j = data point j)."""
    return Crossing(name, _pre_activations, level=0.0, direction=0)


def _pre_activations(t, w, system):
    return system.design_matrix @ w


# ----------------------------------------------------------------------------------------------
# The exact flow inside one region


@dataclasses.dataclass(frozen=True)
class Segment:
    r"""The flow on $[t_{start}, t_{end}]$ inside one region: $\dot w = -Hw + h$ with
    $H = PX_A^\top X_AP$, $h = PX_A^\top y_A$ ($P$ the projection on the complement of the
    sliding points' inputs; $P = I$ without sliding), solved in the eigenbasis
    $H = V\,\mathrm{diag}(\lambda)V^\top$:
    $c_k(t) = c_k(0)$ for $\lambda_k = 0$, else $\beta_k/\lambda_k + e^{-\lambda_k t}(c_k(0) - \beta_k/\lambda_k)$.

    **Fields:** ``t_start``, ``t_end`` (``inf`` for the last); ``active``, ``sliding``: tuples
    of point indices; ``eigenvalues``, ``eigenvectors``, ``start_coordinates`` ($c(0)$),
    ``limit_coordinates`` (the $t\\to\\infty$ coordinates); ``w_start``.
    """

    t_start: float
    t_end: float
    active: tuple
    sliding: tuple
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    start_coordinates: np.ndarray
    limit_coordinates: np.ndarray
    w_start: np.ndarray

    def coordinates(self, tau) -> np.ndarray:
        """Eigen-coordinates at local times ``tau`` (>= 0), shape ``tau.shape + (d,)``."""
        tau = np.asarray(tau, dtype=np.float64)[..., None]
        decay = np.exp(-self.eigenvalues * tau)
        return self.limit_coordinates + decay * (self.start_coordinates - self.limit_coordinates)

    def state(self, tau) -> np.ndarray:
        """$w(t_{start} + \\tau)$ for local times ``tau``."""
        return self.coordinates(tau) @ self.eigenvectors.T

    @property
    def limit(self) -> np.ndarray:
        return self.eigenvectors @ self.limit_coordinates


def _region_operator(x, y, active, sliding):
    """$(H, h)$ of the flow $\\dot w = -Hw + h$ in region (active, sliding)."""
    d = x.shape[1]
    xa, ya = x[list(active)], y[list(active)]
    g, b = xa.T @ xa, xa.T @ ya
    if sliding:
        p = np.eye(d) - _projector_onto_rows(x[list(sliding)])
        g, b = p @ g @ p, p @ b
    return g, b


def _projector_onto_rows(rows):
    q, r = np.linalg.qr(rows.T)
    keep = np.abs(np.diag(r)) > 1e-12 * np.max(np.abs(np.diag(r)))
    q = q[:, keep]
    return q @ q.T


def _make_segment(x, y, w, t_start, active, sliding):
    g, b = _region_operator(x, y, active, sliding)
    lam, vec = np.linalg.eigh(g)
    scale = max(float(np.max(np.abs(lam))), 1e-300)
    positive = lam > _ZERO_EIGENVALUE * scale
    lam = np.where(positive, lam, 0.0)
    c0 = vec.T @ w
    beta = vec.T @ b
    limit = np.where(positive, beta / np.where(positive, lam, 1.0), c0)
    return Segment(float(t_start), math.inf, tuple(active), tuple(sliding), lam, vec, c0, limit, np.array(w))


def _sliding_multipliers(x, y, w, active, sliding):
    """Filippov weights $\\alpha_j$ of the sliding points ($\\alpha_j\\in[0,1]$ while sliding),
    as an affine map of $w$: returns (M, m) with $\\alpha = Mw + m$."""
    d = x.shape[1]
    if not sliding:
        return np.zeros((0, d)), np.zeros(0)
    xa, ya = x[list(active)], y[list(active)]
    xs, ys = x[list(sliding)], y[list(sliding)]
    # F_in = -G w + b; alpha * y_S = -(X_S X_S^T)^+ X_S F_in
    solve = np.linalg.pinv(xs @ xs.T) @ xs
    matrix = (solve @ (xa.T @ xa)) / ys[:, None]
    offset = -(solve @ (xa.T @ ya)) / ys
    return matrix, offset


# ----------------------------------------------------------------------------------------------
# Classification on the switching surfaces


def _classify(x, y, w, states, derivative_at_zero):
    """Assign each point inactive / active / sliding at ``w``. ``states`` holds the previous
    assignment (used for points on a surface; ``None`` at the start). Returns a list."""
    n = x.shape[0]
    if derivative_at_zero == 0 and not np.any(w):
        return [INACTIVE] * n  # w = 0 is a fixed point of the flow with relu'(0) = 0
    u = x @ w
    row_norm = np.linalg.norm(x, axis=1)
    band = _SURFACE * row_norm * np.linalg.norm(w)
    on_surface = np.abs(u) <= band
    start = ACTIVE if derivative_at_zero == 1 else INACTIVE
    new = []
    for j in range(n):
        if u[j] > band[j]:
            new.append(ACTIVE)
        elif u[j] < -band[j]:
            new.append(INACTIVE)
        else:
            new.append(start if states is None else states[j])
    for _ in range(4 * n + 4):
        active = [j for j in range(n) if new[j] == ACTIVE]
        sliding = [j for j in range(n) if new[j] == SLIDING]
        h_mat, h_vec = _region_operator(x, y, active, sliding)
        field = -h_mat @ w + h_vec
        accel = -h_mat @ field
        scale = np.linalg.norm(field) + np.linalg.norm(h_vec) + np.linalg.norm(h_mat) * np.linalg.norm(w) + 1e-300
        changed = False
        if sliding:
            mat, off = _sliding_multipliers(x, y, w, active, sliding)
            alpha = mat @ w + off
            for k, j in enumerate(sliding):
                if alpha[k] < -_TANGENT:
                    new[j], changed = INACTIVE, True
                elif alpha[k] > 1 + _TANGENT:
                    new[j], changed = ACTIVE, True
                if changed:
                    break
        if not changed:
            for j in np.flatnonzero(on_surface):
                if new[j] == SLIDING:
                    continue
                rate = x[j] @ field
                tol = _TANGENT * row_norm[j] * scale
                if abs(rate) <= tol:  # tangential: decide by the second derivative
                    rate = x[j] @ accel if abs(x[j] @ accel) > tol * max(np.linalg.norm(h_mat), 1e-300) else 0.0
                jump = y[j] * row_norm[j] ** 2  # change of du_j/dt when j switches on
                if new[j] == INACTIVE and rate > 0:
                    new[j] = ACTIVE if rate + jump > 0 else SLIDING
                    changed = True
                elif new[j] == ACTIVE and rate < 0:
                    new[j] = INACTIVE if rate - jump < 0 else SLIDING
                    changed = True
                if changed:
                    break
        if not changed:
            return new
    raise RuntimeError(
        "relu_neuron: the active set on the switching surface did not settle (cycling "
        f"between assignments at w = {w}); the data may be degenerate."
    )


# ----------------------------------------------------------------------------------------------
# Root finding


def _first_root(segment, rows, offsets, horizon, scales):
    """The first local time tau in (0, horizon] at which some affine function
    psi_k(tau) = rows[k] . w(tau) + offsets[k], positive at the start, becomes negative.
    Returns (tau, k) or (inf, -1)."""
    if rows.shape[0] == 0:
        return math.inf, -1
    lam = segment.eigenvalues
    positive = lam[lam > 0]
    if positive.size == 0:
        return math.inf, -1  # constant flow
    lo = 1e-7 / positive.max()
    grid = np.concatenate([[0.0], np.geomspace(lo, horizon, 1500)])
    coeff = rows @ segment.eigenvectors  # psi_k = coeff_k . c(tau) + offset_k
    psi = segment.coordinates(grid) @ coeff.T + offsets  # (T, m)
    tol = 1e-12 * scales

    def psi_k(k):
        return lambda tau: float(segment.coordinates(tau) @ coeff[k] + offsets[k])

    best, best_k = math.inf, -1
    for k in range(rows.shape[0]):
        col = psi[:, k]
        down = ((col[:-1] > tol[k]) & (col[1:] <= 0.0)) | ((col[:-1] > 0.0) & (col[1:] < -tol[k]))
        hits = np.flatnonzero(down)
        # tangential dips between grid points: interior minima that come close to 0
        interior = np.flatnonzero((col[1:-1] <= col[:-2]) & (col[1:-1] <= col[2:]) & (col[1:-1] > 0))
        for i in interior + 1:
            if hits.size and i - 1 >= hits[0]:
                break
            if col[i] > 1e-2 * np.max(np.abs(col)):
                continue
            fun = psi_k(k)
            res = scipy.optimize.minimize_scalar(fun, bounds=(grid[i - 1], grid[i + 1]), method="bounded",
                                                 options={"xatol": 1e-14 * grid[i + 1]})
            if res.fun < -tol[k]:
                tau = scipy.optimize.brentq(fun, grid[i - 1], res.x, xtol=1e-15, rtol=1e-15)
                if tau < best:
                    best, best_k = tau, k
                break
        if hits.size:
            i = hits[0]
            if grid[i] >= best:
                continue
            fun = psi_k(k)
            a, b = grid[i], grid[i + 1]
            if fun(a) <= 0.0:  # a start at round-off level: the crossing is in (a, b]
                a = grid[i] + 1e-3 * (b - a)
                if fun(a) <= 0.0:
                    tau = grid[i]
                    if tau < best:
                        best, best_k = tau, k
                    continue
            tau = scipy.optimize.brentq(fun, a, b, xtol=1e-15, rtol=1e-15)
            if tau < best:
                best, best_k = tau, k
    return best, best_k


# ----------------------------------------------------------------------------------------------
# Solution object


@dataclasses.dataclass(frozen=True)
class SwitchEvent:
    """One change of a point's state: at ``time`` point ``point`` went from ``before`` to
    ``after`` (``"inactive"``, ``"active"`` or ``"sliding"``)."""

    time: float
    point: int
    before: str
    after: str

    @property
    def kind(self) -> str:
        return {(INACTIVE, ACTIVE): "on", (ACTIVE, INACTIVE): "off"}.get((self.before, self.after), f"{self.before}->{self.after}")


@dataclasses.dataclass(frozen=True)
class EventDrivenSolution:
    r"""The exact piecewise trajectory of a ``ReluNeuron`` from ``w0`` (``solve_event_driven``).

    **Attributes:**

    - ``segments``: the ``Segment`` list (region-wise closed forms), in time order.
    - ``events``: the ``SwitchEvent`` log.
    - ``limit``: $w_\infty$ (exact: the limit of the last region's closed form).
    - ``final_active``: the active set at the limit (the **support vectors**).
    - ``ever_active``: $S(\infty)$, every point active at some time.
    - ``sliding_occurred``: whether a Filippov sliding mode ($y_j < 0$) was entered.
    - ``inputs``, ``targets``: the design matrix and targets the flow used.
    - ``w0``: the initial weight.
    """

    segments: tuple
    events: tuple
    limit: np.ndarray
    final_active: tuple
    final_sliding: tuple
    ever_active: tuple
    sliding_occurred: bool
    inputs: np.ndarray
    targets: np.ndarray
    w0: np.ndarray

    @property
    def event_times(self) -> np.ndarray:
        return np.array([e.time for e in self.events])

    @property
    def switch_times(self) -> np.ndarray:
        """Start times of the regions after the first (one per region change)."""
        return np.array([s.t_start for s in self.segments[1:]])

    def evaluate(self, t) -> np.ndarray:
        """$w(t)$ for times ``t`` >= 0 of any shape; returns ``t.shape + (d,)``."""
        t = np.asarray(t, dtype=np.float64)
        if np.any(~np.isfinite(t)) or np.any(t < 0):
            raise ValueError("`t` must be finite and >= 0.")
        starts = np.array([s.t_start for s in self.segments])
        index = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.segments) - 1)
        out = np.empty(t.shape + (self.limit.shape[0],))
        for k, seg in enumerate(self.segments):
            mask = index == k
            if np.any(mask):
                out[mask] = seg.state(t[mask] - seg.t_start)
        return out

    def active_set_at(self, t: float) -> tuple:
        """The active set of the region containing time ``t``."""
        starts = [s.t_start for s in self.segments]
        k = max(0, int(np.searchsorted(starts, t, side="right")) - 1)
        return self.segments[k].active

    def pre_activations(self, t) -> np.ndarray:
        return self.evaluate(t) @ self.inputs.T

    def loss(self, t) -> np.ndarray:
        u = self.pre_activations(t)
        return 0.5 * np.sum((np.maximum(u, 0.0) - self.targets) ** 2, axis=-1)

    def norm_rate(self, t) -> np.ndarray:
        r"""$\sum_{i\in A}u_i(y_i - u_i)$ at times ``t`` (the identity's right-hand side)."""
        u = self.pre_activations(t)
        return np.sum(np.where(u > 0, u * (self.targets - u), 0.0), axis=-1)

    @property
    def limit_loss(self) -> float:
        u = self.inputs @ self.limit
        return float(0.5 * np.sum((np.maximum(u, 0.0) - self.targets) ** 2))

    @property
    def stationary_residual(self) -> float:
        r"""$\|X_A^\top(X_Aw_\infty - y_A)\|$ over the final active set $A$ (the gradient at
        the limit with $\sigma'(0) = 0$; 0 at a stationary limit without sliding points)."""
        a = list(self.final_active)
        xa = self.inputs[a]
        return float(np.linalg.norm(xa.T @ (xa @ self.limit - self.targets[a]))) if a else 0.0

    @property
    def switched_off(self) -> tuple:
        """Points that were active at some time but are not at the limit."""
        return tuple(sorted(set(self.ever_active) - set(self.final_active)))

    @property
    def projection_formula_applies(self) -> bool:
        """Whether $S(\\infty) = A_\\infty$, no sliding occurred, and $X_{A_\\infty}$ has full row
        rank: then ``limit == projection_limit(inputs, targets, w0, final_active)``."""
        a = list(self.final_active)
        full_rank = len(a) == 0 or np.linalg.matrix_rank(self.inputs[a]) == len(a)
        return set(self.ever_active) == set(a) and not self.sliding_occurred and full_rank

    def frozen_coefficients(self) -> dict:
        """For $X$ of full row rank: the coefficients $c_i$ of $w_\\infty - w_0 = \\sum_i c_ix_i$
        of the switched-off points (each frozen at its value when the point switched off)."""
        coeff = interpolation_coefficients(self.inputs, self.limit - self.w0)
        return {j: float(coeff[j]) for j in self.switched_off}

    def to_xarray(self, ts=None):
        """An ``xarray.Dataset`` with ``w``, ``loss``, ``norm_squared`` on ``ts`` (default 400
        log-spaced times across the events) and the event log."""
        import xarray as xr

        if ts is None:
            last = max([e.time for e in self.events] + [1.0])
            ts = np.concatenate([[0.0], np.geomspace(1e-4 * last, 10 * last, 400)])
        w = self.evaluate(ts)
        events = self.events
        return xr.Dataset(
            {
                "w": (("time", "component"), w),
                "loss": ("time", self.loss(ts)),
                "norm_squared": ("time", np.sum(w**2, axis=-1)),
                "event_time": ("event", np.array([e.time for e in events])),
                "event_point": ("event", np.array([e.point for e in events], dtype=int)),
                "event_after": ("event", np.array([e.after for e in events], dtype=object).astype(str)),
                "limit": ("component", self.limit),
            },
            coords={"time": ts},
            attrs={"final_active": str(list(self.final_active)), "ever_active": str(list(self.ever_active)),
                   "limit_loss": self.limit_loss, "sliding_occurred": int(self.sliding_occurred)},
        )

    def event_log(self) -> str:
        """The event log as text, one line per switch."""
        lines = [f"{'time':>14}  point  change"]
        for e in self.events:
            lines.append(f"{e.time:>14.8g}  {e.point:>5}  {e.before} -> {e.after}")
        return "\n".join(lines)


def solve_event_driven(neuron: ReluNeuron, w0, *, max_events: int = 10_000) -> EventDrivenSolution:
    r"""The exact gradient flow of ``neuron`` from ``w0``, region by region, to its limit.

    In each region the flow is linear and solved in closed form (``Segment``); the next
    switching time is the first root of $u_j(t)$ (or of a sliding weight $\alpha_j(t)$,
    $1 - \alpha_j(t)$), found by bracketing on a log-spaced grid up to 60 / (smallest positive
    eigenvalue) and ``brentq`` (plus a check of grid minima for tangential touches). At an event
    the state is projected onto the switching surface (an O(1e-16) correction) and the points
    on a surface are re-classified (module docstring). The walk ends when a region has no
    further event: its closed-form limit is $w_\infty$.

    **Arguments:**

    - ``neuron``: a ``ReluNeuron``.
    - ``w0``: initial weight, shape ``(neuron.dimension,)``, finite.
    - ``max_events``: stop with ``RuntimeError`` after this many region changes.

    **Returns:** an ``EventDrivenSolution``.
    """
    if not isinstance(neuron, ReluNeuron):
        raise ValueError(f"`neuron` must be a ReluNeuron; got {type(neuron).__name__}.")
    max_events = check_integer("max_events", max_events)
    x = np.asarray(neuron.design_matrix, dtype=np.float64)
    y = np.asarray(neuron.targets, dtype=np.float64)
    w = np.asarray(w0, dtype=np.float64)
    if w.shape != (x.shape[1],):
        raise ValueError(f"`w0` must have shape ({x.shape[1]},) (the weight dimension); got {w.shape}.")
    check_finite("w0", w)
    n = x.shape[0]
    row_norm = np.linalg.norm(x, axis=1)
    states = _classify(x, y, w, None, neuron.relu_derivative_at_zero)
    segments, events = [], []
    ever = {j for j in range(n) if states[j] == ACTIVE}
    sliding_occurred = any(s == SLIDING for s in states)
    t = 0.0
    w_peak = float(np.linalg.norm(w))
    for _ in range(max_events + 1):
        active = [j for j in range(n) if states[j] == ACTIVE]
        sliding = [j for j in range(n) if states[j] == SLIDING]
        seg = _make_segment(x, y, w, t, active, sliding)
        # event functions psi_k = rows . w + offsets, positive in this region
        rows, offsets, labels, exits = [], [], [], []
        for j in range(n):
            if states[j] == ACTIVE:
                rows.append(x[j]); offsets.append(0.0); labels.append(j); exits.append(INACTIVE)
            elif states[j] == INACTIVE:
                rows.append(-x[j]); offsets.append(0.0); labels.append(j); exits.append(ACTIVE)
        mat, off = _sliding_multipliers(x, y, w, active, sliding)
        for k, j in enumerate(sliding):
            # alpha_j -> 0: the point leaves the surface downwards; alpha_j -> 1: upwards
            rows.append(mat[k]); offsets.append(off[k]); labels.append(j); exits.append(INACTIVE)
            rows.append(-mat[k]); offsets.append(1.0 - off[k]); labels.append(j); exits.append(ACTIVE)
        rows = np.array(rows).reshape(-1, x.shape[1])
        offsets = np.array(offsets)
        positive = seg.eigenvalues[seg.eigenvalues > 0]
        horizon = _HORIZON / positive.min() if positive.size else 1.0
        wscale = max(np.linalg.norm(w), np.linalg.norm(seg.limit), 1e-300)
        scales = np.linalg.norm(rows, axis=1) * wscale + np.abs(offsets)
        tau, k = _first_root(seg, rows, offsets, horizon, scales)
        if not math.isfinite(tau):
            segments.append(seg)
            w_limit = seg.limit
            final_active = tuple(j for j in range(n) if states[j] == ACTIVE)
            final_sliding = tuple(j for j in range(n) if states[j] == SLIDING)
            return EventDrivenSolution(
                tuple(segments), tuple(events), w_limit, final_active, final_sliding, tuple(sorted(ever)),
                sliding_occurred, x, y, np.asarray(w0, dtype=np.float64),
            )
        t_event = t + tau
        segments.append(dataclasses.replace(seg, t_end=t_event))
        w = seg.state(tau)
        j = labels[k]
        if states[j] != SLIDING:  # put w exactly on the surface u_j = 0
            w = w - (x[j] @ w) / row_norm[j] ** 2 * x[j]
        w_peak = max(w_peak, float(np.linalg.norm(w)))
        if np.linalg.norm(w) <= 1e-13 * w_peak:  # reached w = 0 (e.g. squeezed by sliding modes)
            w = np.zeros_like(w)
        proposal = list(states)
        proposal[j] = exits[k]
        new = _classify(x, y, w, proposal, neuron.relu_derivative_at_zero)
        if new == states:
            # a crossing at round-off level that the surface rules undo: take the crossing
            new = proposal
        for i in range(n):
            if new[i] != states[i]:
                events.append(SwitchEvent(t_event, i, states[i], new[i]))
        states = new
        ever |= {i for i in range(n) if states[i] == ACTIVE}
        sliding_occurred |= any(s == SLIDING for s in states)
        t = t_event
    raise RuntimeError(
        f"solve_event_driven: more than max_events = {max_events} region changes (last at t = {t:.6g}); "
        "the flow may switch infinitely often (Zeno) or the data are degenerate. Raise `max_events`."
    )


# ----------------------------------------------------------------------------------------------
# Support vectors and the projection formula


def projection_limit(inputs, targets, w0, active) -> np.ndarray:
    r"""$w_0 + X_A^\top(X_AX_A^\top)^{-1}(y_A - X_Aw_0)$: the point of $\{w : X_Aw = y_A\}$
    nearest to $w_0$ — the limit of the flow when every point ever active is active at the end
    (theory note §6). Needs $X_A$ of full row rank.

    **Arguments:**

    - ``inputs``: $X$ (n, d) (the design matrix, with the ones column if a bias is used).
    - ``targets``: $y$ (n,).
    - ``w0``: the initial weight (d,).
    - ``active``: the support vectors $A$ (indices).

    **Returns:** the limit, shape ``(d,)``.
    """
    x, y = _as_data(inputs, targets)
    w0 = np.asarray(w0, dtype=np.float64)
    a = list(active)
    if not a:
        return w0.copy()
    xa = x[a]
    if np.linalg.matrix_rank(xa) < len(a):
        raise ValueError(f"`active`: the rows X_A must be linearly independent; rank {np.linalg.matrix_rank(xa)} < {len(a)}.")
    return w0 + xa.T @ np.linalg.solve(xa @ xa.T, y[a] - xa @ w0)


def interpolation_coefficients(inputs, displacement) -> np.ndarray:
    r"""The coefficients $c$ of $\Delta w = \sum_i c_ix_i$ for $X$ of full row rank
    ($c = (XX^\top)^{-1}X\Delta w$); ``displacement`` may carry leading axes."""
    x = np.asarray(inputs, dtype=np.float64)
    if np.linalg.matrix_rank(x) < x.shape[0]:
        raise ValueError("`inputs` must have full row rank (n <= d, independent rows) for unique coefficients.")
    return np.linalg.solve(x @ x.T, x @ np.moveaxis(np.asarray(displacement, dtype=np.float64), -1, 0)).T


# ----------------------------------------------------------------------------------------------
# Data sets


def vardi_shamir_data(gamma: float):
    r"""The Vardi–Shamir-type data set (theory note §7): $x_1 = (3,-1,0)$, $x_2 = (4,2,0)$,
    $x_3 = (0,\gamma,\gamma)$, $y = (16, 18, 0)$. For every $\gamma > 0$ the zero-loss set is
    $\{(5,-1,w_3) : w_3 \le 1\}$, but the limit of the flow from $w_0 = 10^{-6}(1,1,1)$ depends
    on $\gamma$.

    **Returns:** ``(inputs, targets, w0)``.
    """
    if not (isinstance(gamma, (int, float, np.floating, np.integer)) and math.isfinite(gamma) and gamma >= 0):
        raise ValueError(f"`gamma` must be a finite number >= 0; got {gamma!r}.")
    inputs = np.array([[3.0, -1.0, 0.0], [4.0, 2.0, 0.0], [0.0, gamma, gamma]])
    return inputs, np.array([16.0, 18.0, 0.0]), np.full(3, 1e-6)


def random_relu_problem(key, n: int, d: int, init_scale: float = 1.0):
    r"""A random problem: $x_i \sim N(0, I_d)$, $y_i = |N(0,1)|$, $w_0 = $ ``init_scale`` $\cdot N(0, I_d)/\sqrt d$.

    **Returns:** ``(inputs, targets, w0)`` as NumPy arrays.
    """
    from .._random import generator

    n = check_integer("n", n)
    d = check_integer("d", d)
    rng = generator(key)
    x = rng.standard_normal((n, d))
    y = np.abs(rng.standard_normal(n))
    w0 = init_scale * rng.standard_normal(d) / math.sqrt(d)
    return x, y, w0
