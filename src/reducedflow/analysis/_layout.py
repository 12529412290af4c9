"""The state of a system as one flat vector, with a name per coordinate.

Every analysis (Jacobians, Newton, tangent flows, portraits) works on $\\mathbb R^n$; systems
keep their PyTree states (``{"slow": x, "fast": z}``, arrays of mode strengths, ...). A
``StateLayout`` maps between the two and names the flat coordinates after the PyTree paths:
``"slow"`` for a scalar leaf, ``"first_layer[0]"`` for an entry of an array leaf, ``"y[1]"``
for an entry of a state that is one bare array."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._system import AbstractSystem
from .._trajectory import _leaf_name


def _entry_names(base: str, shape: tuple[int, ...]) -> list[str]:
    if shape == ():
        return [base]
    return [f"{base}[{','.join(str(i) for i in idx)}]" for idx in np.ndindex(*shape)]


class StateLayout(eqx.Module):
    """The flattening of a state PyTree: its structure, leaf shapes and coordinate names.
    All fields are static, so a layout can be passed to ``eqx.filter_jit``-ed functions."""

    treedef: jax.tree_util.PyTreeDef = eqx.field(static=True)
    shapes: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True)

    @classmethod
    def of(cls, template) -> "StateLayout":
        flat, treedef = jax.tree_util.tree_flatten_with_path(template)
        shapes = tuple(tuple(np.shape(leaf)) for _, leaf in flat)
        names = []
        for (path, _), shape in zip(flat, shapes):
            names.extend(_entry_names(_leaf_name(path), shape))
        return cls(treedef, shapes, tuple(names))

    @property
    def size(self) -> int:
        return len(self.names)

    def ravel(self, y) -> jax.Array:
        """The state PyTree ``y`` as a flat float64 vector."""
        leaves = self.treedef.flatten_up_to(y)
        return jnp.concatenate([jnp.ravel(jnp.asarray(leaf, jnp.float64)) for leaf in leaves])

    def unravel(self, flat) -> object:
        """The flat vector ``flat`` (last axis) as a state PyTree."""
        flat = jnp.asarray(flat)
        leaves, start = [], 0
        for shape in self.shapes:
            size = math.prod(shape)
            leaves.append(flat[..., start : start + size].reshape(flat.shape[:-1] + shape))
            start += size
        return jax.tree_util.tree_unflatten(self.treedef, leaves)

    def unravel_numpy(self, flat):
        """As ``unravel``, with NumPy leaves."""
        return jax.tree_util.tree_map(np.asarray, self.unravel(np.asarray(flat)))

    def index(self, name, argument: str) -> int:
        """The flat index of a coordinate given by name (``"slow"``, ``"y[0]"``) or integer
        position; ``ValueError`` naming ``argument`` otherwise."""
        if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
            if 0 <= int(name) < self.size:
                return int(name)
        elif isinstance(name, str):
            if name in self.names:
                return self.names.index(name)
            if name.isdigit() and int(name) < self.size:
                return int(name)
        raise ValueError(
            f"`{argument}` must name a state coordinate, one of {list(self.names)} (or an index "
            f"0..{self.size - 1}); got {name!r}."
        )


def state_template(system: AbstractSystem, like=None, argument: str = "like"):
    """A zero state of ``system``: from ``like`` when given, else from ``state_shapes()``."""
    if not isinstance(system, AbstractSystem):
        raise ValueError(f"`system` must be a reducedflow.AbstractSystem; got {type(system).__name__}.")
    if like is not None:
        return jax.tree_util.tree_map(lambda x: np.zeros(np.shape(x)), like)
    shapes = system.state_shapes()
    if shapes is None:
        raise ValueError(
            f"`{argument}`: {type(system).__name__}.state_shapes() is None, so pass an example "
            "state (any values, the right structure and shapes)."
        )
    return jax.tree_util.tree_map(lambda s: np.zeros(s.shape), shapes)


def layout_of(system: AbstractSystem, like=None, argument: str = "like") -> StateLayout:
    return StateLayout.of(state_template(system, like, argument))


def flat_field(system, layout: StateLayout, t, x, args):
    """$f(t, x)$ of ``system`` on the flat state ``x``."""
    return layout.ravel(system.vector_field(t, layout.unravel(x), args))


def as_flat(layout: StateLayout, value, argument: str) -> np.ndarray:
    """A state given as a PyTree of the layout's structure, a flat vector of length ``n``, or a
    scalar (broadcast), as a flat float64 NumPy vector."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None and arr.dtype != object and arr.ndim <= 1 and arr.size in (1, layout.size):
        if arr.ndim == 0 or arr.size == 1 and layout.size != 1:
            return np.full(layout.size, float(arr.reshape(-1)[0]))
        return arr.reshape(layout.size)
    try:
        leaves = layout.treedef.flatten_up_to(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{argument}` must be a state PyTree ({layout.treedef}), a vector of length "
            f"{layout.size} ordered as {list(layout.names)}, or a scalar; got {value!r}."
        ) from None
    flat = []
    for leaf, shape in zip(leaves, layout.shapes):
        flat.append(np.broadcast_to(np.asarray(leaf, dtype=np.float64), shape).reshape(-1))
    return np.concatenate(flat)
