"""A task ready to train: the spec, its dataset (preprocessed) and where sample ``i`` comes from.

For example datasets, sample ``i`` is ``(inputs[i], targets[i])`` with inputs
preprocessed once as ``x · scale + shift`` in binary32 (two roundings). For a
sequence dataset of ``L`` tokens and a model context ``T``, there are
``N = L − T`` samples and sample ``i`` is the input ``tokens[i : i+T]`` with the
target ``tokens[i+1 : i+T+1]`` (next-character prediction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from agents.learning import datasets
from agents.learning.datasets import Dataset, DatasetError, MissingDatasetError
from agents.learning.initialization import initial_state
from agents.learning.layout import State
from agents.learning.order import batch_indices
from agents.learning.proof import ArtifactFileError, artifact_limits, decode_model, read_artifact
from agents.learning.spec import CNNSpec, MLPSpec, TaskSpec, TransformerSpec
from agents.store import ArtifactStore


@dataclass(frozen=True)
class Task:
    """A spec bound to its dataset; build it with ``Task.bind`` (which checks they fit)."""

    spec: TaskSpec
    dataset: Dataset
    inputs: np.ndarray
    targets: np.ndarray | None
    parent: State | None = None

    @classmethod
    def bind(cls, spec: TaskSpec, dataset: Dataset, parent: State | None = None) -> Task:
        """Check that ``dataset`` fits ``spec`` and preprocess it; raises ``DatasetError``."""
        problem = fit_problem(spec, dataset)
        if problem:
            raise DatasetError(f"dataset {dataset.name} does not fit task {spec.name}: {problem}")
        if dataset.kind == "sequence":
            return cls(spec, dataset, dataset.tensors["tokens"], None, parent)
        pre = spec.dataset.preprocessing
        inputs = dataset.tensors["inputs"]
        if (pre.scale, pre.shift) != (1.0, 0.0):
            inputs = inputs * np.float32(pre.scale) + np.float32(pre.shift)
        inputs = np.ascontiguousarray(inputs, np.float32)
        return cls(spec, dataset, inputs, dataset.tensors["targets"], parent)

    def initial_state(self) -> State:
        """Checkpoint 0 of this task (the seed's draws, or the parent model's parameters)."""
        return initial_state(self.spec, self.parent)

    @cached_property
    def samples(self) -> int:
        """N: the number of samples the data order permutes."""
        if self.targets is None:
            return int(self.inputs.shape[0]) - self.context
        return int(self.inputs.shape[0])

    @property
    def context(self) -> int:
        """T for a transformer, 0 otherwise."""
        model = self.spec.model
        return 0 if isinstance(model, (MLPSpec, CNNSpec)) else model.context

    def batches(self, first_step: int, count: int) -> np.ndarray:
        """Sample indices of ``count`` steps from ``first_step``, int64 ``[count, B]``."""
        return batch_indices(self.spec.seed, self.samples, self.spec.batch_size, first_step, count)

    def segment_batches(self, segment: int) -> np.ndarray:
        """The sample indices of every step of segment ``segment``."""
        k = self.spec.checkpoint_interval
        return self.batches(segment * k, k)


def fit_problem(spec: TaskSpec, dataset: Dataset) -> str | None:
    """Why ``dataset`` cannot train ``spec`` (``None`` when it can)."""
    problem = _shape_problem(spec, dataset)
    if problem is not None:
        return problem
    compression = spec.parallel.compression if spec.parallel is not None else None
    if compression is not None and compression.samples is not None:
        model = spec.model
        context = model.context if isinstance(model, TransformerSpec) else 0
        count = dataset.samples - context
        if compression.samples != count:
            return (
                f"parallel.compression.samples is {compression.samples}, "
                f"the dataset has {count} samples"
            )
    return None


def _shape_problem(spec: TaskSpec, dataset: Dataset) -> str | None:
    model = spec.model
    if model.kind == "transformer":
        if dataset.kind != "sequence" or dataset.alphabet is None:
            return "a transformer trains on a sequence dataset"
        if len(dataset.alphabet) > model.vocab:
            return f"the alphabet has {len(dataset.alphabet)} symbols, the vocab {model.vocab}"
        if dataset.samples <= model.context:
            return f"{dataset.samples} tokens do not fill one context of {model.context}"
        return None
    if dataset.kind == "sequence":
        return f"a {model.kind} trains on inputs and targets, not a token sequence"
    shape = tuple(dataset.tensors["inputs"].shape[1:])
    if isinstance(model, CNNSpec):
        if shape != tuple(model.input):
            return f"inputs are {list(shape)} per sample, the model takes {list(model.input)}"
    elif math.prod(shape) != model.inputs:
        return f"inputs have {math.prod(shape)} features per sample, the model takes {model.inputs}"
    if spec.loss == "cross_entropy":
        if dataset.kind != "classification":
            return "loss cross_entropy needs a classification dataset"
        if dataset.classes != model.outputs:
            return f"the dataset has {dataset.classes} classes, the model {model.outputs} outputs"
        return None
    if dataset.kind != "regression":
        return "loss mse needs a regression dataset"
    outputs = dataset.tensors["targets"].shape[1]
    if outputs != model.outputs:
        return f"targets have {outputs} values per sample, the model {model.outputs} outputs"
    return None


def open_task(spec: TaskSpec, store: ArtifactStore, *, keep: bool = True) -> Task:
    """The spec bound to its dataset (and parent model) read from ``store``.

    A dataset missing from the store is rebuilt from the spec's ``source`` when it
    has one, checked against the spec's CID, and (with ``keep``) added to the store;
    so is one whose copy in a proof directory is damaged (``ArtifactFileError``).
    Every read is bounded by what the spec implies. Raises ``MissingDatasetError``
    when the dataset is not at hand and cannot be rebuilt.
    """
    dataset = _dataset(spec, store, keep)
    parent = None
    if spec.parent is not None:
        what = f"parent model {spec.parent}"
        limits = artifact_limits(spec)
        parent = decode_model(
            read_artifact(store, spec.parent, limits.model, what),
            what,
            max_header_bytes=limits.model_header,
        )
    return Task.bind(spec, dataset, parent)


def _dataset(spec: TaskSpec, store: ArtifactStore, keep: bool) -> Dataset:
    cid = spec.dataset.cid
    source = spec.dataset.source
    try:
        if store.available(cid):
            return datasets.load(store, cid, spec)
    except ArtifactFileError:
        if source is None:
            raise
    if source is None:
        raise MissingDatasetError(f"dataset {cid} is not in the store and the spec has no source")
    built = datasets.build(source)
    got = datasets.dataset_cid(built)
    if got != cid:
        raise DatasetError(
            f"the dataset built from the spec's source has CID {got}, the spec names {cid}"
        )
    if not keep:
        return built
    datasets.package(built, store)
    return datasets.load(store, cid, spec)
