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


class ExactMLP(ExactModel):
    def __init__(self, spec: MLPSpec) -> None:
        self.inputs = spec.inputs
        self.layers = len(spec.hidden) + 1
        self.activation = spec.activation

    def forward(
        self, E: ExactOps, params: Params, grads: Grads, x: Array
    ) -> tuple[Array, Backward]:
        backwards: list[Backward] = []
        h = E.reshape(x, [int(x.shape[0]), self.inputs])
        for i in range(self.layers):
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
        spec = self.spec
        batch, time = (int(d) for d in x.shape)
        if time != spec.context:
            raise ValueError(f"inputs have {time} positions, the model's context is {spec.context}")
        width = spec.width
        tokens, tokens_back = embedding_forward(E, params, grads, "tokens", x)
        h = E.reshape(E.add(tokens, params["positions.weight"]), [batch * time, width])
        blocks: list[Backward] = []
        for i in range(spec.layers):
            h, back = self._block(E, params, grads, f"blocks.{i}", h, batch)
            blocks.append(back)
        h, norm_back = layer_norm_forward(E, params, grads, "norm", h, LAYER_NORM_EPS)
        logits, head_back = linear_forward(E, params, grads, "head", h)

        def backward(dlogits: Array) -> None:
            d = norm_back(head_back(dlogits))
            for back in reversed(blocks):
                d = back(d)
            d3 = E.reshape(d, [batch, time, width])
            grads["positions.weight"] = E.reshape(E.sum(d3, 0), [time, width])
            tokens_back(d3)

        return logits, backward


def build_exact_model(spec: TaskSpec) -> ExactModel:
    """The exact mirror of the spec's architecture."""
    model = spec.model
    if isinstance(model, MLPSpec):
        return ExactMLP(model)
    if isinstance(model, CNNSpec):
        return ExactCNN(model)
    return ExactTransformer(model)
