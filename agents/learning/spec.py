"""The task spec: everything a solver needs to train a task, and nothing it may choose.

A spec is plain data (pydantic, version 1). It is loaded from YAML or JSON,
rejects unknown fields, bounds every size and range, and has a canonical
serialization: the JSON of all its fields (defaults filled in), with sorted
keys and no spaces (``agents.store.canonical_json``). The spec hash is the
sha256 of those bytes and the spec CID is the CID of the same bytes, so two
parties that load the same spec, however it was written, name it the same way.

Floating-point hyperparameters are written as decimals and used as the
nearest binary32 value (round to nearest, ties to even).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from agents.errors import VeritrainError
from agents.store.base import canonical_json

SPEC_VERSION = 1
# The step counter is kept as a binary32 scalar in every checkpoint, which
# counts exactly only below 2**24.
MAX_STEPS = 2**24 - 1
MAX_BATCH = 65_536
MAX_WIDTH = 65_536
MAX_LAYERS = 64
MAX_PARAMETERS = 100_000_000
MAX_SPEC_BYTES = 1 << 20

PositiveInt = Annotated[int, Field(ge=1)]
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]
Dim = Annotated[int, Field(ge=1, le=4096)]
Rate = Annotated[float, Field(gt=0.0, le=1e3, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
Cid = Annotated[str, Field(min_length=46, max_length=128, pattern=r"^[A-Za-z0-9]+$")]
# The nonlinearity between layers: ``relu`` (``max(x, 0)``) or ``silu`` (``x · sigmoid(x)``,
# smooth, so two honest runs that differ by rounding never take different branches).
Activation = Literal["relu", "silu"]


class SpecError(VeritrainError):
    """A task spec is unreadable or invalid; the message names the field and the rule."""


class _Strict(BaseModel):
    # Lax parsing lets YAML's ``1e-3`` (a string to YAML 1.1) be a number; booleans,
    # which lax parsing would turn into 0 and 1, are refused: no spec field is one.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                values = value if isinstance(value, list) else [value]
                if any(isinstance(v, bool) for v in values):
                    raise ValueError(f"{key}: true/false is not a valid value")
        return data


# --- dataset -----------------------------------------------------------------


class DatasetSource(_Strict):
    """How to rebuild a dataset the project generates (checked against the CID after building)."""

    builtin: Literal["digits", "synthetic-classification", "synthetic-regression", "text"]
    samples: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    features: Annotated[int, Field(ge=1, le=4096)] | None = None
    classes: Annotated[int, Field(ge=2, le=1024)] | None = None
    outputs: Annotated[int, Field(ge=1, le=1024)] | None = None
    seed: Annotated[int, Field(ge=0, lt=2**64)] = 0

    @model_validator(mode="after")
    def _parameters_apply(self) -> DatasetSource:
        takes = {
            "digits": set(),
            "text": {"samples", "seed"},
            "synthetic-classification": {"samples", "features", "classes", "seed"},
            "synthetic-regression": {"samples", "features", "outputs", "seed"},
        }[self.builtin]
        # Defaults count as not given: canonical specs spell every field out.
        given = {
            name
            for name, field in type(self).model_fields.items()
            if name != "builtin" and getattr(self, name) != field.default
        }
        if given - takes:
            raise ValueError(f"{self.builtin} takes no {', '.join(sorted(given - takes))}")
        return self


class Preprocessing(_Strict):
    """Elementwise binary32 preprocessing of inputs: ``x' = x * scale + shift`` (two roundings)."""

    scale: Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)] = 1.0
    shift: Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)] = 0.0


class DatasetRef(_Strict):
    """The dataset by CID (its header artifact), with an optional recipe to rebuild it."""

    cid: Cid
    source: DatasetSource | None = None
    preprocessing: Preprocessing = Preprocessing()


# --- models ------------------------------------------------------------------


class MLPSpec(_Strict):
    """Linear layers with the activation between them; inputs are flattened."""

    kind: Literal["mlp"]
    inputs: Width
    hidden: Annotated[tuple[Width, ...], Field(max_length=MAX_LAYERS)] = ()
    outputs: Width
    activation: Activation = "relu"


class ConvSpec(_Strict):
    """One ``nn.Conv2d`` followed by the activation (strides instead of pooling)."""

    channels: Annotated[int, Field(ge=1, le=4096)]
    kernel: Annotated[int, Field(ge=1, le=15)]
    stride: Annotated[int, Field(ge=1, le=8)] = 1
    padding: Annotated[int, Field(ge=0, le=7)] = 0


class CNNSpec(_Strict):
    """Convolutions with the activation, flatten, then linear layers (the activation between)."""

    kind: Literal["cnn"]
    input: tuple[Dim, Dim, Dim]
    convs: Annotated[tuple[ConvSpec, ...], Field(min_length=1, max_length=MAX_LAYERS)]
    hidden: Annotated[tuple[Width, ...], Field(max_length=MAX_LAYERS)] = ()
    outputs: Width
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _spatial_sizes(self) -> CNNSpec:
        height, width = self.input[1], self.input[2]
        for i, conv in enumerate(self.convs):
            if conv.padding >= conv.kernel:
                raise ValueError(f"convs.{i}: padding must be smaller than kernel")
            height = (height + 2 * conv.padding - conv.kernel) // conv.stride + 1
            width = (width + 2 * conv.padding - conv.kernel) // conv.stride + 1
            if height < 1 or width < 1:
                raise ValueError(f"convs.{i}: the feature map shrinks to nothing")
        return self

    def feature_map(self) -> tuple[int, int, int]:
        """Channels, height and width after the last convolution."""
        channels, height, width = self.input
        for conv in self.convs:
            channels = conv.channels
            height = (height + 2 * conv.padding - conv.kernel) // conv.stride + 1
            width = (width + 2 * conv.padding - conv.kernel) // conv.stride + 1
        return channels, height, width


class TransformerSpec(_Strict):
    """A decoder-only character-level transformer with pre-LayerNorm blocks and two-layer MLPs."""

    kind: Literal["transformer"]
    vocab: Annotated[int, Field(ge=2, le=65_536)]
    context: Annotated[int, Field(ge=1, le=4096)]
    width: Width
    heads: Annotated[int, Field(ge=1, le=256)]
    layers: Annotated[int, Field(ge=1, le=MAX_LAYERS)]
    ff: Width
    activation: Activation = "relu"

    @model_validator(mode="after")
    def _heads_divide_width(self) -> TransformerSpec:
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be a multiple of heads ({self.heads})")
        return self


ModelSpec = Annotated[MLPSpec | CNNSpec | TransformerSpec, Field(discriminator="kind")]


# --- optimization ------------------------------------------------------------


class SGDSpec(_Strict):
    """torch's SGD (no dampening, no Nesterov): ``b = μ·b + g; p = p − lr·b``."""

    kind: Literal["sgd"]
    momentum: Fraction = 0.0
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0


class AdamSpec(_Strict):
    """torch's Adam (L2 weight decay added to the gradient, no AMSGrad)."""

    kind: Literal["adam"]
    beta1: Fraction = 0.9
    beta2: Fraction = 0.999
    eps: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 1e-8
    weight_decay: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0


OptimizerSpec = Annotated[SGDSpec | AdamSpec, Field(discriminator="kind")]


class ConstantSchedule(_Strict):
    """``lr(t) = lr``."""

    kind: Literal["constant"]
    lr: Rate


class StepSchedule(_Strict):
    """``lr(t) = lr · gamma^floor(t / every)`` (the power by repeated binary32 multiplication)."""

    kind: Literal["step"]
    lr: Rate
    gamma: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)]
    every: PositiveInt


class LinearSchedule(_Strict):
    """Linear warmup over ``warmup`` steps, then linear decay to ``lr · final`` at the last step."""

    kind: Literal["linear"]
    lr: Rate
    warmup: Annotated[int, Field(ge=0)] = 0
    final: Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)] = 0.0


ScheduleSpec = Annotated[
    ConstantSchedule | StepSchedule | LinearSchedule, Field(discriminator="kind")
]


# --- verification ------------------------------------------------------------


class VerificationSpec(_Strict):
    """How a proof of this task is checked (PROTOCOL.md §1 step 6, §3)."""

    segments: Annotated[int, Field(ge=1, le=4096)] = 5
    top_updates: Annotated[int, Field(ge=0, le=4096)] = 0
    metric: Literal["l2", "linf"] = "l2"
    tolerance: Literal["exact", "tolerant"] = "tolerant"
    epsilon: Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False)] = 1e-12
    # The threshold used when no profile has been posted; exact mode has τ = 0.
    tau: Annotated[float, Field(ge=0.0, le=1e3, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _tau_matches_mode(self) -> VerificationSpec:
        if self.tolerance == "exact" and self.tau not in (None, 0.0):
            raise ValueError("tau must be 0 (or absent) in exact mode")
        return self

    def threshold(self) -> float | None:
        """τ: 0 in exact mode, the spec's ``tau`` in tolerant mode (``None`` if not given)."""
        return 0.0 if self.tolerance == "exact" else self.tau


# --- parallel training -------------------------------------------------------


Bits = Literal[2, 3, 4, 8]
# Per-sample activation buffers of AQ-SGD are part of the state: bounded like the parameters.
MAX_BUFFER_VALUES = MAX_PARAMETERS


class CompressionSpec(_Strict):
    """How activations (and, optionally, their gradients) are quantized where the model is cut
    into pipeline stages (docs/swarm.md, "Activation compression").

    ``direct``: each sample's activation is quantized to ``bits`` bits on its own.
    ``aq`` (AQ-SGD): each sample keeps a buffer per cut, the activation it last passed on;
    a sample seen before passes on its buffer plus the quantized change since, a sample
    seen for the first time its activation in full. ``samples`` is the number of buffers
    (the dataset's sample count), so the state's layout follows from the spec alone.
    ``backward_bits``: the gradient sent back across a cut is quantized directly to that
    many bits (absent: sent in full). Quantization rounds to nearest: no randomness.
    """

    method: Literal["direct", "aq"]
    bits: Bits
    backward_bits: Bits | None = None
    samples: Annotated[int, Field(ge=1, le=1_000_000)] | None = None

    @model_validator(mode="after")
    def _buffers(self) -> CompressionSpec:
        if self.method == "aq" and self.samples is None:
            raise ValueError("aq keeps a buffer per sample: give samples (the dataset's count)")
        if self.method == "direct" and self.samples is not None:
            raise ValueError("direct compression keeps no buffers: samples does not apply")
        return self


class ParallelSpec(_Strict):
    """How one step splits into microbatches and the model into stages, which fixes its
    arithmetic (docs/swarm.md).

    A step's batch of ``B`` samples is cut into ``microbatches`` equal slices, in
    order. Each slice's loss gradient is taken with the whole batch's normalization
    (divided by the batch's count, not the slice's), its backward pass gives the
    slice's parameter gradients, and the step's gradient of each parameter is their
    sum in slice order, ``acc = +0.0; acc = acc + g_m`` (PROTOCOL.md §2). Devices may
    then share the slices of a step (data parallelism) without changing a bit.

    ``stages`` cuts the model into that many pipeline stages (``stage_bounds``); the cuts
    change no arithmetic unless ``compression`` quantizes what crosses them.
    """

    microbatches: Annotated[int, Field(ge=1, le=MAX_BATCH)]
    stages: Annotated[int, Field(ge=1, le=MAX_LAYERS + 1)] = 1
    compression: CompressionSpec | None = None

    @model_validator(mode="after")
    def _cuts(self) -> ParallelSpec:
        if self.compression is not None and self.stages < 2:
            raise ValueError("compression applies where stages meet: stages must be at least 2")
        return self


def model_units(model: MLPSpec | CNNSpec | TransformerSpec) -> int:
    """The pieces a model is cut between: an MLP's linear layers (each with the activation
    after it), a transformer's blocks (the embeddings go with the first, the final norm and
    head with the last); a CNN is not cut (0)."""
    if isinstance(model, MLPSpec):
        return len(model.hidden) + 1
    if isinstance(model, TransformerSpec):
        return model.layers
    return 0


def stage_bounds(units: int, stages: int) -> list[tuple[int, int]]:
    """``[first, end)`` units of each stage: contiguous, earlier stages one more when the
    stages do not divide the units."""
    if not 1 <= stages <= max(units, 1):
        raise ValueError(f"{units} units cannot be cut into {stages} stages")
    base, extra = divmod(units, stages)
    out, first = [], 0
    for s in range(stages):
        end = first + base + (1 if s < extra else 0)
        out.append((first, end))
        first = end
    return out


def cut_sizes(model: MLPSpec | CNNSpec | TransformerSpec, stages: int) -> list[int]:
    """The number of values per sample that cross each of the ``stages − 1`` cuts."""
    bounds = stage_bounds(model_units(model), stages)
    if isinstance(model, MLPSpec):
        return [model.hidden[end - 1] for _, end in bounds[:-1]]
    assert isinstance(model, TransformerSpec)
    return [model.context * model.width] * (stages - 1)


# --- the spec ----------------------------------------------------------------


class TaskSpec(_Strict):
    """A training task, version 1: the single place where hyperparameters live."""

    version: Literal[1]
    name: Annotated[
        str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    ]
    dataset: DatasetRef
    model: ModelSpec
    loss: Literal["cross_entropy", "mse"]
    optimizer: OptimizerSpec
    schedule: ScheduleSpec
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)]
    batch_size: Annotated[int, Field(ge=1, le=MAX_BATCH)]
    seed: Annotated[int, Field(ge=0, lt=2**64)]
    checkpoint_interval: PositiveInt
    verification: VerificationSpec = VerificationSpec()
    parent: Cid | None = None
    # Absent from specs that do not split steps, whose canonical form (and so hash
    # and CID) stays what it was before the field existed.
    parallel: ParallelSpec | None = None

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        k = self.checkpoint_interval
        if self.steps % k:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of checkpoint_interval ({k})"
            )
        segments = self.steps // k
        chosen = self.verification.segments + self.verification.top_updates
        if chosen > segments:
            raise ValueError(
                f"verification samples {chosen} segments but the task has only {segments}"
            )
        if isinstance(self.schedule, LinearSchedule) and self.schedule.warmup > self.steps:
            raise ValueError(f"schedule.warmup ({self.schedule.warmup}) exceeds steps")
        if self.parallel is not None:
            self._check_parallel(self.parallel)
        if self.model.kind == "transformer" and self.loss != "cross_entropy":
            raise ValueError("a transformer is trained with loss cross_entropy")
        source = self.dataset.source
        if source is not None and source.builtin == "text" and self.model.kind != "transformer":
            raise ValueError("dataset source text needs model kind transformer")
        parameters = parameter_count(self.model)
        if parameters > MAX_PARAMETERS:
            raise ValueError(f"the model has {parameters} parameters (at most {MAX_PARAMETERS})")
        return self

    def _check_parallel(self, parallel: ParallelSpec) -> None:
        if self.batch_size % parallel.microbatches:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of "
                f"parallel.microbatches ({parallel.microbatches})"
            )
        if parallel.stages == 1:
            return
        units = model_units(self.model)
        if not units:
            raise ValueError(f"a {self.model.kind} is not cut into stages (mlp, transformer)")
        if parallel.stages > units:
            raise ValueError(
                f"parallel.stages ({parallel.stages}) exceeds the model's {units} "
                f"{'blocks' if self.model.kind == 'transformer' else 'layers'}"
            )
        compression = parallel.compression
        if compression is not None and compression.samples is not None:
            values = compression.samples * sum(cut_sizes(self.model, parallel.stages))
            if values > MAX_BUFFER_VALUES:
                raise ValueError(
                    f"aq buffers would hold {values} values (at most {MAX_BUFFER_VALUES})"
                )

    @property
    def segment_count(self) -> int:
        """S: the number of segments (checkpoints minus one)."""
        return self.steps // self.checkpoint_interval

    def canonical_bytes(self) -> bytes:
        """The canonical serialization: sorted-key compact JSON of every field, except the
        fields added after the first specs were written, which appear only when they differ
        from their default: ``model.activation`` only when not ``relu``, ``parallel`` only
        when set and, within it, ``stages`` only when not 1 and ``compression`` only when set
        (so specs written before those fields existed keep their hash and CID)."""
        data = self.model_dump(mode="json")
        model = data["model"]
        if model["activation"] == type(self.model).model_fields["activation"].default:
            del model["activation"]
        parallel = data.pop("parallel")
        if parallel is not None:
            if parallel["stages"] == 1:
                del parallel["stages"]
            if parallel["compression"] is None:
                del parallel["compression"]
            data["parallel"] = parallel
        return canonical_json(data)

    def spec_hash(self) -> bytes:
        """sha256 of the canonical serialization."""
        return hashlib.sha256(self.canonical_bytes()).digest()


def parameter_count(model: MLPSpec | CNNSpec | TransformerSpec) -> int:
    """Number of trainable scalars the architecture has."""
    if isinstance(model, MLPSpec):
        widths = [model.inputs, *model.hidden, model.outputs]
        return sum(a * b + b for a, b in itertools.pairwise(widths))
    if isinstance(model, CNNSpec):
        total, channels = 0, model.input[0]
        for conv in model.convs:
            total += conv.channels * channels * conv.kernel**2 + conv.channels
            channels = conv.channels
        features = math.prod(model.feature_map())
        widths = [features, *model.hidden, model.outputs]
        return total + sum(a * b + b for a, b in itertools.pairwise(widths))
    d = model.width
    block = 4 * d * d + 3 * d + 2 * 2 * d + (d * model.ff + model.ff) + (model.ff * d + d)
    return (
        (model.vocab + model.context) * d
        + model.layers * block
        + 2 * d
        + d * model.vocab
        + model.vocab
    )


def _error_lines(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "spec"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return "; ".join(lines)


def parse_spec(value: Any, origin: str = "spec") -> TaskSpec:
    """Validate a decoded spec (a mapping); raises ``SpecError`` naming every bad field."""
    if not isinstance(value, dict):
        raise SpecError(f"{origin}: a spec is a mapping of fields, got {type(value).__name__}")
    try:
        return TaskSpec.model_validate(value)
    except ValidationError as exc:
        raise SpecError(f"{origin}: {_error_lines(exc)}") from None


def spec_from_bytes(data: bytes, origin: str = "spec") -> TaskSpec:
    """Parse a spec from YAML or JSON bytes (JSON is YAML, so one parser reads both)."""
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{origin}: {len(data)} bytes is larger than a spec may be")
    try:
        # Strict JSON first: it keeps float literals exactly as written.
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        try:
            value = yaml.safe_load(data)
        except yaml.YAMLError as exc:
            raise SpecError(f"{origin}: not valid YAML or JSON: {exc}") from None
    return parse_spec(value, origin)


def load_spec(path: str | Path) -> TaskSpec:
    """Read and validate a spec file (YAML or JSON)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from None
    return spec_from_bytes(data, str(path))
