"""The example architectures of ``agents.learning.models``, mirrored op for op in exact ops.

``build_exact_model(spec)`` gives an object whose ``forward`` maps the inputs of
a batch to the model's output and returns the ``Backward`` that fills the
parameter gradients (keyed by module path, as in ``named_parameters``). The
math is torch's modules', with every step an exact trace operation:

- mlp: flatten, then linear layers with the activation (ReLU or SiLU) between them;
- cnn: conv2d (im2col + matmul_nt) + activation layers, flatten, linear layers;
- transformer: token embedding + position embedding, pre-norm blocks
  (``x + attention(norm1(x))``, ``x + mlp_out(act(mlp_in(norm2(x))))``), a
  final layer norm and a linear head, all on ``[B·T, width]`` rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from agents.exact.kernels import Array
from agents.exact.layers import (
    Backward,
    Grads,
    Params,
    activation_forward,
    attention_forward,
    conv2d_forward,
    embedding_forward,
    layer_norm_forward,
    linear_forward,
)
from agents.exact.ops import ExactOps
from agents.learning.models import LAYER_NORM_EPS
from agents.learning.spec import CNNSpec, MLPSpec, TaskSpec, TransformerSpec


def _chain(backwards: list[Callable[[Array], Array | None]]) -> Backward:
    """Run backward functions in reverse order, stopping where no input gradient is needed."""

    def backward(dy: Array) -> Array | None:
        grad: Array | None = dy
        for step in reversed(backwards):
            if grad is None:
                return None
            grad = step(grad)
        return grad

    return backward


class ExactModel(ABC):
    """An architecture in exact ops."""

    @abstractmethod
    def forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array
    ) -> tuple[Array, Backward]:
        """The output for inputs ``x`` and the backward pass that fills ``grads``."""

    def stage_forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array, first: int, end: int
    ) -> tuple[Array, Backward]:
        """Units ``first`` … ``end − 1`` only (``agents.learning.stages``): ``x`` is the batch's
        inputs when ``first`` is 0, else what the previous stage passed on; the backward
        pass returns the gradient of ``x`` (``None`` for the first stage). The stages in
        order compute, op for op, what ``forward`` computes."""
        raise NotImplementedError(f"{type(self).__name__} is not cut into stages")


class ExactMLP(ExactModel):
    def __init__(self, spec: MLPSpec) -> None:
        self.inputs = spec.inputs
        self.layers = len(spec.hidden) + 1
        self.activation = spec.activation

    def forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array
    ) -> tuple[Array, Backward]:
        return self.stage_forward(E, params, grads, x, 0, self.layers)

    def stage_forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array, first: int, end: int
    ) -> tuple[Array, Backward]:
        backwards: list[Backward] = []
        h = E.reshape(x, [int(x.shape[0]), self.inputs]) if first == 0 else x
        for i in range(first, end):
            h, back = linear_forward(E, params, grads, f"layers.{i}", h, input_grad=i > 0)
            backwards.append(back)
            if i < self.layers - 1:
                h, back = activation_forward(E, self.activation, h)
                backwards.append(back)
        return h, _chain(backwards)


class ExactCNN(ExactModel):
    def __init__(self, spec: CNNSpec) -> None:
        self.convs = spec.convs
        self.linears = len(spec.hidden) + 1
        self.activation = spec.activation
        c, h, w = spec.feature_map()
        self.features = c * h * w

    def forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array
    ) -> tuple[Array, Backward]:
        backwards: list[Backward] = []
        h = x
        for i, conv in enumerate(self.convs):
            h, back = conv2d_forward(
                E,
                params,
                grads,
                f"convs.{i}",
                h,
                stride=conv.stride,
                padding=conv.padding,
                input_grad=i > 0,
            )
            backwards.append(back)
            h, back = activation_forward(E, self.activation, h)
            backwards.append(back)
        shape = [int(d) for d in h.shape]

        def unflatten(dy: Array) -> Array:
            return E.reshape(dy, shape)

        h = E.reshape(h, [shape[0], self.features])
        backwards.append(unflatten)
        for i in range(self.linears):
            h, back = linear_forward(E, params, grads, f"linears.{i}", h)
            backwards.append(back)
            if i < self.linears - 1:
                h, back = activation_forward(E, self.activation, h)
                backwards.append(back)
        return h, _chain(backwards)


class ExactTransformer(ExactModel):
    def __init__(self, spec: TransformerSpec) -> None:
        self.spec = spec
        head = spec.width // spec.heads
        # The same binary32 constant as agents.learning.models.CausalSelfAttention.scale.
        self.scale = float(np.float32(1.0 / np.sqrt(np.float64(head))))

    def _block(
        self, E: ExactOps, params: Params, grads: Grads, name: str, x: Array, batch: int
    ) -> tuple[Array, Backward]:
        spec = self.spec
        h, norm1_back = layer_norm_forward(E, params, grads, f"{name}.norm1", x, LAYER_NORM_EPS)
        a, attention_back = attention_forward(
            E,
            params,
            grads,
            f"{name}.attention",
            h,
            batch=batch,
            time=spec.context,
            heads=spec.heads,
            scale=self.scale,
        )
        x1 = E.add(x, a)
        h2, norm2_back = layer_norm_forward(E, params, grads, f"{name}.norm2", x1, LAYER_NORM_EPS)
        u, in_back = linear_forward(E, params, grads, f"{name}.mlp_in", h2)
        r, activation_back = activation_forward(E, spec.activation, u)
        m, out_back = linear_forward(E, params, grads, f"{name}.mlp_out", r)
        x2 = E.add(x1, m)

        def backward(dx2: Array) -> Array:
            branch = norm2_back(in_back(activation_back(out_back(dx2))))
            dx1 = E.add(dx2, branch)
            return E.add(dx1, norm1_back(attention_back(dx1)))

        return x2, backward

    def forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array
    ) -> tuple[Array, Backward]:
        return self.stage_forward(E, params, grads, x, 0, self.spec.layers)

    def stage_forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array, first: int, end: int
    ) -> tuple[Array, Backward]:
        spec = self.spec
        width, time = spec.width, spec.context
        tokens_back: Backward | None = None
        if first == 0:
            batch, got = (int(d) for d in x.shape)
            if got != time:
                raise ValueError(f"inputs have {got} positions, the model's context is {time}")
            tokens, tokens_back = embedding_forward(E, params, grads, "tokens", x)
            h = E.reshape(E.add(tokens, params["positions.weight"]), [batch * time, width])
        else:
            h = x
            batch = int(x.shape[0]) // time
        blocks: list[Backward] = []
        for i in range(first, end):
            h, back = self._block(E, params, grads, f"blocks.{i}", h, batch)
            blocks.append(back)
        last = end == spec.layers
        if last:
            h, norm_back = layer_norm_forward(E, params, grads, "norm", h, LAYER_NORM_EPS)
            h, head_back = linear_forward(E, params, grads, "head", h)

        def backward(dy: Array) -> Array | None:
            d = norm_back(head_back(dy)) if last else dy
            for back in reversed(blocks):
                d = back(d)
            if tokens_back is None:
                return d
            d3 = E.reshape(d, [batch, time, width])
            grads["positions.weight"] = E.reshape(E.sum(d3, 0), [time, width])
            tokens_back(d3)
            return None

        return h, backward


def build_exact_model(spec: TaskSpec) -> ExactModel:
    """The exact mirror of the spec's architecture."""
    model = spec.model
    if isinstance(model, MLPSpec):
        return ExactMLP(model)
    if isinstance(model, CNNSpec):
        return ExactCNN(model)
    return ExactTransformer(model)
