"""The abstract reduced system that every family implements and `solve` integrates."""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jaxtyping import PyTree

from ._checks import check_finite, is_concrete

#: ``solve`` picks an implicit solver when ``system.timescale_ratio()`` is at least this.
STIFF_THRESHOLD = 10.0


class AbstractSystem(eqx.Module):
    r"""A reduced learning-dynamics system $\dot y = f(t, y)$ on a few order parameters.

    Subclasses are equinox Modules: their parameters are fields (stored as float64 arrays, so
    changing a value never recompiles a solve, and a batch of systems built with
    ``eqx.filter_vmap`` is a parameter sweep). Following equinox's abstract/final pattern, a
    concrete system is final and overrides:

    - ``vector_field(t, y, args)`` (required): the right-hand side $f(t, y)$;
    - ``state_shapes()``: the state layout, a PyTree of ``jax.ShapeDtypeStruct`` (dicts with
      named parts are encouraged: ``{"first_layer": ..., "second_layer": ...}``). ``solve``
      checks ``y0`` against it;
    - ``observables(t, y)``: named scalar/array quantities (risk, mode strengths, ...) saved
      with the trajectory;
    - ``closed_form(t, y0)``: the exact solution where one is known;
    - ``timescale_ratio()``: the declaration of stiffness, the ratio of the fastest to the
      slowest time scale (e.g. ``1/epsilon`` for a layer that learns ``1/epsilon`` faster).
      ``solve`` uses an implicit solver (Kvaerno5 with a tuned PID controller) when it is
      at least ``STIFF_THRESHOLD``.
    """

    @abc.abstractmethod
    def vector_field(self, t, y: PyTree, args: Any) -> PyTree:
        """The time derivative $\\dot y = f(t, y)$, a PyTree with the structure of ``y``."""

    def state_shapes(self) -> PyTree[jax.ShapeDtypeStruct] | None:
        """The expected structure and shapes of the state, or ``None`` if not fixed."""
        return None

    def observables(self, t, y: PyTree) -> dict[str, jax.Array]:
        """Named quantities computed from the state at each saved time."""
        return {}

    def closed_form(self, t, y0: PyTree) -> PyTree:
        """The exact solution $y(t)$ from $y(0) = y_0$; only some systems have one."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form solution.")

    def timescale_ratio(self) -> float:
        """Ratio of the fastest to the slowest time scale (1 for non-stiff systems)."""
        return 1.0

    def fast_components(self) -> PyTree[bool] | None:
        r"""Which state components are fast, for singularly perturbed systems
        $\dot x = f(x, z)$, $\varepsilon\dot z = g(x, z)$: a PyTree with the structure of the
        state whose leaves are booleans, or boolean arrays of the leaf's shape, ``True``
        marking a fast component $z$ (e.g. ``{"slow": False, "fast": True}``). The slow
        manifold tools (``reducedflow.analysis.critical_manifold``, ``reduced_slow_flow``)
        solve the fast equations $g(x, z) = 0$ for these components. ``None`` (the default):
        the system declares no fast/slow split."""
        return None

    def particle_jacobian(self, t, y: PyTree, args: Any):
        r"""The Jacobian $\partial f/\partial y$ as a ``reducedflow.ParticleJacobian``
        (block-diagonal per particle plus low rank), for particle systems whose state leaves all
        have shape ``(m,)``. Systems that override it get Newton solves by the Woodbury
        identity in ``solve``'s implicit solver (``reducedflow.StructuredChord``): $O(m)$
        instead of $O(m^3)$ per step. Not overridden: dense Jacobians."""
        raise NotImplementedError(f"{type(self).__name__} does not provide a structured Jacobian.")

    def check_state(self, y0: PyTree, name: str = "y0") -> None:
        """Raise ``ValueError`` if ``y0`` does not match ``state_shapes()`` or is not finite."""
        check_finite(name, y0)
        expected = self.state_shapes()
        if expected is None:
            return
        exp_struct = jax.tree_util.tree_structure(expected)
        got_struct = jax.tree_util.tree_structure(y0)
        if exp_struct != got_struct:
            raise ValueError(
                f"`{name}` must have the structure {exp_struct} for {type(self).__name__}; "
                f"got {got_struct}."
            )
        for (path, want), got in zip(
            jax.tree_util.tree_flatten_with_path(expected)[0], jax.tree_util.tree_leaves(y0)
        ):
            if tuple(want.shape) != tuple(np.shape(got)):
                raise ValueError(
                    f"`{name}{jax.tree_util.keystr(path)}` must have shape {tuple(want.shape)} "
                    f"for {type(self).__name__}; got {tuple(np.shape(got))}."
                )


def is_stiff(system: AbstractSystem) -> bool:
    """Whether ``solve`` treats ``system`` as stiff (for a batch: any member)."""
    ratio = system.timescale_ratio()
    if not is_concrete(ratio):
        raise ValueError(
            f"`system`: {type(system).__name__}.timescale_ratio() depends on traced values, so the "
            "solver cannot be chosen automatically under jit/grad/vmap; pass `solver` explicitly "
            "(e.g. diffrax.Kvaerno5(root_finder=reducedflow.stiff_root_finder(rtol)) or diffrax.Tsit5())."
        )
    return float(np.max(np.asarray(ratio))) >= STIFF_THRESHOLD
