r"""Code generation: sympy expressions -> JAX functions.

``to_jax`` lambdifies to ``jax.numpy`` (sympy's ``"jax"`` printer), after common-subexpression
elimination (``sympy.cse``), and returns a function whose outputs are stacked into one array.
Under ``jax.jit`` the traced graph is the same as that of a hand-written JAX function of the
same formulas (XLA fuses the elementwise operations), which is why no separate code generator
(e.g. sympy2jax) is used: ``benchmarks/symbolic_speed.py`` measures the evaluation time of a
generated vector field against a hand-written one (ratio close to 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax.numpy as jnp
import jax.scipy.special as jsp
import sympy as sp

__all__ = ["to_jax"]

#: Functions that sympy's JAX printer leaves to the ``math`` module (not traceable).
_JAX_OVERRIDES = {
    "erf": jsp.erf,
    "erfc": jsp.erfc,
    "sqrt": jnp.sqrt,
    "exp": jnp.exp,
    "log": jnp.log,
    "Abs": jnp.abs,
    "abs": jnp.abs,
}


def to_jax(arguments: Sequence, expressions, *, cse: bool = True) -> Callable:
    r"""A JAX function computing ``expressions`` from ``arguments``.

    **Arguments:**

    - ``arguments``: the inputs, each a sympy symbol or a list of symbols (a list is passed
      as one 1-D array, unpacked inside the function).
    - ``expressions``: one sympy expression (the function returns a scalar array) or a
      sequence of them (the function returns a 1-D array, ``jnp.stack`` of the values).
    - ``cse``: run common-subexpression elimination first.

    **Returns:** a Python function of ``len(arguments)`` positional arguments, traceable by
    ``jax.jit``, ``jax.grad`` and ``jax.vmap``.
    """
    single = isinstance(expressions, sp.Basic)
    exprs = [sp.sympify(expressions)] if single else [sp.sympify(e) for e in expressions]
    fn = sp.lambdify(list(arguments), exprs, modules=[_JAX_OVERRIDES, "jax"], cse=cse)
    list_args = [not isinstance(a, sp.Basic) for a in arguments]

    def generated(*values):
        unpacked = [list(v) if is_list else v for v, is_list in zip(values, list_args)]
        outs = fn(*unpacked)
        outs = [jnp.asarray(o, dtype=jnp.float64) for o in outs]
        if single:
            return outs[0]
        return jnp.stack(jnp.broadcast_arrays(*outs), axis=-1) if outs else jnp.zeros((0,))

    return generated
