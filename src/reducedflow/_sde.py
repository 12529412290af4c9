"""Itô stochastic differential equations: the abstract SDE system and its noise layout."""

from __future__ import annotations

import abc
from typing import Any

import diffrax as dfx
import jax
import jax.numpy as jnp

from ._system import AbstractSystem

#: The accepted noise layouts (``AbstractSDESystem.noise_type``).
NOISE_TYPES = ("general", "diagonal", "scalar")

#: diffrax solvers whose limit is the Itô integral (the only ones correct for collapse noise
#: as written); see diffrax's SDE solver table.
ITO_SOLVERS = (dfx.Euler, dfx.ItoMilstein)

#: diffrax solvers that converge to the Stratonovich integral; ``solve`` adds the Itô-to-
#: Stratonovich drift correction for them.
STRATONOVICH_SOLVERS = tuple(
    getattr(dfx, name)
    for name in ("Heun", "EulerHeun", "Midpoint", "Ralston", "ReversibleHeun", "StratonovichMilstein",
                 "SPaRK", "GeneralShARK", "SlowRK")
    if hasattr(dfx, name)
)


class AbstractSDESystem(AbstractSystem):
    r"""An Itô SDE $dy = f(t, y)\,dt + G(t, y)\,dB_t$ on a flat state $y \in \mathbb{R}^n$,
    $B$ a standard Brownian motion in $\mathbb{R}^k$.

    Always read in the **Itô** sense: stochastic collapse (Chen et al. 2023, arXiv:2306.04251)
    is an Itô effect, the $-\tfrac12 G^2$ term that makes multiplicative noise attract. ``solve``
    refuses nothing but corrects: with a Stratonovich-converging diffrax solver it integrates
    the drift $f - \tfrac12\sum_j (\partial_y g_j)\, g_j$ (columns $g_j$ of $G$), which has the
    same Itô solution.

    A concrete system overrides ``vector_field`` (the drift $f$), ``diffusion`` and
    ``state_shapes`` (a single ``jax.ShapeDtypeStruct`` of shape ``(n,)``), and sets
    ``noise_type()``:

    - ``"general"``: ``diffusion`` returns the ``(n, k)`` matrix $G$ (``noise_dimension()``
      gives $k$);
    - ``"diagonal"``: ``diffusion`` returns the ``(n,)`` vector $g$, $dy_i = f_i\,dt + g_i\,dB_i$
      ($k = n$);
    - ``"scalar"``: ``diffusion`` returns the ``(n,)`` vector $g$, $dy = f\,dt + g\,dB$ with one
      Brownian motion ($k = 1$).
    """

    @abc.abstractmethod
    def diffusion(self, t, y: jax.Array, args: Any) -> jax.Array:
        """The diffusion in the layout of ``noise_type()``."""

    def noise_type(self) -> str:
        """``"general"`` (default), ``"diagonal"`` or ``"scalar"``."""
        return "general"

    def state_size(self) -> int:
        """The dimension $n$ of the (flat) state."""
        shapes = self.state_shapes()
        if not isinstance(shapes, jax.ShapeDtypeStruct) or len(shapes.shape) != 1:
            raise ValueError(
                f"{type(self).__name__}.state_shapes() must be one jax.ShapeDtypeStruct of shape (n,) "
                f"for an SDE system; got {shapes!r}."
            )
        return int(shapes.shape[0])

    def noise_dimension(self) -> int:
        """The number $k$ of independent Brownian motions."""
        kind = self.noise_type()
        if kind == "scalar":
            return 1
        n = self.state_size()
        if kind == "diagonal":
            return n
        out = jax.eval_shape(lambda y: self.diffusion(0.0, y, None), jax.ShapeDtypeStruct((n,), jnp.float64))
        if len(out.shape) != 2 or out.shape[0] != n:
            raise ValueError(
                f"{type(self).__name__}.diffusion must return an (n, k) = ({n}, k) matrix for "
                f"noise_type 'general'; it returns shape {out.shape}."
            )
        return int(out.shape[1])

    def diffusion_matrix(self, t, y, args=None) -> jax.Array:
        """$G(t, y)$ as an ``(n, k)`` matrix whatever the noise type."""
        g = self.diffusion(t, y, args)
        kind = self.noise_type()
        if kind == "diagonal":
            return jnp.diag(g)
        if kind == "scalar":
            return g[:, None]
        return g

    def noise_increment(self, t, y, args, dw) -> jax.Array:
        """$G(t, y)\\,dW$ for a Brownian increment ``dw`` of shape ``(k,)``, without forming a
        dense matrix for diagonal or scalar noise."""
        g = self.diffusion(t, y, args)
        kind = self.noise_type()
        if kind == "diagonal":
            return g * dw
        if kind == "scalar":
            return g * dw[0]
        return g @ dw

    def diffusion_covariance(self, t, y, args=None) -> jax.Array:
        """$G G^\\top$, the instantaneous covariance of the noise (``2 D`` in physics units)."""
        g = self.diffusion_matrix(t, y, args)
        return g @ g.T

    def stratonovich_correction(self, t, y, args=None) -> jax.Array:
        r"""$\tfrac12\sum_j (\partial_y g_j)\, g_j$: add it to the drift to turn this Itô SDE into
        the Stratonovich SDE with the same solution (subtract it for the converse)."""
        g = self.diffusion_matrix(t, y, args)
        jac = jax.jacfwd(lambda z: self.diffusion_matrix(t, z, args))(y)  # (n, k, n)
        return 0.5 * jnp.einsum("ikj,jk->i", jac, g)


class ItoDriftForStratonovich(AbstractSystem):
    r"""The drift $f - \tfrac12\sum_j(\partial_y g_j) g_j$ that a Stratonovich solver needs to
    produce the Itô solution of ``sde``."""

    sde: AbstractSDESystem

    def vector_field(self, t, y, args):
        return self.sde.vector_field(t, y, args) - self.sde.stratonovich_correction(t, y, args)

    def state_shapes(self):
        return self.sde.state_shapes()


def check_sde_solver(solver) -> str:
    """``"ito"`` or ``"stratonovich"`` for a diffrax SDE solver; ``ValueError`` otherwise."""
    if isinstance(solver, ITO_SOLVERS):
        return "ito"
    if isinstance(solver, STRATONOVICH_SOLVERS):
        return "stratonovich"
    accepted = [c.__name__ for c in ITO_SOLVERS + STRATONOVICH_SOLVERS]
    raise ValueError(
        f"`solver` must be a diffrax SDE solver among {accepted} (Itô: Euler, ItoMilstein; the "
        f"others converge to Stratonovich and get the drift correction); got {solver!r}. Additive-"
        "noise solvers (ShARK, SRA1, SEA) do not apply to multiplicative noise."
    )
