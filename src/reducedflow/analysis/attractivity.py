r"""Stochastic attractivity of invariant sets: collapse probabilities with binomial confidence
intervals, the top Lyapunov exponent of the linearised normal dynamics (Monte Carlo, closed form,
quadratic certificate) and exact one-dimensional diffusion tools (curvature-vs-noise criterion,
scale function, stationary density, hitting probabilities).

Reference: F. Chen, D. Kunin, A. Yamamura, S. Ganguli, "Stochastic Collapse: How Gradient Noise
Attracts SGD Dynamics Towards Simpler Subnetworks", NeurIPS 2023, arXiv:2306.04251.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from scipy import integrate, interpolate, linalg, stats

from .._checks import as_float_array, check_finite, check_integer, check_positive
from .._random import as_key
from .._sde import AbstractSDESystem
from .._solve_sde import euler_maruyama


# ----------------------------------------------------------------------------------------------
# binomial confidence intervals and collapse probabilities


def _two_sided_z(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"`confidence` must lie in (0, 1); got {confidence!r}.")
    return float(stats.norm.ppf(0.5 + 0.5 * confidence))


def wilson_interval(successes, trials, confidence: float = 0.95):
    r"""Wilson score interval for a binomial proportion,
    $$\frac{\hat p + \frac{z^2}{2n} \pm z\sqrt{\frac{\hat p(1-\hat p)}{n} + \frac{z^2}{4n^2}}}{1 + \frac{z^2}{n}},
    \qquad \hat p = k/n,$$
    $z$ the two-sided normal quantile of ``confidence``. Unlike the Wald interval it stays
    inside $[0, 1]$ and is informative at $k = 0$ or $k = n$ (0 of 100 gives an upper end of
    about 0.037 at 95 %).

    Reference: E. B. Wilson, "Probable inference, the law of succession, and statistical
    inference", JASA 22 (1927).

    **Arguments:**

    - ``successes``: number (or array of numbers) of successes $k$, $0 \le k \le n$.
    - ``trials``: number (or array) of trials $n \ge 1$.
    - ``confidence``: the coverage in $(0, 1)$ (default 0.95).

    **Returns:** ``(low, high)``, floats or arrays broadcast from the inputs.
    """
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    if np.any(n < 1) or np.any(n != np.round(n)):
        raise ValueError(f"`trials` must be integers >= 1; got {trials!r}.")
    if np.any(k < 0) or np.any(k > n) or np.any(k != np.round(k)):
        raise ValueError(f"`successes` must be integers in [0, trials]; got {successes!r}.")
    z = _two_sided_z(confidence)
    p = k / n
    denominator = 1.0 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    low = np.clip(centre - half, 0.0, 1.0)
    high = np.clip(centre + half, 0.0, 1.0)
    # exact ends: the interval contains 0 (1) when no (every) trial succeeded
    low = np.where(k == 0, 0.0, low)
    high = np.where(k == n, 1.0, high)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


class CollapseProbability(NamedTuple):
    """Estimated $P(d(\\theta_t, A) < \\mathrm{tol})$ with its Wilson interval.

    ``estimate``, ``low``, ``high`` are floats (one time) or arrays over times; ``n`` is the
    number of paths.
    """

    estimate: float | np.ndarray
    low: float | np.ndarray
    high: float | np.ndarray
    n: int


def collapse_probability(distances, tol, confidence: float = 0.95) -> CollapseProbability:
    r"""The fraction of paths within ``tol`` of an invariant set,
    $\hat P = \#\{p : d(\theta^{(p)}_t, A) < \mathrm{tol}\}/n$, with its Wilson interval.

    Collapse by linear multiplicative noise is convergence, not hitting ($\log d$ is a drifted
    Brownian motion near $A$), so it is measured with a threshold; sweep ``tol`` and $t$ near a
    threshold (Chen et al. 2023, arXiv:2306.04251).

    **Arguments:**

    - ``distances``: per-path distances to the set at one time, shape ``(paths,)``, or at
      several times, shape ``(times, paths)``. Non-finite distances count as not collapsed.
    - ``tol``: the threshold (> 0).
    - ``confidence``: coverage of the interval (default 0.95).

    **Returns:** ``CollapseProbability(estimate, low, high, n)``; the first three are floats for
    one time and arrays of shape ``(times,)`` otherwise.
    """
    check_positive("tol", tol)
    d = np.asarray(distances, dtype=np.float64)
    if d.ndim not in (1, 2) or d.shape[-1] < 1:
        raise ValueError(f"`distances` must have shape (paths,) or (times, paths); got {d.shape}.")
    n = int(d.shape[-1])
    hits = np.sum(np.isfinite(d) & (d < tol), axis=-1)
    low, high = wilson_interval(hits, n, confidence)
    estimate = hits / n
    if d.ndim == 1:
        return CollapseProbability(float(estimate), float(low), float(high), n)
    return CollapseProbability(np.asarray(estimate, dtype=np.float64), np.asarray(low), np.asarray(high), n)


# ----------------------------------------------------------------------------------------------
# linearised normal dynamics and its top Lyapunov exponent


class ExponentEstimate(NamedTuple):
    """A Monte-Carlo Lyapunov exponent: ``value`` (mean over paths), ``stderr`` (over paths),
    ``(low, high)`` its normal confidence interval, ``n_paths``. The interval covers the
    statistical error only, not the O(dt) Euler–Maruyama bias."""

    value: float
    stderr: float
    low: float
    high: float
    n_paths: int


class QuadraticCertificate(NamedTuple):
    r"""Result of ``LinearisedNormalDynamics.quadratic_certificate``.

    **Attributes:** ``P`` (the symmetric matrix of $V = x^\top P x$); ``generator_matrix``
    $M(P) = -(H^\top P + PH) + \sum_k B_k^\top P B_k$ ($\mathcal{L}V = x^\top M x$); ``valid``
    ($P \succ 0$ and $M \prec 0$); ``decay_rate`` $c = \min_x -x^\top M x / x^\top P x$ (so
    $E V(x_t) \le e^{-ct} V(x_0)$; meaningful when valid); ``exponent_bound`` $-c/2 \ge \lambda_{\max}$
    when valid (``nan`` otherwise); ``message``.
    """

    P: np.ndarray
    generator_matrix: np.ndarray
    valid: bool
    decay_rate: float
    exponent_bound: float
    message: str


def _as_square(name, value):
    m = np.asarray(value, dtype=np.float64)
    if m.ndim == 0:
        m = m.reshape(1, 1)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"`{name}` must be a square (n, n) matrix; got shape {m.shape}.")
    check_finite(name, m)
    return m


class LinearisedNormalDynamics(AbstractSDESystem):
    r"""The linearised dynamics normal to an invariant set $A$ (Itô),
    $$dx = -H x\,dt + \sum_{k=1}^{K} B_k x\,dB_k, \qquad x \in \mathbb{R}^n,$$
    $x$ the normal coordinates, $H$ the normal block of the Hessian of the loss (or minus the
    drift's Jacobian), $B_k$ the normal Jacobians of the diffusion columns.

    $A$ is stochastically attractive (paths that start near it converge to it with probability
    $\to 1$) if the top Lyapunov exponent $\lambda_{\max} = \lim_t \frac1t\log\|x_t\|$ is negative,
    repulsive if positive (Chen, Kunin, Yamamura, Ganguli 2023, arXiv:2306.04251; theory note
    §§3, 8). Three ways to get it: ``top_exponent_mc`` (renormalised Euler–Maruyama Monte Carlo),
    ``closed_form_exponents`` (commuting, simultaneously diagonalisable $H$, $B_k$) and
    ``quadratic_certificate`` (a sufficient mean-square bound).

    **Arguments:** ``H`` ``(n, n)`` (a scalar for n = 1), ``B`` ``(K, n, n)`` (or ``(n, n)`` for
    one Brownian motion).
    """

    H: jax.Array
    B: jax.Array

    def __init__(self, H, B):
        H = _as_square("H", H)
        B = np.asarray(B, dtype=np.float64)
        if B.ndim == 0 and H.shape == (1, 1):
            B = B.reshape(1, 1, 1)
        elif B.ndim == 2:
            B = B[None]
        n = H.shape[0]
        if B.ndim != 3 or B.shape[1:] != (n, n) or B.shape[0] < 1:
            raise ValueError(f"`B` must have shape (K, {n}, {n}) with K >= 1; got {B.shape}.")
        check_finite("B", B)
        self.H = jnp.asarray(H)
        self.B = jnp.asarray(B)

    def vector_field(self, t, y, args):
        return -self.H @ y

    def diffusion(self, t, y, args):
        return (self.B @ y).T  # column k is B_k y

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.H.shape[0],), jnp.float64)

    # -- (a) Monte Carlo ------------------------------------------------------------------------

    def top_exponent_mc(self, key, n_paths: int = 256, t1: float = 50.0, dt: float = 0.01,
                        confidence: float = 0.95, transient: float | None = None) -> ExponentEstimate:
        r"""$\lambda_{\max}$ by renormalised Euler–Maruyama (``reducedflow.euler_maruyama`` with
        ``renormalise=True``): each path starts in a random unit direction, is rescaled to unit
        norm after every step, and contributes $\frac1{t_1}\sum\log\|x_{k+1}\|$ over the steps after
        a discarded ``transient`` (which lets the direction relax to the top Oseledets direction;
        without it a random start biases the estimate by $E\log|\langle x_0, v_{\max}\rangle|/t_1$).
        The estimate is the mean over paths with a normal confidence interval from their spread.
        The O(dt) Euler–Maruyama bias (theory note §13) is not in the interval: confirm by
        halving ``dt``.

        **Arguments:** ``key`` (seed or key), ``n_paths`` (>= 2), ``t1`` (averaging time), ``dt``
        (step), ``confidence``, ``transient`` (discarded time; default ``t1 / 5``).

        **Returns:** ``ExponentEstimate(value, stderr, low, high, n_paths)``.
        """
        n_paths = check_integer("n_paths", n_paths, minimum=2)
        k_dir, k_paths = jr.split(as_key(key))
        x0 = jr.normal(k_dir, (n_paths, self.H.shape[0]))
        x0 = x0 / jnp.linalg.norm(x0, axis=1, keepdims=True)
        check_positive("t1", t1)
        transient = 0.2 * float(t1) if transient is None else float(transient)
        check_positive("transient", transient, allow_zero=True)
        total = transient + float(t1)
        traj = euler_maruyama(self, x0, total, dt=dt, key=k_paths, n_paths=n_paths, saveat=[transient, total],
                              renormalise=True)
        log_norm = traj.observables["log_norm"]
        per_path = (log_norm[:, -1] - log_norm[:, 0]) / (traj.ts[-1] - traj.ts[0])
        value = float(np.mean(per_path))
        stderr = float(np.std(per_path, ddof=1) / np.sqrt(n_paths))
        z = _two_sided_z(confidence)
        return ExponentEstimate(value, stderr, value - z * stderr, value + z * stderr, n_paths)

    # -- (b) closed form ------------------------------------------------------------------------

    def closed_form_exponents(self, rtol: float = 1e-9) -> np.ndarray:
        r"""All Lyapunov exponents when $H$ and every $B_k$ commute and are simultaneously
        diagonalisable: in the common eigenbasis each coordinate is a geometric Brownian motion,
        $dz_i = -h_i z_i\,dt + \sum_k b_{k,i} z_i\,dB_k$, so
        $$\lambda_i = -\mathrm{Re}\,h_i - \tfrac12\sum_k \mathrm{Re}\,(b_{k,i}^2)$$
        ($= -h_i - \tfrac12\sum_k b_{k,i}^2$ for real eigenvalues; a rotation generator
        $b = \pm i\beta$ contributes $+\beta^2/2$).

        **Returns:** the exponents, sorted in decreasing order (``[0]`` is $\lambda_{\max}$).

        **Raises:** ``ValueError`` if the matrices do not commute or are not diagonalisable
        (then use ``top_exponent_mc``).
        """
        check_positive("rtol", rtol)
        mats = [np.asarray(self.H)] + list(np.asarray(self.B))
        scale = max(np.linalg.norm(m) for m in mats) or 1.0
        for i in range(len(mats)):
            for j in range(i + 1, len(mats)):
                comm = np.linalg.norm(mats[i] @ mats[j] - mats[j] @ mats[i])
                if comm > rtol * scale**2:
                    names = ["H"] + [f"B_{k}" for k in range(len(mats) - 1)]
                    raise ValueError(
                        f"closed_form_exponents needs H and all B_k to commute; ||[{names[i]}, {names[j]}]|| = "
                        f"{comm:.3g} (relative {comm / scale**2:.3g} > rtol = {rtol:g}). Use top_exponent_mc."
                    )
        coefficients = np.random.default_rng(12345).uniform(0.5, 1.5, len(mats))
        combination = sum(c * m for c, m in zip(coefficients, mats))
        _, vectors = np.linalg.eig(combination)
        condition = np.linalg.cond(vectors)
        if not np.isfinite(condition) or condition > 1e8:
            raise ValueError(
                "closed_form_exponents needs H and the B_k to be diagonalisable; their common eigenvector "
                f"matrix is singular (condition number {condition:.3g}). Use top_exponent_mc."
            )
        inverse = np.linalg.inv(vectors)
        diagonals = []
        for m in mats:
            d = inverse @ m @ vectors
            off = np.linalg.norm(d - np.diag(np.diag(d)))
            if off > 1e3 * rtol * condition * scale:
                raise ValueError(
                    "closed_form_exponents: H and the B_k commute but are not simultaneously diagonalisable "
                    f"(off-diagonal residual {off:.3g}). Use top_exponent_mc."
                )
            diagonals.append(np.diag(d))
        h, b = diagonals[0], np.array(diagonals[1:])
        exponents = -h.real - 0.5 * np.sum((b**2).real, axis=0)
        return np.sort(exponents)[::-1]

    # -- (c) mean-square certificate -----------------------------------------------------------

    def _second_moment_operator(self) -> np.ndarray:
        H, B = np.asarray(self.H), np.asarray(self.B)
        eye = np.eye(H.shape[0])
        return -(np.kron(eye, H) + np.kron(H, eye)) + sum(np.kron(b, b) for b in B)

    def mean_square_exponent(self) -> float:
        r"""The exact exponential growth rate of $E\|x_t\|^2$: the spectral abscissa of
        $S \mapsto -HS - SH^\top + \sum_k B_k S B_k^\top$ ($dS/dt$ for $S = E\,xx^\top$). Always
        $\ge 2\lambda_{\max}$ (Jensen); for GBM it is $2a + b^2$ against $2(a - b^2/2)$."""
        return float(np.max(np.linalg.eigvals(self._second_moment_operator()).real))

    def quadratic_certificate(self, P=None) -> QuadraticCertificate:
        r"""A quadratic Lyapunov certificate of mean-square stability. For $V = x^\top P x$ the
        Itô generator gives $\frac{d}{dt}E\,V = E\,x^\top M(P)\,x$ with
        $$M(P) = -(H^\top P + P H) + \sum_k B_k^\top P B_k .$$
        If $P \succ 0$ and $M(P) \prec 0$ then $E\,V(x_t) \le e^{-ct}V(x_0)$ with
        $c = \min_x (-x^\top M x)/(x^\top P x)$, hence $\lambda_{\max} \le -c/2$ (Jensen) and $A$ is
        almost surely attractive. With ``P = None``, $P$ solves the generalized Lyapunov equation
        $M(P) = -I$, a linear system in $\mathrm{vec}(P)$; it has a solution $P \succ 0$ iff the
        dynamics is mean-square stable.

        Mean-square stability is **sufficient, not necessary**: for GBM $dX = aX\,dt + bX\,dB$ with
        $a - b^2/2 < 0 < 2a + b^2$ the origin attracts almost surely while $E X^2$ grows, and no
        quadratic certificate of this kind exists. (The pathwise drift of $\log V$, theory note
        §8, is sharper.)

        **Arguments:** ``P``: a symmetric positive definite ``(n, n)`` matrix to test, or ``None``.

        **Returns:** a ``QuadraticCertificate``.
        """
        H, B = np.asarray(self.H), np.asarray(self.B)
        n = H.shape[0]
        generator = lambda Q: -(H.T @ Q + Q @ H) + sum(b.T @ Q @ b for b in B)
        if P is None:
            operator = self._second_moment_operator().T  # adjoint: vec(M(P)) = A^T vec(P)
            try:
                solution = np.linalg.solve(operator, -np.eye(n).reshape(-1, order="F"))
            except np.linalg.LinAlgError:
                nan = float("nan")
                return QuadraticCertificate(np.full((n, n), nan), np.full((n, n), nan), False, nan, nan,
                                            "the generalized Lyapunov equation is singular (mean-square marginal).")
            P = solution.reshape(n, n, order="F")
        P = _as_square("P", P)
        if P.shape != (n, n):
            raise ValueError(f"`P` must have shape ({n}, {n}); got {P.shape}.")
        P = 0.5 * (P + P.T)
        M = generator(P)
        M = 0.5 * (M + M.T)
        p_min = float(np.min(np.linalg.eigvalsh(P)))
        m_max = float(np.max(np.linalg.eigvalsh(M)))
        nan = float("nan")
        if p_min <= 0:
            return QuadraticCertificate(P, M, False, nan, nan,
                                        f"P is not positive definite (smallest eigenvalue {p_min:.3g}): no "
                                        "mean-square certificate (the dynamics is not mean-square stable).")
        decay = float(np.min(linalg.eigh(-M, P, eigvals_only=True)))
        if m_max >= 0:
            return QuadraticCertificate(P, M, False, decay, nan,
                                        f"M(P) is not negative definite (largest eigenvalue {m_max:.3g}).")
        return QuadraticCertificate(P, M, True, decay, -decay / 2,
                                    f"mean-square stable: E V decays at rate >= {decay:.6g}; lambda_max <= {-decay / 2:.6g}.")


@eqx.filter_jit
def _values(sde, point, t, args):
    return sde.vector_field(t, point, args), sde.diffusion_matrix(t, point, args)


@eqx.filter_jit
def _jacobians(sde, point, t, args):
    J_f = jax.jacfwd(lambda y: sde.vector_field(t, y, args))(point)
    J_g = jax.jacfwd(lambda y: sde.diffusion_matrix(t, y, args))(point)
    return J_f, J_g


def linearise_at(sde: AbstractSDESystem, point, normal_basis=None, *, t: float = 0.0, args=None,
                 atol: float = 1e-10) -> LinearisedNormalDynamics:
    r"""The ``LinearisedNormalDynamics`` of an Itô SDE system at a point of an invariant linear
    subspace: $H = -N^\top J_f N$, $B_k = N^\top (\partial_y g_k) N$ ($f$ the drift, $g_k$ the
    diffusion columns, $N$ an orthonormal basis of the normal space). On an invariant linear
    subspace the normal components of $f$ and $g_k$ vanish, so to first order the normal
    coordinates evolve on their own.

    **Arguments:** ``sde``; ``point`` (on the set); ``normal_basis`` ``(n, m)`` orthonormal
    columns, an ``InvariantSubspace`` (its ``normal_basis``), or ``None`` for the whole space
    (an invariant point); ``t``, ``args``; ``atol``: the normal drift and diffusion at ``point``
    must be below it.
    """
    if not isinstance(sde, AbstractSDESystem):
        raise ValueError(f"`sde` must be an AbstractSDESystem; got {type(sde).__name__}.")
    point = jnp.asarray(point, dtype=jnp.float64)
    n = sde.state_size()
    if point.shape != (n,):
        raise ValueError(f"`point` must have shape ({n},); got {point.shape}.")
    N = getattr(normal_basis, "normal_basis", normal_basis)
    N = np.eye(n) if N is None else np.asarray(N, dtype=np.float64)
    if N.ndim != 2 or N.shape[0] != n or not np.allclose(N.T @ N, np.eye(N.shape[1]), atol=1e-10):
        raise ValueError(f"`normal_basis` must be an ({n}, m) matrix with orthonormal columns; got shape {N.shape}.")
    f, G = (np.asarray(v) for v in _values(sde, point, t, args))
    residual = max(np.max(np.abs(N.T @ f), initial=0.0), np.max(np.abs(N.T @ G), initial=0.0))
    if residual > atol:
        raise ValueError(
            f"`point` is not on an invariant set of `sde` with this normal space: the normal drift/diffusion is "
            f"{residual:.3g} > atol = {atol:g} there."
        )
    J_f, J_g = (np.asarray(j) for j in _jacobians(sde, point, t, args))  # (n, n), (n, K, n)
    H = -N.T @ J_f @ N
    B = np.einsum("ia,ikj,jb->kab", N, J_g, N)
    return LinearisedNormalDynamics(H, B)


# ----------------------------------------------------------------------------------------------
# one dimension


class OneDimensionalCriterion(NamedTuple):
    r"""$\alpha = L''(0) + \tfrac12 D''(0)$, the exponent $-\alpha$ at the invariant point, and
    ``attractive`` ($\alpha > 0$)."""

    alpha: float
    exponent: float
    attractive: bool


def one_dimensional_criterion(loss_second_derivative, diffusion_second_derivative) -> OneDimensionalCriterion:
    r"""Curvature against noise at an invariant point 0 of the 1-D Itô diffusion
    $d\theta = -L'(\theta)\,dt + \sqrt{2D(\theta)}\,dB$ ($L'(0) = D(0) = D'(0) = 0$):
    $$d\log|\theta| = -\big(L''(0) + \tfrac12 D''(0)\big)dt + \sqrt{D''(0)}\,dB + o(1),$$
    so 0 attracts iff $\alpha = L''(0) + \tfrac12 D''(0) > 0$; noise can make a maximum
    ($L''(0) < 0$) attractive (Chen et al. 2023, arXiv:2306.04251; theory note §5).

    **Arguments:** ``loss_second_derivative`` $L''(0)$; ``diffusion_second_derivative``
    $D''(0) \ge 0$ (physics convention, $GG^\top = 2D$).
    """
    d2 = float(diffusion_second_derivative)
    check_positive("diffusion_second_derivative", d2, allow_zero=True)
    alpha = float(loss_second_derivative) + 0.5 * d2
    return OneDimensionalCriterion(alpha, -alpha, alpha > 0)


def _on_grid(name, coefficient, x):
    values = np.asarray(coefficient(x) if callable(coefficient) else coefficient, dtype=np.float64)
    values = np.broadcast_to(values, x.shape).copy()
    check_finite(name, values)
    return values


def _check_grid(x_grid):
    x = np.asarray(x_grid, dtype=np.float64)
    if x.ndim != 1 or x.size < 5 or not np.all(np.diff(x) > 0):
        raise ValueError(f"`x_grid` must be a strictly increasing 1-D array of at least 5 points; got shape {x.shape}.")
    check_finite("x_grid", x)
    return x


def _cumulative(y, x):
    """Cumulative integral from x[0] (Simpson; trapezoid for fewer than 3 points)."""
    if y.size >= 3:
        return integrate.cumulative_simpson(y, x=x, initial=0.0)
    return integrate.cumulative_trapezoid(y, x=x, initial=0.0)


def _log_scale_derivative(x, b, a):
    """$-\\int_{x_0}^{x} 2b/a$ on the grid (cumulative Simpson)."""
    return -integrate.cumulative_simpson(2.0 * b / a, x=x, initial=0.0)


class ScaleDensity(NamedTuple):
    r"""Result of ``scale_function_density`` on the grid ``x``.

    **Attributes:** ``x``; ``log_scale_derivative`` $\log s'$; ``scale_derivative`` $s'$;
    ``scale`` $s$ ($s(x_{ref}) = 0$); ``speed_density`` $m = 1/(a s')$; ``stationary_density``
    ($m/\int m$ on the grid, or ``None`` when not normalisable); ``normalisable``;
    ``tail_exponents`` (local power-law exponents of $m$ at the two ends, in
    ``x - boundary``).
    """

    x: np.ndarray
    log_scale_derivative: np.ndarray
    scale_derivative: np.ndarray
    scale: np.ndarray
    speed_density: np.ndarray
    stationary_density: np.ndarray | None
    normalisable: bool
    tail_exponents: tuple


def scale_function_density(drift, diffusion_sq, x_grid, x_ref=None, *, boundary: float = 0.0) -> ScaleDensity:
    r"""Scale function and speed (stationary) density of the 1-D Itô diffusion
    $dX = b(X)\,dt + \sqrt{a(X)}\,dB$ on $(\mathrm{boundary}, \infty)$:
    $$s'(x) = \exp\Big(-\int_{x_{ref}}^{x}\frac{2b}{a}\Big),\quad s(x) = \int_{x_{ref}}^x s',\quad
      m(x) = \frac{1}{a(x)\,s'(x)},$$
    stationary density $p = m/\int m$ where $m$ is integrable (Karlin & Taylor 1981, ch. 15).
    Near an invariant point at the boundary with $m \sim (x - \mathrm{boundary})^{\beta_0}$ it is
    integrable iff $\beta_0 > -1$; at the top of the grid the tail must decay faster than
    $x^{-1}$. Both exponents are read off the grid ends, so the grid should reach close to the
    boundary (log-spaced) and well into the upper tail. Quartic well:
    $p(\theta) \propto |\theta|^{2\mu/\zeta^2 - 2}e^{-\theta^2/\zeta^2}$, normalisable iff $\zeta^2 < 2\mu$
    (Chen et al. 2023, arXiv:2306.04251; theory note §6).

    **Arguments:** ``drift`` $b$ and ``diffusion_sq`` $a > 0$: vectorised callables or arrays on
    the grid; ``x_grid``: increasing points above ``boundary``; ``x_ref``: where $s = 0$ and
    $s' = 1$ (default the first grid point); ``boundary``: the invariant point (default 0).

    **Returns:** a ``ScaleDensity``.
    """
    x = _check_grid(x_grid)
    if not np.all(x > boundary):
        raise ValueError(f"`x_grid` must lie above `boundary` = {boundary:g}.")
    b = _on_grid("drift", drift, x)
    a = _on_grid("diffusion_sq", diffusion_sq, x)
    if not np.all(a > 0):
        raise ValueError("`diffusion_sq` must be positive on the grid.")
    x_ref = x[0] if x_ref is None else float(x_ref)
    if not x[0] <= x_ref <= x[-1]:
        raise ValueError(f"`x_ref` must lie in the grid [{x[0]:g}, {x[-1]:g}]; got {x_ref:g}.")
    # integrate in u = log(x - boundary): smooth integrands on a log-spaced grid
    u = np.log(x - boundary)
    jac = x - boundary
    log_sp = -_cumulative(2.0 * b / a * jac, u)
    log_sp = log_sp - interpolate.CubicSpline(x, log_sp)(x_ref)
    with np.errstate(over="ignore", invalid="ignore"):
        sp = np.exp(log_sp)
        # integrate outwards from the grid point next to x_ref (no cancellation against the
        # possibly huge values of s near a singular end)
        i = int(np.argmin(np.abs(x - x_ref)))
        f = sp * jac
        left = -_cumulative(f[i::-1], -u[i::-1])[::-1]  # int_{x_i}^{x} s' for x < x_i
        scale = np.concatenate([left, _cumulative(f[i:], u[i:])[1:]])
        if np.all(np.isfinite(scale)):
            scale = scale - interpolate.CubicSpline(x, scale)(x_ref)
    log_m = -np.log(a) - log_sp
    beta_left = float((log_m[1] - log_m[0]) / (u[1] - u[0]))
    beta_right = float((log_m[-1] - log_m[-2]) / (u[-1] - u[-2]))
    normalisable = beta_left > -1 and beta_right < -1
    density = None
    if normalisable:
        unnormalised = np.exp(log_m - log_m.max())
        density = unnormalised / integrate.simpson(unnormalised * jac, x=u)
    return ScaleDensity(x, log_sp, sp, scale, np.exp(log_m), density, bool(normalisable), (beta_left, beta_right))


def hitting_probability(drift, diffusion_sq, x0: float, eps: float, R: float, *, n_grid: int = 4001) -> float:
    r"""$P(X$ reaches $\varepsilon$ before $R \mid X_0 = x_0)$ for the 1-D Itô diffusion
    $dX = b\,dt + \sqrt a\,dB$, $\varepsilon < x_0 < R$:
    $$P = \frac{s(R) - s(x_0)}{s(R) - s(\varepsilon)}$$
    with the scale function $s$ (``scale_function_density``), computed on a grid of ``n_grid``
    points (log-spaced when $\varepsilon > 0$). With $\varepsilon \to 0$ this tends to 1 iff
    $s(0+)$ is finite, i.e. iff the invariant point attracts (theory note §5).

    **Arguments:** ``drift``, ``diffusion_sq`` (vectorised callables), ``x0``, ``eps``, ``R``,
    ``n_grid``.
    """
    if not (callable(drift) and callable(diffusion_sq)):
        raise ValueError("`drift` and `diffusion_sq` must be vectorised callables x -> array.")
    if not float(eps) < float(x0) < float(R):
        raise ValueError(f"need `eps` < `x0` < `R`; got {eps:g}, {x0:g}, {R:g}.")
    n_grid = check_integer("n_grid", n_grid, minimum=5)
    x = np.geomspace(eps, R, n_grid) if eps > 0 else np.linspace(eps, R, n_grid)
    b, a = _on_grid("drift", drift, x), _on_grid("diffusion_sq", diffusion_sq, x)
    if not np.all(a > 0):
        raise ValueError("`diffusion_sq` must be positive on [eps, R].")
    log_sp = _log_scale_derivative(x, b, a)
    sp = np.exp(log_sp - log_sp.max())  # a constant factor cancels in the ratio
    scale = integrate.cumulative_simpson(sp, x=x, initial=0.0)
    s_x0 = float(interpolate.CubicSpline(x, scale)(x0))
    return float((scale[-1] - s_x0) / (scale[-1] - scale[0]))
