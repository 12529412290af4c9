r"""Finite-width deep linear networks trained by full-batch gradient descent on synthetic data
whose input-output correlation has a prescribed singular value decomposition: the finite
counterpart of the mode systems in ``reducedflow.models.linear_modes``.

Network and loss (library convention, ``shared/theory/linear_networks.md`` §1):

$$\hat y = W_D \cdots W_1 x,\qquad W_l \in \mathbb R^{N_{l+1}\times N_l},\qquad
L = \frac1{2P}\sum_{i=1}^P \|y_i - W_D\cdots W_1 x_i\|^2 .$$

With exactly whitened inputs ($X^\top X/P = I$) and $\Sigma^{yx} = Y^\top X/P = USV^\top$, the
loss is $\tfrac12\|\Sigma^{yx} - W_D\cdots W_1\|_F^2$ + const, and gradient descent with step
$\eta$ after $k$ steps approximates the gradient flow $\dot W_l = -\partial L/\partial W_l$
(time constant $\tau = 1$) at time $t = k\eta$, with an error $O(\eta)$ (explicit Euler).
The mode strengths $u_\alpha = (U^\top W_D\cdots W_1 V)_{\alpha\alpha}$ then follow the
reduced systems ``BalancedModes`` (D = 2) and ``DeepModes`` (D >= 3) when the initialisation
is aligned and balanced.

References: Saxe, McClelland, Ganguli, ICLR 2014, arXiv:1312.6120; Saxe, McClelland,
Ganguli, PNAS 116(23):11537 (2019); Arora, Cohen, Hazan, ICML 2018 (conservation laws).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._random import generator, random_frame
from .._checks import check_finite, check_integer, check_positive

# ----------------------------------------------------------------------------------------------
# Helpers


def check_singular_values(name: str, singular_values) -> jax.Array:
    """Return ``singular_values`` as a float64 vector, raising ``ValueError`` unless it is a
    non-empty 1-D array of finite, strictly positive numbers."""
    try:
        arr = np.asarray(singular_values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a 1-D array of positive numbers; got {singular_values!r}.") from None
    if np.ndim(arr) != 1 or np.shape(arr)[0] == 0:
        raise ValueError(
            f"`{name}` must be a non-empty 1-D array of positive numbers; got shape {np.shape(arr)}."
        )
    check_positive(name, arr)
    return jnp.asarray(arr, dtype=jnp.float64)


def check_widths(widths) -> tuple[int, ...]:
    """Return ``widths`` as a tuple of ints, raising ``ValueError`` unless it lists at least
    two layer widths (input and output), each an integer >= 1."""
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(f"`widths` must be a sequence of layer widths (N_1, ..., N_(D+1)); got {widths!r}.") from None
    if len(widths) < 2:
        raise ValueError(
            "`widths` must list at least two layer widths (input and output dimension), "
            f"i.e. depth D = len(widths) - 1 >= 1; got {widths!r}."
        )
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"`widths` must hold integers >= 1; got {widths!r}.")
    return tuple(int(w) for w in widths)


def _product(weights) -> jax.Array:
    """$W_D \\cdots W_1$."""
    out = weights[0]
    for w in weights[1:]:
        out = w @ out
    return out


def _weights_of(network) -> tuple[jax.Array, ...]:
    if isinstance(network, DeepLinearNetwork):
        return network.weights
    try:
        weights = tuple(jnp.asarray(w) for w in network)
    except TypeError:
        raise ValueError(
            f"`weights` must be a DeepLinearNetwork or a sequence of matrices; got {type(network).__name__}."
        ) from None
    return DeepLinearNetwork(weights).weights


# ----------------------------------------------------------------------------------------------
# Synthetic task


class SyntheticTask(eqx.Module):
    r"""A data set with exactly whitened inputs and a prescribed input-output correlation.

    $$\frac1P X^\top X = I_{N_{in}},\qquad \Sigma^{yx} = \frac1P Y^\top X = U\,\mathrm{diag}(s)\,V^\top ,$$

    built by ``synthetic_task``. Rows of ``inputs``/``outputs`` are samples.

    **Fields:**

    - ``inputs``: $X$, shape ``(P, N_in)``.
    - ``outputs``: $Y$, shape ``(P, N_out)``.
    - ``singular_values``: $s$, shape ``(r,)``.
    - ``output_singular_vectors``: $U$, shape ``(N_out, r)``, orthonormal columns.
    - ``input_singular_vectors``: $V$, shape ``(N_in, r)``, orthonormal columns.
    """

    inputs: jax.Array
    outputs: jax.Array
    singular_values: jax.Array
    output_singular_vectors: jax.Array
    input_singular_vectors: jax.Array

    @property
    def n_samples(self) -> int:
        return self.inputs.shape[0]

    @property
    def input_dim(self) -> int:
        return self.inputs.shape[1]

    @property
    def output_dim(self) -> int:
        return self.outputs.shape[1]

    @property
    def n_modes(self) -> int:
        return self.singular_values.shape[0]

    def input_correlation(self) -> jax.Array:
        """$\\Sigma^x = X^\\top X / P$ measured on the samples."""
        return self.inputs.T @ self.inputs / self.n_samples

    def input_output_correlation(self) -> jax.Array:
        """$\\Sigma^{yx} = Y^\\top X / P$ measured on the samples."""
        return self.outputs.T @ self.inputs / self.n_samples

    def output_correlation(self) -> jax.Array:
        """$\\Sigma^{y} = Y^\\top Y / P$ measured on the samples."""
        return self.outputs.T @ self.outputs / self.n_samples

    def loss_offset(self) -> jax.Array:
        r"""The constant in $L = \tfrac12\|\Sigma^{yx} - W\|_F^2 + c$ (valid for $\Sigma^x = I$):
        $c = \tfrac12(\mathrm{tr}\,\Sigma^y - \|\Sigma^{yx}\|_F^2)$, the loss of the best linear map.
        Computed from the sample correlations."""
        sigma_yx = self.input_output_correlation()
        return 0.5 * (jnp.trace(self.output_correlation()) - jnp.sum(sigma_yx**2))


def synthetic_task(
    singular_values,
    input_dim: int,
    output_dim: int,
    n_samples: int,
    key,
    *,
    noise: float = 0.0,
) -> SyntheticTask:
    r"""Build a ``SyntheticTask`` with exactly whitened inputs and $\Sigma^{yx} = USV^\top$.

    $X = \sqrt P\,Q$ where $Q$ (``P x N_in``) has orthonormal columns, so $X^\top X/P = I$ to
    rounding; $U$, $V$ are Haar-random frames; $Y = X V S U^\top + E$ with an optional noise
    $E$ projected onto the orthogonal complement of the columns of $X$, so that
    $Y^\top X/P = USV^\top$ stays exact and the noise only adds the constant
    $\|E\|_F^2/(2P)$ to the loss (the irreducible error).

    **Arguments:**

    - ``singular_values``: $s_\alpha$, a 1-D array of positive numbers, at most
      ``min(input_dim, output_dim)`` of them.
    - ``input_dim``, ``output_dim``: $N_{in}$, $N_{out}$ (integers >= 1).
    - ``n_samples``: $P$ (integer >= ``input_dim``; > ``input_dim`` when ``noise > 0``).
    - ``key``: a ``jax.random`` key or an integer seed (it seeds the NumPy generator that
      draws $X$, $U$, $V$ and the noise; see ``generator``).
    - ``noise``: standard deviation of the output noise before projection (>= 0).

    **Returns:** a ``SyntheticTask``.
    """
    s = check_singular_values("singular_values", singular_values)
    input_dim = check_integer("input_dim", input_dim)
    output_dim = check_integer("output_dim", output_dim)
    n_samples = check_integer("n_samples", n_samples)
    check_positive("noise", noise, allow_zero=True)
    r = s.shape[0]
    if r > min(input_dim, output_dim):
        raise ValueError(
            f"`singular_values` must have at most min(input_dim, output_dim) = "
            f"{min(input_dim, output_dim)} entries; got {r}."
        )
    if n_samples < input_dim:
        raise ValueError(
            f"`n_samples` must be >= input_dim = {input_dim} for exactly whitened inputs; got {n_samples}."
        )
    if noise > 0 and n_samples == input_dim:
        raise ValueError(
            f"`n_samples` must exceed input_dim = {input_dim} when noise > 0 (the noise lives in the "
            f"orthogonal complement of the inputs); got {n_samples}."
        )
    rng = generator(key)
    s = np.asarray(s)
    basis = random_frame(rng, n_samples, input_dim)
    inputs = math.sqrt(n_samples) * basis
    left = random_frame(rng, output_dim, s.shape[0])
    right = random_frame(rng, input_dim, s.shape[0])
    outputs = inputs @ right @ (s[:, None] * left.T)
    if noise > 0:
        raw = float(noise) * rng.standard_normal((n_samples, output_dim))
        for _ in range(2):  # project twice: orthogonal to the inputs to rounding
            raw = raw - basis @ (basis.T @ raw)
        outputs = outputs + raw
    as_jax = lambda a: jnp.asarray(a, dtype=jnp.float64)  # noqa: E731
    return SyntheticTask(as_jax(inputs), as_jax(outputs), as_jax(s), as_jax(left), as_jax(right))


# ----------------------------------------------------------------------------------------------
# The network


class DeepLinearNetwork(eqx.Module):
    r"""A deep linear network $x \mapsto W_D\cdots W_1 x$ of any widths $(N_1, \dots, N_{D+1})$.

    **Fields:**

    - ``weights``: tuple $(W_1, \dots, W_D)$, $W_l$ of shape ``(N_{l+1}, N_l)``.
    """

    weights: tuple[jax.Array, ...]

    def __init__(self, weights: Sequence):
        weights = tuple(jnp.asarray(w, dtype=jnp.float64) for w in weights)
        if len(weights) == 0:
            raise ValueError("`weights` must hold at least one matrix; got an empty sequence.")
        for l, w in enumerate(weights):
            if w.ndim != 2:
                raise ValueError(f"`weights[{l}]` must be a matrix; got shape {w.shape}.")
            if l > 0 and w.shape[1] != weights[l - 1].shape[0]:
                raise ValueError(
                    f"`weights[{l}]` must have {weights[l - 1].shape[0]} columns to follow "
                    f"weights[{l - 1}] of shape {weights[l - 1].shape}; got shape {w.shape}."
                )
        check_finite("weights", weights)
        self.weights = weights

    @property
    def depth(self) -> int:
        """$D$, the number of weight matrices."""
        return len(self.weights)

    @property
    def widths(self) -> tuple[int, ...]:
        """$(N_1, \\dots, N_{D+1})$."""
        return (self.weights[0].shape[1],) + tuple(w.shape[0] for w in self.weights)

    def end_to_end(self) -> jax.Array:
        """The network map $W = W_D \\cdots W_1$, shape ``(N_{D+1}, N_1)``."""
        return _product(self.weights)

    def __call__(self, x: jax.Array) -> jax.Array:
        """Apply the network to inputs ``x`` of shape ``(..., N_1)``."""
        for w in self.weights:
            x = x @ w.T
        return x

    def conservation_matrices(self) -> tuple[jax.Array, ...]:
        r"""$C_l = W_{l+1}^\top W_{l+1} - W_l W_l^\top$ for $l = 1, \dots, D-1$ (each
        $N_{l+1}\times N_{l+1}$): constant along the gradient flow of any loss of the
        end-to-end map (Arora, Cohen, Hazan 2018; theory §7). Zero for a balanced network."""
        w = self.weights
        return tuple(w[l + 1].T @ w[l + 1] - w[l] @ w[l].T for l in range(len(w) - 1))


def init_deep_linear(widths, scale, key, *, aligned_to=None) -> DeepLinearNetwork:
    r"""Initialise a ``DeepLinearNetwork`` of widths $(N_1, \dots, N_{D+1})$.

    - ``aligned_to=None`` (small random init): every entry of every $W_l$ is i.i.d.
      $\mathcal N(0, \text{scale}^2)$. A mode then starts at $|u_{0,\alpha}| \sim
      \text{scale}^D$ times random projection factors of order $\sqrt{N_2\cdots N_D}$.
    - ``aligned_to=task`` (a ``SyntheticTask``) or a pair ``(U, V)`` of orthonormal frames:
      the aligned, balanced initialisation of theory §2/§6. With $a_\alpha = u_{0,\alpha}^{1/D}$,
      $R_0 = V$, $R_D = U$ and Haar-random frames $R_l$ (``N_{l+1} x r``) for the hidden layers,
      $$W_l = R_l\,\mathrm{diag}(a)\,R_{l-1}^\top ,\qquad W_D\cdots W_1 = U\,\mathrm{diag}(u_0)\,V^\top ,$$
      and $W_{l+1}^\top W_{l+1} = W_l W_l^\top$ (balanced). Here ``scale`` is $u_0$, the
      initial mode strength: a positive scalar or one value per mode. Every hidden width
      must be at least the number of modes r.

    **Arguments:**

    - ``widths``: $(N_1, \dots, N_{D+1})$, at least two integers >= 1.
    - ``scale``: entry standard deviation (random init) or initial mode strength $u_0$
      (aligned init); finite and > 0.
    - ``key``: a ``jax.random`` key or an integer seed.
    - ``aligned_to``: ``None``, a ``SyntheticTask`` or a tuple ``(U, V)``.

    **Returns:** a ``DeepLinearNetwork``.
    """
    widths = check_widths(widths)
    check_positive("scale", scale)
    rng = generator(key)
    depth = len(widths) - 1
    if aligned_to is None:
        if np.ndim(scale) != 0:
            raise ValueError(f"`scale` must be a scalar for a random init; got shape {np.shape(scale)}.")
        return DeepLinearNetwork(
            [float(scale) * rng.standard_normal((widths[l + 1], widths[l])) for l in range(depth)]
        )
    if isinstance(aligned_to, SyntheticTask):
        left, right = aligned_to.output_singular_vectors, aligned_to.input_singular_vectors
    else:
        try:
            left, right = (jnp.asarray(m, dtype=jnp.float64) for m in aligned_to)
        except (TypeError, ValueError):
            raise ValueError(
                f"`aligned_to` must be None, a SyntheticTask or a pair (U, V) of frames; got {aligned_to!r}."
            ) from None
        if left.ndim != 2 or right.ndim != 2 or left.shape[1] != right.shape[1]:
            raise ValueError(
                "`aligned_to` must be a pair (U, V) of matrices with the same number of columns; "
                f"got shapes {left.shape}, {right.shape}."
            )
    r = left.shape[1]
    if widths[0] != right.shape[0] or widths[-1] != left.shape[0]:
        raise ValueError(
            f"`widths` must start with the input dimension {right.shape[0]} and end with the output "
            f"dimension {left.shape[0]} of `aligned_to`; got {widths}."
        )
    if min(widths[1:-1], default=r) < r:
        raise ValueError(f"`widths` must have every hidden width >= the number of modes {r} for an aligned init; got {widths}.")
    u0 = np.asarray(scale, dtype=float)
    if u0.ndim > 1 or (u0.ndim == 1 and u0.shape[0] != r):
        raise ValueError(f"`scale` must be a scalar or have shape ({r},) (one u0 per mode); got shape {u0.shape}.")
    per_layer = np.broadcast_to(u0 ** (1.0 / depth), (r,))
    left, right = np.asarray(left), np.asarray(right)
    frames = [right] + [random_frame(rng, widths[l + 1], r) for l in range(depth - 1)] + [left]
    return DeepLinearNetwork([frames[l + 1] @ (per_layer[:, None] * frames[l].T) for l in range(depth)])


# ----------------------------------------------------------------------------------------------
# Maps from weights to order parameters, and losses


def mode_matrix(weights, U, V) -> jax.Array:
    r"""$U^\top W_D\cdots W_1 V$, shape ``(r_U, r_V)``: the network map in the singular bases of
    $\Sigma^{yx}$. Its diagonal holds the mode strengths, its off-diagonal the cross-talk
    between modes (zero for an aligned init).

    ``weights`` is a ``DeepLinearNetwork`` or a sequence of matrices; ``U`` is ``(N_out, r)``,
    ``V`` is ``(N_in, r)``."""
    return jnp.asarray(U).T @ _product(_weights_of(weights)) @ jnp.asarray(V)


def mode_strengths(weights, U, V) -> jax.Array:
    r"""$u_\alpha = (U^\top W_D\cdots W_1 V)_{\alpha\alpha}$, shape ``(r,)``."""
    return jnp.diagonal(mode_matrix(weights, U, V))


def _sample_loss(weights, inputs, outputs):
    h = inputs
    for w in weights:
        h = h @ w.T
    residual = outputs - h
    return 0.5 * jnp.sum(residual * residual) / inputs.shape[0]


def empirical_loss(network, task: SyntheticTask) -> jax.Array:
    r"""$L = \frac1{2P}\sum_i \|y_i - W_D\cdots W_1 x_i\|^2$, evaluated on the samples."""
    return _sample_loss_jit(_weights_of(network), task.inputs, task.outputs)


_sample_loss_jit = jax.jit(_sample_loss)


def population_loss(network, task: SyntheticTask) -> jax.Array:
    r"""$\tfrac12\|\Sigma^{yx} - W_D\cdots W_1\|_F^2 + c$ with the prescribed
    $\Sigma^{yx} = USV^\top$ and $c$ = ``task.loss_offset()``: the loss written in second-order
    statistics, equal to ``empirical_loss`` exactly when $\Sigma^x = I$ (theory §1)."""
    return _population_loss(_weights_of(network), task)


@jax.jit
def _population_loss(weights, task):
    s = task.singular_values
    sigma_yx = task.output_singular_vectors @ (s[:, None] * task.input_singular_vectors.T)
    return 0.5 * jnp.sum((sigma_yx - _product(weights)) ** 2) + task.loss_offset()


# ----------------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass(frozen=True)
class GDTrajectory:
    """What ``train_gd`` recorded.

    **Attributes:**

    - ``times``: $t = k\\eta$ at the recorded steps $k$, shape ``(T,)`` (gradient-flow time,
      $\\tau = 1$).
    - ``steps``: the recorded step numbers $k$, shape ``(T,)``.
    - ``mode_matrix``: $U^\\top W V$ at those steps, shape ``(T, r, r)``.
    - ``loss``: the empirical loss, shape ``(T,)``.
    - ``network``: the network after the last step.
    - ``weights``: ``None``, or (``record_weights=True``) the tuple of weight matrices with
      a leading time axis.
    - ``learning_rate``: $\\eta$.
    - ``compile_seconds``, ``run_seconds``: time spent compiling (0 when reused) and running.
    """

    times: np.ndarray
    steps: np.ndarray
    mode_matrix: np.ndarray
    loss: np.ndarray
    network: DeepLinearNetwork
    weights: tuple[np.ndarray, ...] | None
    learning_rate: float
    compile_seconds: float
    run_seconds: float

    @property
    def mode_strengths(self) -> np.ndarray:
        """Diagonal of ``mode_matrix``, shape ``(T, r)``."""
        return np.diagonal(self.mode_matrix, axis1=1, axis2=2)

    @property
    def off_diagonal(self) -> np.ndarray:
        """Largest absolute off-diagonal entry of ``mode_matrix`` at each time, shape ``(T,)``."""
        r = self.mode_matrix.shape[1]
        mask = ~np.eye(r, self.mode_matrix.shape[2], dtype=bool)
        return np.max(np.abs(self.mode_matrix[:, mask]), axis=1) if mask.any() else np.zeros(len(self.times))

    def to_xarray(self):
        """An ``xarray.Dataset`` on dimension ``time`` with ``mode_strengths``,
        ``mode_matrix`` (dims ``output_mode``, ``input_mode``), ``loss`` and ``step``."""
        import xarray as xr

        return xr.Dataset(
            {
                "mode_strengths": (("time", "mode"), self.mode_strengths),
                "mode_matrix": (("time", "output_mode", "input_mode"), self.mode_matrix),
                "loss": ("time", self.loss),
                "step": ("time", self.steps),
            },
            coords={"time": self.times},
            attrs={"learning_rate": self.learning_rate, "widths": np.asarray(self.network.widths)},
        )


def _print_progress(record, loss, record_every, learning_rate, n_records):
    record, every = int(record), int(record_every)
    marks = {max(1, round(n_records * f / 10)) for f in range(1, 11)}
    if record in marks:
        step = record * every
        print(
            f"train_gd: step {step}/{n_records * every} (t = {step * float(learning_rate):.6g}), "
            f"loss = {float(loss):.6e}",
            flush=True,
        )


def _run_gd(weights, inputs, outputs, left, right, learning_rate, record_every, *, n_records, record_weights, progress):
    grad = jax.grad(_sample_loss)

    def step(_, w):
        g = grad(w, inputs, outputs)
        return tuple(wl - learning_rate * gl for wl, gl in zip(w, g))

    def observe(w):
        obs = {"mode_matrix": left.T @ _product(w) @ right, "loss": _sample_loss(w, inputs, outputs)}
        if record_weights:
            obs["weights"] = w
        return obs

    def chunk(w, record):
        w = jax.lax.fori_loop(0, record_every, step, w)
        obs = observe(w)
        if progress:
            report = functools.partial(_print_progress, n_records=n_records)
            jax.debug.callback(report, record, obs["loss"], record_every, learning_rate, ordered=True)
        return w, obs

    final, recorded = jax.lax.scan(chunk, weights, jnp.arange(1, n_records + 1))
    first = observe(weights)
    recorded = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), first, recorded)
    return final, recorded


_COMPILED_GD: dict = {}


def _compiled_gd(dynamic, static):
    """The AOT-compiled ``_run_gd`` for these shapes and static options (cached), and the
    seconds spent compiling it now (0 when reused)."""
    leaves, treedef = jax.tree_util.tree_flatten(dynamic)
    cache_key = (treedef, tuple((x.shape, x.dtype) for x in leaves), tuple(sorted(static.items())))
    compiled = _COMPILED_GD.get(cache_key)
    if compiled is not None:
        return compiled, 0.0
    start = time.perf_counter()
    compiled = jax.jit(_run_gd, static_argnames=tuple(static)).lower(*dynamic, **static).compile()
    _COMPILED_GD[cache_key] = compiled
    return compiled, time.perf_counter() - start


def train_gd(
    network: DeepLinearNetwork,
    task: SyntheticTask,
    learning_rate: float,
    n_steps: int,
    *,
    record_every: int = 1,
    record_weights: bool = False,
    progress: bool = False,
    throw: bool = True,
) -> GDTrajectory:
    r"""Full-batch gradient descent on $L = \frac1{2P}\sum_i\|y_i - W_D\cdots W_1x_i\|^2$:
    $W_l \leftarrow W_l - \eta\,\partial L/\partial W_l$ (gradients by ``jax.grad`` on the
    samples), ``n_steps`` times.

    The loop is a ``jax.lax.scan`` over records of ``record_every`` steps each, compiled once
    per shape: changing ``learning_rate`` or ``record_every`` does not recompile (the number
    of records ``n_steps // record_every`` does). Step $k$ is recorded at time $t = k\eta$,
    matching the gradient flow $\dot W_l = -\partial L/\partial W_l$ ($\tau = 1$) up to $O(\eta)$.

    **Arguments:**

    - ``network``: the initial ``DeepLinearNetwork`` (widths must start with
      ``task.input_dim`` and end with ``task.output_dim``).
    - ``task``: a ``SyntheticTask``.
    - ``learning_rate``: $\eta$, finite and > 0.
    - ``n_steps``: number of steps (integer >= 1), a multiple of ``record_every``.
    - ``record_every``: record every this many steps (integer >= 1); step 0 is recorded too.
    - ``record_weights``: also keep every layer's weights at the recorded steps.
    - ``progress``: print the step, time and loss about ten times during the run.
    - ``throw``: raise ``FloatingPointError`` if the weights become non-finite (divergence);
      otherwise return the trajectory with the non-finite records.

    **Returns:** a ``GDTrajectory``.
    """
    if not isinstance(network, DeepLinearNetwork):
        raise ValueError(f"`network` must be a DeepLinearNetwork; got {type(network).__name__}.")
    if not isinstance(task, SyntheticTask):
        raise ValueError(f"`task` must be a SyntheticTask; got {type(task).__name__}.")
    check_positive("learning_rate", learning_rate)
    if np.ndim(learning_rate) != 0:
        raise ValueError(f"`learning_rate` must be a scalar; got shape {np.shape(learning_rate)}.")
    n_steps = check_integer("n_steps", n_steps)
    record_every = check_integer("record_every", record_every)
    if n_steps % record_every:
        raise ValueError(f"`n_steps` must be a multiple of record_every = {record_every}; got {n_steps}.")
    widths = network.widths
    if widths[0] != task.input_dim or widths[-1] != task.output_dim:
        raise ValueError(
            f"`network` must map input_dim = {task.input_dim} to output_dim = {task.output_dim} "
            f"of the task; got widths {widths}."
        )
    n_records = n_steps // record_every
    dynamic = (
        network.weights,
        task.inputs,
        task.outputs,
        task.output_singular_vectors,
        task.input_singular_vectors,
        jnp.float64(learning_rate),
        jnp.int64(record_every),
    )
    static = dict(n_records=n_records, record_weights=bool(record_weights), progress=bool(progress))
    compiled, compile_seconds = _compiled_gd(dynamic, static)
    start = time.perf_counter()
    final, recorded = jax.block_until_ready(compiled(*dynamic))
    run_seconds = time.perf_counter() - start
    steps = np.arange(n_records + 1) * record_every
    loss = np.asarray(recorded["loss"])
    final_weights = tuple(np.asarray(w) for w in final)
    if not all(np.all(np.isfinite(w)) for w in final_weights):
        bad = np.flatnonzero(~np.isfinite(loss))
        when = steps[bad[0]] if bad.size else n_steps
        message = (
            f"gradient descent diverged: the weights became non-finite by step {when} "
            f"(t = {when * float(learning_rate):.6g}). Try a smaller `learning_rate` (stability "
            "needs roughly learning_rate * depth * max(singular_values) well below 1)."
        )
        if throw:
            raise FloatingPointError(message)
        final_network = network
    else:
        final_network = DeepLinearNetwork(final_weights)
    return GDTrajectory(
        times=steps * float(learning_rate),
        steps=steps,
        mode_matrix=np.asarray(recorded["mode_matrix"]),
        loss=loss,
        network=final_network,
        weights=tuple(np.asarray(w) for w in recorded["weights"]) if record_weights else None,
        learning_rate=float(learning_rate),
        compile_seconds=compile_seconds,
        run_seconds=run_seconds,
    )
