r"""Toy SDEs of stochastic collapse (Chen, Kunin, Yamamura, Ganguli 2023, "Stochastic Collapse:
How Gradient Noise Attracts SGD Dynamics Towards Simpler Subnetworks", arXiv:2306.04251).

All are Itô SDEs (``AbstractSDESystem``). The formulas follow ``shared/theory/stochastic_collapse.md``:
the body of the paper was not read; the quartic-well threshold and the models are taken from
the authors' code and re-derived by Itô calculus, and are tested against simulation here.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import as_float_array, check_integer, check_positive
from .._sde import AbstractSDESystem


class GeometricBrownianMotion(AbstractSDESystem):
    r"""$dX = a X\,dt + b X\,dB$ (Itô), componentwise with independent noise (diagonal).

    $X_t = X_0 \exp((a - b^2/2) t + b B_t)$: the almost-sure growth rate (Lyapunov exponent) is
    $a - b^2/2$, while $\log E X^2$ grows at $2a + b^2$. Read as Stratonovich the exponent
    would be $a$: the witness that the Itô interpretation is honoured.

    **Arguments:** ``growth`` $a$ (any real), ``volatility`` $b$ (>= 0), ``dimension`` $n$.
    """

    growth: jax.Array
    volatility: jax.Array
    dimension: int

    def __init__(self, growth, volatility, dimension: int = 1):
        self.growth = as_float_array(growth)
        check_positive("volatility", volatility, allow_zero=True)
        self.volatility = as_float_array(volatility)
        self.dimension = check_integer("dimension", dimension)

    def vector_field(self, t, y, args):
        return self.growth * y

    def diffusion(self, t, y, args):
        return self.volatility * y

    def noise_type(self):
        return "diagonal"

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.dimension,), jnp.float64)

    def lyapunov_exponent(self):
        """The almost-sure exponent $a - b^2/2$."""
        return self.growth - 0.5 * self.volatility**2


class QuarticWell(AbstractSDESystem):
    r"""The quartic well with multiplicative noise,
    $d\theta = -(\theta^3 - \mu\theta)\,dt + \zeta\theta\,dB$ (Itô), loss
    $L = \theta^4/4 - \mu\theta^2/2$: the origin is a local maximum, the minima are $\pm\sqrt\mu$.

    The exponent at the invariant point 0 is $\mu - \zeta^2/2$: paths collapse to 0 iff
    $\zeta > \zeta_c = \sqrt{2\mu}$. Below threshold the stationary law is
    $\theta^2 \sim \mathrm{Gamma}(\mu/\zeta^2 - \tfrac12, \text{scale } \zeta^2)$, so
    $E\theta^2 = \mu - \zeta^2/2$ and $E\theta^4 = \mu^2 - \zeta^4/4$.

    **Arguments:** ``mu`` $\mu > 0$, ``noise`` $\zeta \ge 0$.
    """

    mu: jax.Array
    noise: jax.Array

    def __init__(self, mu, noise):
        check_positive("mu", mu)
        check_positive("noise", noise, allow_zero=True)
        self.mu = as_float_array(mu)
        self.noise = as_float_array(noise)

    def vector_field(self, t, y, args):
        return -(y**3 - self.mu * y)

    def diffusion(self, t, y, args):
        return self.noise * y

    def noise_type(self):
        return "scalar"

    def state_shapes(self):
        return jax.ShapeDtypeStruct((1,), jnp.float64)

    def observables(self, t, y):
        return {"loss": y[0] ** 4 / 4 - self.mu * y[0] ** 2 / 2}

    def threshold(self):
        r"""$\zeta_c = \sqrt{2\mu}$."""
        return jnp.sqrt(2 * self.mu)

    def lyapunov_exponent(self):
        r"""Exponent of the linearisation at 0: $\mu - \zeta^2/2$."""
        return self.mu - 0.5 * self.noise**2

    def stationary_moments(self):
        r"""$(E\theta^2, E\theta^4) = (\mu - \zeta^2/2, \mu^2 - \zeta^4/4)$ below threshold."""
        if not float(self.noise) ** 2 < 2 * float(self.mu):
            raise ValueError(
                f"`noise` must be below the threshold sqrt(2 mu) = {float(self.threshold()):g} for a "
                f"stationary law away from 0; got {float(self.noise):g}."
            )
        return self.mu - self.noise**2 / 2, self.mu**2 - self.noise**4 / 4


class IsotropicMultiplicativeNoise(AbstractSDESystem):
    r"""Linear dynamics with isotropic multiplicative noise in $k$ normal dimensions,
    $dx_i = -a x_i\,dt + b\sum_j x_j\,dB_{ij}$ ($k^2$ independent Brownian motions), so the
    noise covariance is $b^2\|x\|^2 I_k$.

    $\log\|x\|$ is a drifted Brownian motion with rate $\lambda = -a + (k - 2) b^2/2$: noise
    attracts for $k = 1$, is neutral for $k = 2$ and repels for $k \ge 3$.

    **Arguments:** ``decay`` $a$, ``noise`` $b \ge 0$, ``dimension`` $k$.
    """

    decay: jax.Array
    noise: jax.Array
    dimension: int

    def __init__(self, decay, noise, dimension: int):
        self.decay = as_float_array(decay)
        check_positive("noise", noise, allow_zero=True)
        self.noise = as_float_array(noise)
        self.dimension = check_integer("dimension", dimension)

    def vector_field(self, t, y, args):
        return -self.decay * y

    def diffusion(self, t, y, args):
        k = self.dimension
        # column (i, j) drives component i with strength b x_j
        return self.noise * jnp.kron(jnp.eye(k), y[None, :])

    def state_shapes(self):
        return jax.ShapeDtypeStruct((self.dimension,), jnp.float64)

    def lyapunov_exponent(self):
        r"""$-a + (k - 2) b^2 / 2$."""
        return -self.decay + (self.dimension - 2) * self.noise**2 / 2


class TanhNeuron(AbstractSDESystem):
    r"""A single neuron $f(x; w) = w_2 \tanh(w_1 x)$ on scalar data $(x_j, y_j)_{j \le m}$ with
    label-noise SGD noise (the authors' Fig. 2 model):
    $dw = -\nabla L\,dt + \sqrt\eta\,\zeta\,m^{-1/2}\sum_j \nabla_w f(x_j; w)\,dB_j$,
    $L = \frac{1}{2m}\sum_j (f(x_j) - y_j)^2$, $m$ independent Brownian motions (Itô).

    The origin is a saddle of $L$ and an invariant point; it attracts iff
    $\eta\zeta^2\sigma'(0)/2 > |\sum_j x_j y_j| / \sum_j x_j^2$ ($\sigma'(0) = 1$), i.e.
    $\eta > \eta_c = 2|\sum x y| / (\zeta^2 \sum x^2)$: in $u = w_1 + w_2$, $v = w_1 - w_2$ the
    linearisation is two geometric Brownian motions with exponents
    $\pm\bar c - \tfrac12\eta\zeta^2\bar s^2$, $\bar c = \frac1m\sum x_j y_j$,
    $\bar s^2 = \frac1m\sum x_j^2$ (theory note §7, derived; "Theorem 5.1" of the paper by the
    authors' plot legend).

    **Arguments:** ``x``, ``y`` (data, shape ``(m,)``), ``learning_rate`` $\eta \ge 0$,
    ``label_noise`` $\zeta \ge 0$.
    """

    x: jax.Array
    y: jax.Array
    learning_rate: jax.Array
    label_noise: jax.Array

    def __init__(self, x, y, learning_rate, label_noise=1.0):
        x, y = as_float_array(x), as_float_array(y)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise ValueError(f"`x` and `y` must be non-empty 1-D arrays of equal length; got shapes {x.shape}, {y.shape}.")
        check_positive("learning_rate", learning_rate, allow_zero=True)
        check_positive("label_noise", label_noise, allow_zero=True)
        self.x, self.y = x, y
        self.learning_rate = as_float_array(learning_rate)
        self.label_noise = as_float_array(label_noise)

    def predictions(self, w):
        return w[1] * jnp.tanh(w[0] * self.x)

    def loss(self, w):
        return 0.5 * jnp.mean((self.predictions(w) - self.y) ** 2)

    def vector_field(self, t, w, args):
        return -jax.grad(self.loss)(w)

    def diffusion(self, t, w, args):
        grads = jax.jacfwd(self.predictions)(w)  # (m, 2): row j is grad_w f(x_j; w)
        return jnp.sqrt(self.learning_rate / self.x.size) * self.label_noise * grads.T

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2,), jnp.float64)

    def observables(self, t, w):
        return {"loss": self.loss(w), "norm": jnp.linalg.norm(w)}

    def critical_learning_rate(self):
        r"""$\eta_c = 2|\sum x_j y_j| / (\zeta^2 \sum x_j^2)$."""
        return 2 * jnp.abs(jnp.sum(self.x * self.y)) / (self.label_noise**2 * jnp.sum(self.x**2))

    def lyapunov_exponent(self):
        r"""Top exponent of the linearisation at 0: $|\bar c| - \tfrac12\eta\zeta^2\bar s^2$."""
        c, s2 = jnp.mean(self.x * self.y), jnp.mean(self.x**2)
        return jnp.abs(c) - 0.5 * self.learning_rate * self.label_noise**2 * s2


class LabelNoiseModes(AbstractSDESystem):
    r"""Aligned modes of a two-layer linear teacher–student model under label-noise SGD
    (theory note §11): for each mode $i$ with target singular value $s_i$,
    $du = -(uv - s)\,v\,dt + \sqrt\eta\,\sigma\,v\,dB$, $dv = -(uv - s)\,u\,dt + \sqrt\eta\,\sigma\,u\,dB$
    (Itô, one Brownian motion per mode), the SDE whose Euler–Maruyama map with step $\eta$ is the
    discrete update $r = uv - s + \sigma\xi$, $u \leftarrow u - \eta r v$, $v \leftarrow v - \eta r u$.

    Derived consequences (tested): $u^2 - v^2 = (u_0^2 - v_0^2) e^{-\eta\sigma^2 t}$ on every path;
    mode $i$ collapses ($uv \to 0$) iff $s_i < \eta\sigma^2/2$; otherwise $\hat s = uv$ is
    stationary Gamma with mean $s - \eta\sigma^2/2$ and variance $(s - \eta\sigma^2/2)\eta\sigma^2$:
    noise soft-thresholds the spectrum.

    State: ``[u_1..u_k, v_1..v_k]``. **Arguments:** ``singular_values`` $s$ (k,),
    ``learning_rate`` $\eta \ge 0$, ``label_noise`` $\sigma \ge 0$.
    """

    singular_values: jax.Array
    learning_rate: jax.Array
    label_noise: jax.Array

    def __init__(self, singular_values, learning_rate, label_noise):
        s = as_float_array(singular_values)
        if s.ndim != 1 or s.size == 0:
            raise ValueError(f"`singular_values` must be a non-empty 1-D array; got shape {s.shape}.")
        check_positive("learning_rate", learning_rate, allow_zero=True)
        check_positive("label_noise", label_noise, allow_zero=True)
        self.singular_values = s
        self.learning_rate = as_float_array(learning_rate)
        self.label_noise = as_float_array(label_noise)

    def _split(self, y):
        k = self.singular_values.size
        return y[:k], y[k:]

    def vector_field(self, t, y, args):
        u, v = self._split(y)
        r = u * v - self.singular_values
        return jnp.concatenate([-r * v, -r * u])

    def diffusion(self, t, y, args):
        u, v = self._split(y)
        scale = jnp.sqrt(self.learning_rate) * self.label_noise
        return scale * jnp.concatenate([jnp.diag(v), jnp.diag(u)], axis=0)  # (2k, k)

    def state_shapes(self):
        return jax.ShapeDtypeStruct((2 * self.singular_values.size,), jnp.float64)

    def observables(self, t, y):
        u, v = self._split(y)
        return {"mode_strength": u * v, "imbalance": u**2 - v**2}

    def collapse_threshold(self):
        r"""$\eta\sigma^2/2$: modes with $s_i$ below it collapse."""
        return self.learning_rate * self.label_noise**2 / 2

    def stationary_mean(self):
        r"""$E\hat s = \max(s - \eta\sigma^2/2, 0)$ (soft-thresholding)."""
        return jnp.maximum(self.singular_values - self.collapse_threshold(), 0.0)

    def stationary_variance(self):
        r"""$\mathrm{Var}\,\hat s = (s - \eta\sigma^2/2)\,\eta\sigma^2$ above threshold, else 0."""
        return self.stationary_mean() * self.learning_rate * self.label_noise**2

    def discrete_step(self, y, xi):
        """The exact label-noise SGD map with step ``learning_rate`` and noise ``xi`` ~ N(0, 1)^k."""
        u, v = self._split(y)
        r = u * v - self.singular_values + self.label_noise * xi
        eta = self.learning_rate
        return jnp.concatenate([u - eta * r * v, v - eta * r * u])
