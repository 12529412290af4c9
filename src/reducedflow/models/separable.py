r"""Gradient flow of a linear classifier with an exponentially tailed loss on separable data,
and the hard-margin SVM quantities that describe its limit (Soudry et al. 2018).

Fold the labels into the inputs, $z_n = y_n x_n$. For linearly separable data the weights grow
without bound along the max-margin direction,

$$w(t) = \hat w \ln(t/\tau) + \tilde w + o(1), \qquad
\hat w = \arg\min\{\|w\|^2 : z_n^\top w \ge 1\ \forall n\} = \sum_{n\in S} \alpha_n z_n ,$$

where $S$ is the set of support vectors, $\alpha \ge 0$ the SVM dual variables and the offset
$\tilde w$ solves $z_n^\top \tilde w = -\ln \alpha_n$ on $S$. Reference: D. Soudry, E. Hoffer,
M. S. Nacson, S. Gunasekar, N. Srebro, "The implicit bias of gradient descent on separable
data", JMLR 19 (2018), arXiv:1710.10345 (stated there for gradient descent; the gradient-flow
version with the constants used here is derived in ``SeparableLinearFlow``'s docstring).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

from .._checks import as_float_array, check_finite, check_in, check_positive, is_concrete
from .._system import AbstractSystem

#: Loss functions of ``SeparableLinearFlow``, $\ell(u)$ of the signed margin $u = y\,w^\top x$.
LOSSES = ("logistic", "exponential")

# Tolerances of the SVM computations.
_SEPARABILITY_TOL = 1e-7  # margin / max_n |z_n| below this: not separable through the origin
_ACTIVE_TOL = 1e-8  # a point with z_n^T w_hat <= 1 + this is on the margin (scale-free)


# ----------------------------------------------------------------------------------------------
# Argument checks


def _check_data(inputs, labels) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``inputs`` (n, d) and ``labels`` (n,) in {-1, +1}; return them as float64."""
    check_finite("inputs", inputs)
    check_finite("labels", labels)
    x = np.asarray(inputs, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(
            "`inputs` must be a 2-d array of shape (n_points, dimension) with n_points >= 1 and "
            f"dimension >= 1; got shape {x.shape}."
        )
    if y.shape != (x.shape[0],):
        raise ValueError(
            f"`labels` must have shape (n_points,) = ({x.shape[0]},) to match `inputs`; "
            f"got shape {y.shape}."
        )
    if not np.all((y == 1.0) | (y == -1.0)):
        bad = np.unique(y[(y != 1.0) & (y != -1.0)])
        listed = np.array2string(bad, threshold=8)
        raise ValueError(f"`labels` must be +1 or -1; got the values {listed}.")
    return x, y


# ----------------------------------------------------------------------------------------------
# The flow


class SeparableLinearFlow(AbstractSystem):
    r"""Gradient flow of a linear classifier $x \mapsto w^\top x$ (no bias) on $n$ labelled
    points with an exponentially tailed loss:

    $$\tau\,\dot w = -\nabla_w \sum_{n=1}^{N} \ell(z_n^\top w)
                   = \sum_{n=1}^{N} g(z_n^\top w)\, z_n, \qquad z_n = y_n x_n,$$

    with $\ell(u) = \ln(1 + e^{-u})$, $g(u) = 1/(1 + e^{u})$ (``"logistic"``) or
    $\ell(u) = e^{-u}$, $g(u) = e^{-u}$ (``"exponential"``). The loss is the sum over points,
    not the mean (a mean rescales $\tau$ by $n$).

    **Long-time behaviour** (separable data). Inserting $w = \hat w \ln(t/\tau) + \tilde w
    + \delta$ and using $z_n^\top \hat w = 1$ on the support vectors and $\theta_n =
    z_n^\top \hat w > 1$ off them gives, for both losses (they share the tail
    $g(u) = e^{-u} + O(e^{-2u})$),

    $$\hat w = \sum_{n\in S} e^{-z_n^\top \tilde w} z_n
      \;\Longleftrightarrow\; z_n^\top \tilde w = -\ln \alpha_n \ (n \in S),$$

    and, in log time $s = \ln(t/\tau)$, $d\delta/ds = -M\delta + O(e^{-(\theta_{\min}-1)s})
    + O(e^{-s})$ with $M = \sum_{n\in S}\alpha_n z_n z_n^\top$ (the $O(e^{-s})$ term is the
    logistic loss's $e^{-2u}$ correction). Hence, when the support vectors span
    $\mathbb R^d$, $w(t) - \hat w\ln(t/\tau) \to \tilde w$ (``asymptotic_offset``) with an
    error decaying like $(t/\tau)^{-\kappa}$ up to logarithms, $\kappa = \min(\lambda_{\min}(M),
    \theta_{\min} - 1) \le 1$ (``offset_convergence_rate``; $M\hat w = \hat w$, so
    $\lambda_{\min} \le 1$): a non-support point with margin close to 1 makes this convergence
    very slow. Further consequences: $\|w\| = \|\hat w\| \ln t + O(1)$, the direction gap
    $1 - \cos(w, \hat w) = O(1/\ln^2 t)$, and the loss times $t$ tends to
    $\tau \sum_n \alpha_n = \tau \|\hat w\|^2$.

    Long times: ``reducedflow.solve(system, w0, t1, log_time=True)`` integrates in
    $\sigma = \ln(1+t)$, where the rescaled field is O(1) and $t = 10^8$ takes a few hundred
    steps. A plain solve also gets there cheaply, since adaptive steps grow like $t$, but with
    about 1.5 times as many steps on the test data sets.

    Reference: Soudry, Hoffer, Nacson, Gunasekar, Srebro, "The implicit bias of gradient
    descent on separable data", JMLR 19 (2018), arXiv:1710.10345 (the gradient-descent
    version; the continuous-time constants above are derived here and checked numerically in
    ``tests/test_separable.py``).

    **Arguments:**

    - ``inputs``: the points $x_n$, shape ``(n_points, dimension)``, finite.
    - ``labels``: $y_n \in \{-1, +1\}$, shape ``(n_points,)``.
    - ``loss``: ``"logistic"`` (default) or ``"exponential"``.
    - ``tau``: time constant $\tau > 0$ (the inverse learning rate).

    State: $w$, shape ``(dimension,)``. Observables: ``"loss"`` ($\sum_n \ell(z_n^\top w)$),
    ``"norm"`` ($\|w\|$) and ``"margin"`` (the normalised margin $\min_n z_n^\top w / \|w\|$,
    NaN at $w = 0$).
    """

    inputs: jax.Array = eqx.field(converter=as_float_array)
    labels: jax.Array = eqx.field(converter=as_float_array)
    loss: str = eqx.field(default="logistic", static=True)
    tau: jax.Array = eqx.field(default=1.0, converter=as_float_array)

    def __check_init__(self):
        check_in("loss", self.loss, LOSSES)
        if is_concrete((self.inputs, self.labels)):
            _check_data(self.inputs, self.labels)
        check_positive("tau", self.tau)

    # -- the dynamics ------------------------------------------------------------------------

    @property
    def signed_inputs(self) -> jax.Array:
        """$z_n = y_n x_n$, shape ``(n_points, dimension)``."""
        return self.labels[:, None] * self.inputs

    def _loss_derivative(self, u):
        r"""$g(u) = -\ell'(u)$, evaluated stably for any sign of ``u``."""
        if self.loss == "logistic":
            return jax.nn.sigmoid(-u)
        return jnp.exp(-u)

    def vector_field(self, t, y, args):
        z = self.signed_inputs
        return z.T @ self._loss_derivative(z @ y) / self.tau

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.inputs.shape[-1],), jnp.float64)

    def observables(self, t, y):
        u = self.signed_inputs @ y
        if self.loss == "logistic":
            loss = jnp.sum(jax.nn.softplus(-u))
        else:
            loss = jnp.sum(jnp.exp(-u))
        norm = jnp.sqrt(jnp.sum(y**2))
        safe_norm = jnp.where(norm > 0, norm, 1.0)
        margin = jnp.where(norm > 0, jnp.min(u) / safe_norm, jnp.nan)
        return {"loss": loss, "norm": norm, "margin": margin}

    # -- exact and asymptotic solutions ------------------------------------------------------

    def closed_form(self, t, y0):
        r"""The exact solution for one data point ($n = 1$); ``NotImplementedError`` otherwise.

        With $z = y_1 x_1$, $r = \|z\|$ and $u = z^\top w$, the flow moves $w$ along $z$:
        $w(t) = w_0 + (u(t) - u_0)\, z / r^2$, where $\tau \dot u = r^2 g(u)$ gives

        - exponential: $u(t) = \ln(e^{u_0} + r^2 t/\tau)$;
        - logistic: $u + e^u = u_0 + e^{u_0} + r^2 t/\tau =: c$, i.e. $u = \ln\omega(c)$ with
          the Wright omega function $\omega$ ($\omega + \ln\omega = c$), which never
          overflows, unlike the equivalent $\ln W(e^c)$ with the Lambert W function.

        **Arguments:**

        - ``t``: time(s) $\ge 0$, scalar or array.
        - ``y0``: $w_0$, shape ``(dimension,)``.

        **Returns:** $w(t)$, shape ``t.shape + (dimension,)``.
        """
        x, y = _check_data(self.inputs, self.labels)
        if x.shape[0] != 1:
            raise NotImplementedError(
                f"SeparableLinearFlow.closed_form is known only for one data point; this system "
                f"has {x.shape[0]}. Use reducedflow.solve (with log_time=True for long "
                "times) and compare with `asymptote` for the long-time limit."
            )
        self.check_state(y0)
        t = np.asarray(t, dtype=np.float64)
        if np.any(t < 0):
            raise ValueError("`t` must be >= 0 for closed_form.")
        w0 = np.asarray(y0, dtype=np.float64)
        z = y[0] * x[0]
        r2 = float(z @ z)
        if r2 == 0.0:  # x_1 = 0: the gradient vanishes identically
            return np.broadcast_to(w0, t.shape + w0.shape).copy()
        u0 = float(z @ w0)
        growth = r2 * t / float(self.tau)  # r^2 t / tau
        if self.loss == "exponential":
            u = _exponential_margin(u0, growth)
        else:
            u = _logistic_margin(u0, growth)
        # w = (w0 - u0 z/r^2) + u z/r^2: no cancellation between w0 and the increment along z.
        return (w0 - u0 * z / r2) + u[..., None] * (z / r2)

    def max_margin(self):
        """``max_margin(self.inputs, self.labels)``: the SVM direction, dual variables and
        support vectors of this data set."""
        return max_margin(self.inputs, self.labels)

    def asymptotic_offset(self):
        r"""$\tilde w$ of $w(t) = \hat w \ln t + \tilde w + o(1)$ for this data set *and* this
        $\tau$ (``asymptotic_offset(inputs, labels, tau=self.tau)``)."""
        return asymptotic_offset(self.inputs, self.labels, tau=float(self.tau))

    def asymptote(self, t):
        r"""$\hat w \ln t + \tilde w$, the long-time limit of $w(t)$ (both losses), shape
        ``t.shape + (dimension,)``; see ``asymptotic_offset`` for when it applies."""
        w_hat, _, _ = self.max_margin()
        w_tilde = self.asymptotic_offset()
        t = np.asarray(t, dtype=np.float64)
        return np.log(t)[..., None] * w_hat + w_tilde


def _exponential_margin(u0: float, growth: np.ndarray) -> np.ndarray:
    r"""$u(t) = \ln(e^{u_0} + s)$ with $s = r^2 t/\tau$, without overflow for any $u_0$."""
    with np.errstate(divide="ignore"):
        return np.logaddexp(u0, np.log(growth))  # log(0) = -inf at t = 0 gives u0


def _logistic_margin(u0: float, growth: np.ndarray) -> np.ndarray:
    """$u(t)$ solving $u + e^u = u_0 + e^{u_0} + s$."""
    if u0 > 500.0:
        # g(u) = e^{-u}(1 + O(e^{-u})) with e^{-u} < 1e-217: the exponential-loss solution is
        # exact to round-off (and e^{u0} in the constant would overflow).
        return _exponential_margin(u0, growth)
    c = u0 + np.exp(u0) + growth
    omega = scipy.special.wrightomega(c)  # omega = e^u, omega + ln(omega) = c
    # ln(omega) is accurate to round-off in u; for very negative c, where omega is subnormal,
    # use the equivalent c - omega.
    with np.errstate(divide="ignore"):
        return np.where(c > -600.0, np.log(omega), c - omega)


# ----------------------------------------------------------------------------------------------
# Hard-margin SVM through the origin


def max_margin(inputs, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""The hard-margin SVM through the origin and its dual variables:

    $$\hat w = \arg\min_w \|w\|^2 \ \text{s.t.}\ y_n w^\top x_n \ge 1 \ \forall n,
      \qquad \hat w = \sum_n \alpha_n y_n x_n,\ \alpha \ge 0,$$

    $\alpha$ maximising the dual $\sum_n \alpha_n - \tfrac12\|\sum_n \alpha_n z_n\|^2$.

    Computed as a least-distance problem (Lawson & Hanson, *Solving Least Squares Problems*,
    1974, ch. 23): the non-negative least-squares problem
    $\min_{u \ge 0} \|Z^\top u\|^2 + (\mathbf 1^\top u - 1)^2$ has residual
    $\rho = 1 - \mathbf 1^\top u$, and $\hat w = Z^\top u / \rho$, $\alpha = u/\rho$;
    $\rho = 0$ means some convex combination of the $z_n$ vanishes, i.e. no separating
    hyperplane through the origin. The support set from NNLS is then polished by solving the
    KKT equations $Z_S Z_S^\top \alpha_S = \mathbf 1$ when the support vectors are linearly
    independent. When they are not (e.g. more than ``dimension`` points on the margin),
    $\hat w$ is still unique but $\alpha$ is not; one valid $\alpha$ is returned.

    **Arguments:**

    - ``inputs``: points, shape ``(n_points, dimension)``.
    - ``labels``: $\pm 1$, shape ``(n_points,)``.

    **Returns:** ``(w_hat, alpha, support)``: $\hat w$ (shape ``(dimension,)``), $\alpha$
    (shape ``(n_points,)``, zero off the support) and the sorted indices of the support
    vectors ($\alpha_n > 0$). The margin is $1/\|\hat w\|$.

    Raises ``ValueError`` if the data are not linearly separable through the origin (or are
    separable only with a normalised margin below ``1e-7`` of $\max_n\|x_n\|$).
    """
    x, y = _check_data(inputs, labels)
    z = y[:, None] * x
    scale = float(np.max(np.linalg.norm(z, axis=1)))
    if scale == 0.0:
        raise ValueError(
            "`inputs` are all zero, so they are not linearly separable through the origin."
        )
    zs = z / scale  # max_n |z_n| = 1: the margin of zs lies in (0, 1]
    n, d = zs.shape
    design = np.vstack([zs.T, np.ones((1, n))])
    target = np.zeros(d + 1)
    target[-1] = 1.0
    u, _ = scipy.optimize.nnls(design, target, maxiter=50 * (n + d + 1))
    rho = 1.0 - float(np.sum(u))
    w_scaled = zs.T @ u / rho if rho > 0 else np.full(d, np.inf)
    margin = 1.0 / float(np.linalg.norm(w_scaled)) if rho > 0 else 0.0
    if not margin > _SEPARABILITY_TOL:
        raise ValueError(
            "`inputs`, `labels`: the data are not linearly separable through the origin (no "
            f"w with y_n w.x_n > 0 for all n; the best normalised margin found is {margin:.3g}). "
            "The SVM direction, and the limit of the gradient flow, do not exist."
        )
    alpha_scaled = u / rho
    support = np.flatnonzero(alpha_scaled > 0)
    alpha_scaled, w_scaled = _polish_support(zs, support, alpha_scaled, w_scaled)
    # Undo the scaling: z = scale * zs, so w_hat = w_scaled / scale and alpha = alpha_s / scale^2.
    return w_scaled / scale, alpha_scaled / scale**2, support


def _polish_support(zs, support, alpha, w):
    """Re-solve the KKT equations on ``support`` exactly; keep the NNLS values if that fails."""
    z_s = zs[support]
    if support.size == 0 or np.linalg.matrix_rank(z_s) < support.size:
        return alpha, w
    try:
        alpha_s = scipy.linalg.solve(z_s @ z_s.T, np.ones(support.size), assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        return alpha, w
    w_new = z_s.T @ alpha_s
    if np.any(alpha_s <= 0) or np.min(zs @ w_new) < 1.0 - 1e-9:
        return alpha, w
    alpha_new = np.zeros_like(alpha)
    alpha_new[support] = alpha_s
    return alpha_new, w_new


def asymptotic_offset(inputs, labels, *, tau=1.0) -> np.ndarray:
    r"""The offset $\tilde w$ in $w(t) = \hat w \ln t + \tilde w + o(1)$ for the gradient flow
    of ``SeparableLinearFlow`` (logistic or exponential loss: the same $\tilde w$).

    With $\tau = 1$, $\tilde w$ solves $z_n^\top \tilde w = -\ln\alpha_n$ on the support
    vectors ($z_n = y_n x_n$, $\alpha$ from ``max_margin``). For general $\tau$, $w(t)$ is the
    $\tau = 1$ solution at time $t/\tau$, so $z_n^\top \tilde w = -\ln(\tau\alpha_n)$, i.e.
    $\tilde w_\tau = \tilde w_1 - \hat w \ln\tau$.

    More generally (also when the support vectors are linearly dependent and $\alpha$ is not
    unique) $\tilde w$ is defined by $\tau \hat w = \sum_{n \in A} e^{-z_n^\top\tilde w} z_n$
    over the points $A$ on the margin ($z_n^\top \hat w = 1$): the stationarity condition of
    the strictly convex $F(v) = \tau \hat w^\top v + \sum_{n\in A} e^{-z_n^\top v}$ on the span
    of $\{z_n\}_{n\in A}$, which is minimised here by Newton's method started from the linear
    solution. The flow thereby selects the dual variables $\alpha_n = e^{-z_n^\top\tilde w}/\tau$.

    **The support vectors must span** $\mathbb R^d$ for $\tilde w$ to be the full limit of
    $w(t) - \hat w\ln t$. Otherwise only its projection onto their span is determined by the
    equations above; the returned $\tilde w$ is then the *least-norm* solution (it lies in
    that span), the projection $P_S(w(t) - \hat w \ln t)$ converges to it, and the orthogonal
    remainder depends on the initial condition and on the non-support points.

    The convergence is like $(t/\tau)^{-\kappa}$ with $\kappa$ given in
    ``SeparableLinearFlow``: slow when a non-support point has margin close to 1.

    **Arguments:**

    - ``inputs``, ``labels``: the data, as in ``max_margin`` (linearly separable through the
      origin).
    - ``tau``: the time constant of the flow ($> 0$).

    **Returns:** $\tilde w$, shape ``(dimension,)``.
    """
    check_positive("tau", tau)
    x, y = _check_data(inputs, labels)
    return _offset_on_margin(x, y, float(tau))["offset"]


def offset_convergence_rate(inputs, labels) -> float:
    r"""The exponent $\kappa$ in $|w(t) - \hat w \ln(t/	au) - 	ilde w| \sim (t/	au)^{-\kappa}$
    (up to logarithmic factors; for the projection onto the span of the support vectors when
    they do not span $\mathbb R^d$):

    $$\kappa = \min\Bigl(\lambda_{\min}igl(M|_{\mathrm{span}\,S}igr),\ 	heta_{\min} - 1\Bigr),
      \qquad M = \sum_{n \in S} lpha_n z_n z_n^	op ,$$

    where $	heta_{\min}$ is the smallest margin $z_n^	op \hat w$ of a non-support point
    (no such term when every point is on the margin) and $lpha_n = e^{-z_n^	op	ilde w}$
    are the dual variables selected by the flow. Derivation: in $s = \ln(t/	au)$ the
    deviation $\delta = w - \hat w s - 	ilde w$ obeys $d\delta/ds = -M\delta +
    O(e^{-(	heta_{\min}-1)s}) + O(e^{-s})$. Since $M\hat w = \hat w$, $\lambda_{\min} \le 1$.
    Both losses share $\kappa$.

    **Arguments:** ``inputs``, ``labels`` as in ``max_margin``.

    **Returns:** $\kappa$, a float in $(0, 1]$. Values near 0 (a non-support point just above
    the margin, or support vectors close to linearly dependent) mean that $w(t) - \hat w\ln t$
    settles only at astronomically large $t$.
    """
    x, y = _check_data(inputs, labels)
    info = _offset_on_margin(x, y, 1.0)
    z = y[:, None] * x
    z_a, basis = z[info["active"]], info["basis"]
    curvature = (z_a * info["alpha"][:, None]).T @ z_a
    rate = float(np.min(np.linalg.eigvalsh(basis.T @ curvature @ basis)))
    others = np.setdiff1d(np.arange(z.shape[0]), info["active"])
    if others.size:
        rate = min(rate, float(np.min(z[others] @ info["w_hat"])) - 1.0)
    return rate


def _offset_on_margin(x, y, tau):
    """Solve tau w_hat = sum_{n in A} exp(-z_n.v) z_n for v in span{z_n : n in A}, A the points
    on the margin. Returns w_hat, the offset v, A, alpha_n = exp(-z_n.v)/tau on A and an
    orthonormal basis of span(A)."""
    w_hat, alpha, support = max_margin(x, y)
    z = y[:, None] * x
    active = np.union1d(np.flatnonzero(z @ w_hat <= 1.0 + _ACTIVE_TOL), support)
    z_a = z[active]
    _, sing, vt = np.linalg.svd(z_a, full_matrices=False)
    rank = int(np.sum(sing > sing[0] * 1e-12))
    basis = vt[:rank].T  # (d, rank)
    # Start from the linear (least-norm) solution of z_n.v = -ln(tau alpha_n): exact when the
    # margin points are linearly independent, so Newton then has nothing left to do.
    with np.errstate(divide="ignore"):
        target = -np.log(tau * alpha[active])
    if np.all(np.isfinite(target)):
        start = np.linalg.lstsq(z_a @ basis, target, rcond=None)[0]
    else:
        start = np.zeros(rank)
    coeffs = _minimise_offset_potential(z_a @ basis, tau * (basis.T @ w_hat), start)
    weights = np.exp(-(z_a @ basis @ coeffs))
    if np.min(weights) < 1e-10 * np.max(weights) or not np.allclose(
        z_a.T @ weights, tau * w_hat, rtol=1e-8, atol=1e-8 * tau * np.linalg.norm(w_hat)
    ):
        faint = active[weights < 1e-10 * np.max(weights)]
        raise ValueError(
            "`inputs`, `labels`: degenerate data set: the point(s) with index "
            f"{faint.tolist()} lie on the margin but carry no dual weight, so the offset "
            "equations have no solution and w(t) - w_hat ln t drifts without bound (slowly)."
        )
    return {
        "w_hat": w_hat, "offset": basis @ coeffs, "active": active, "alpha": weights / tau,
        "basis": basis,
    }


def _minimise_offset_potential(za, b, c, iterations=100):
    """Damped Newton for min_c b.c + sum_n exp(-za_n.c): strictly convex, and coercive unless
    the data set is degenerate (then the caller detects the runaway)."""

    def value(c):
        return float(b @ c + np.sum(np.exp(-(za @ c))))

    tol = 1e-13 * max(1.0, float(np.linalg.norm(b)))
    f = value(c)
    for _ in range(iterations):
        e = np.exp(-(za @ c))
        grad = b - za.T @ e
        if np.linalg.norm(grad) <= tol:
            return c
        hess = (za * e[:, None]).T @ za
        step = np.linalg.solve(hess, grad)
        length = 1.0
        while length > 1e-12:
            trial = c - length * step
            f_trial = value(trial)
            if f_trial <= f - 1e-4 * length * float(grad @ step) or f_trial <= f:
                break
            length *= 0.5
        c, f = trial, f_trial
    return c
