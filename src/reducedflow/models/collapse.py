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
