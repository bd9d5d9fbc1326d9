"""Datasets: built without downloads, packaged as artifacts with a CID, read back strictly.

A dataset artifact is two artifacts: its tensors, a canonical safetensors file
(``agents.learning.tensorfile``), and a small JSON header naming them. The
dataset's CID is the header's CID (canonical JSON):

    {"format": "veritrain-dataset/1", "name": ...,
     "kind": "classification" | "regression" | "sequence", "samples": N,
     "classes": C | null, "alphabet": "..." | null, "tensors": "<CID>"}

Tensors by kind:

- classification: ``inputs`` float32 ``[N, ...]``, ``targets`` int64 ``[N]`` in ``[0, C)``;
- regression: ``inputs`` float32 ``[N, ...]``, ``targets`` float32 ``[N, D]``;
- sequence: ``tokens`` int64 ``[N]``, indices into ``alphabet`` (a character-level corpus).

Built-in datasets (``source.builtin`` in a spec), each a pure function of its parameters:

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, values 0–16),
  inputs ``[N, 1, 8, 8]``;
- ``synthetic-classification`` / ``synthetic-regression``: integer inputs ``x`` in
  ``[−128, 127]`` and an integer teacher ``W`` from the task PRNG (labels
  ``dataset/inputs`` and ``dataset/teacher``, the source's seed); inputs are
  ``x · 2**−7``, classes are ``argmax(x·W)`` (exact integer arithmetic, first
  maximum), regression targets are ``float32(x·W / (2**14 · features))``;
- ``text``: sentences from a small fixed grammar, words drawn from the PRNG
  (label ``dataset/text``), over the alphabet ``" .abcdefghijklmnopqrstuvwxyz"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.errors import VeritrainError
from agents.learning import strictjson, tensorfile
from agents.learning.prng import Stream, words
from agents.learning.proof import read_artifact
from agents.learning.spec import CNNSpec, DatasetSource, MLPSpec, TaskSpec
from agents.store import ArtifactStore, canonical_json, cid_of_bytes

FORMAT: Literal["veritrain-dataset/1"] = "veritrain-dataset/1"
TEXT_ALPHABET = " .abcdefghijklmnopqrstuvwxyz"
MAX_SAMPLES = 50_000_000
# A header with the longest alphabet (65,536 characters of up to 4 UTF-8 bytes) and room.
MAX_HEADER_BYTES = 4096 + 4 * 65_536
_TENSORS_HEADER = 4096
Kind = Literal["classification", "regression", "sequence"]


class DatasetError(VeritrainError):
    """A dataset artifact is missing, malformed, or does not fit the task."""


class MissingDatasetError(DatasetError):
    """A dataset is in no store at hand and its spec gives no recipe to rebuild it."""


class DatasetHeader(BaseModel):
    """The JSON header of a dataset artifact."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    format: Literal["veritrain-dataset/1"]
    name: Annotated[str, Field(min_length=1, max_length=64)]
    kind: Kind
    samples: Annotated[int, Field(ge=1, le=MAX_SAMPLES)]
    classes: Annotated[int, Field(ge=2, le=65_536)] | None = None
    alphabet: Annotated[str, Field(min_length=2, max_length=65_536)] | None = None
    tensors: Annotated[str, Field(min_length=46, max_length=128)]


@dataclass(frozen=True)
class Dataset:
    """A dataset in memory; see the module docstring for the tensors of each kind."""

    name: str
    kind: Kind
    tensors: dict[str, np.ndarray]
    classes: int | None = None
    alphabet: str | None = None

    @property
    def samples(self) -> int:
        """N: samples (classification, regression) or tokens (sequence)."""
        key = "tokens" if self.kind == "sequence" else "inputs"
        return int(self.tensors[key].shape[0])


# --- building ----------------------------------------------------------------


def digits() -> Dataset:
    """scikit-learn's bundled digits: inputs float32 ``[1797, 1, 8, 8]`` (0–16), 10 classes."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn loads slowly

    bunch = load_digits()
    inputs = np.asarray(bunch.images, dtype=np.float32).reshape(-1, 1, 8, 8)
    targets = np.asarray(bunch.target, dtype=np.int64)
    return Dataset("digits", "classification", {"inputs": inputs, "targets": targets}, classes=10)


def _integers(seed: int, label: str, count: int) -> np.ndarray:
    """``count`` integers in [−128, 127]: the top byte of each PRNG word, minus 128."""
    return (words(seed, label, count) >> np.uint64(56)).astype(np.int64) - 128


def synthetic(
    kind: Literal["classification", "regression"],
    samples: int,
    features: int,
    outputs: int,
    seed: int,
) -> Dataset:
    """A teacher-labelled dataset from the PRNG (exact integer arithmetic; see module docstring)."""
    x = _integers(seed, "dataset/inputs", samples * features).reshape(samples, features)
    teacher = _integers(seed, "dataset/teacher", features * outputs).reshape(features, outputs)
    scores = x @ teacher  # int64: exact
    inputs = x.astype(np.float32) * np.float32(2.0**-7)
    if kind == "classification":
        targets = np.argmax(scores, axis=1).astype(np.int64)
        tensors = {"inputs": inputs, "targets": targets}
        return Dataset("synthetic-classification", kind, tensors, classes=outputs)
    values = (scores.astype(np.float64) / (2.0**14 * features)).astype(np.float32)
    return Dataset("synthetic-regression", kind, {"inputs": inputs, "targets": values})


_SUBJECTS = (
    "the cat",
    "a dog",
    "the old man",
    "my friend",
    "a small bird",
    "the teacher",
    "she",
    "he",
)
_VERBS = ("sees", "likes", "finds", "keeps", "follows", "paints", "reads", "hears")
_OBJECTS = (
    "the ball",
    "a red box",
    "the river",
    "a long letter",
    "the garden",
    "the moon",
    "a song",
)
_ENDINGS = ("", " today", " again", " at night", " in the morning", " with care")


def text(length: int, seed: int) -> Dataset:
    """A character corpus of ``length`` tokens: grammar sentences joined by spaces."""
    stream = Stream(seed, "dataset/text")
    pieces: list[str] = []
    size = 0
    while size < length:
        sentence = " ".join(
            (
                _SUBJECTS[stream.below(len(_SUBJECTS))],
                _VERBS[stream.below(len(_VERBS))],
                _OBJECTS[stream.below(len(_OBJECTS))],
            )
        )
        sentence += _ENDINGS[stream.below(len(_ENDINGS))] + ". "
        pieces.append(sentence)
        size += len(sentence)
    corpus = "".join(pieces)[:length]
    lookup = {c: i for i, c in enumerate(TEXT_ALPHABET)}
    tokens = np.array([lookup[c] for c in corpus], dtype=np.int64)
    return Dataset("text", "sequence", {"tokens": tokens}, alphabet=TEXT_ALPHABET)


def build(source: DatasetSource) -> Dataset:
    """The dataset a spec's ``source`` describes."""
    if source.builtin == "digits":
        return digits()
    if source.builtin == "text":
        return text(source.samples or 20_000, source.seed)
    kind: Literal["classification", "regression"] = (
        "classification" if source.builtin == "synthetic-classification" else "regression"
    )
    outputs = (source.classes if kind == "classification" else source.outputs) or (
        2 if kind == "classification" else 1
    )
    return synthetic(kind, source.samples or 1000, source.features or 16, outputs, source.seed)


# --- artifacts ---------------------------------------------------------------


def header_of(dataset: Dataset, tensors_cid: str) -> dict[str, object]:
    """The JSON header of ``dataset`` whose tensors are stored under ``tensors_cid``."""
    return DatasetHeader(
        format=FORMAT,
        name=dataset.name,
        kind=dataset.kind,
        samples=dataset.samples,
        classes=dataset.classes,
        alphabet=dataset.alphabet,
        tensors=tensors_cid,
    ).model_dump(mode="json")


def package(dataset: Dataset, store: ArtifactStore) -> str:
    """Store the dataset's tensors and header; return the dataset CID (the header's)."""
    tensors_cid = store.put_bytes(tensorfile.encode(dataset.tensors))
    return store.put_json(header_of(dataset, tensors_cid))


def dataset_cid(dataset: Dataset) -> str:
    """The CID ``package`` would return, computed without storing anything."""
    tensors_cid = cid_of_bytes(tensorfile.encode(dataset.tensors))
    return cid_of_bytes(canonical_json(header_of(dataset, tensors_cid)))


def sample_bytes(spec: TaskSpec) -> int:
    """The most bytes one sample of a dataset that fits ``spec`` takes in the tensors file."""
    model = spec.model
    if not isinstance(model, (MLPSpec, CNNSpec)):
        return 8  # one int64 token
    features = model.inputs if isinstance(model, MLPSpec) else int(np.prod(model.input))
    return 4 * features + max(8, 4 * model.outputs)


def load(store: ArtifactStore, cid: str, spec: TaskSpec | None = None) -> Dataset:
    """Read and check the dataset named ``cid``; raises ``DatasetError`` for anything malformed.

    Reads are bounded: the header to ``MAX_HEADER_BYTES``, the tensors to what the
    header's sample count implies for ``spec``'s model (when given) or the format's
    largest size; nothing larger is read into memory.
    """
    what = f"dataset {cid}"
    raw = strictjson.loads(
        read_artifact(store, cid, MAX_HEADER_BYTES, what), what, max_depth=1, error=DatasetError
    )
    try:
        header = DatasetHeader.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DatasetError(f"dataset {cid}: header field {where}: {first['msg']}") from None
    per_sample = sample_bytes(spec) if spec is not None else tensorfile.MAX_TENSOR_BYTES
    limit = min(8 + _TENSORS_HEADER + header.samples * per_sample, tensorfile.MAX_TENSOR_BYTES)
    data = read_artifact(store, header.tensors, limit, f"{what} tensors")
    try:
        tensors, _ = tensorfile.decode(data, f"{what} tensors", max_header_bytes=_TENSORS_HEADER)
    except tensorfile.TensorFileError as exc:
        raise DatasetError(str(exc)) from None
    dataset = Dataset(header.name, header.kind, tensors, header.classes, header.alphabet)
    problem = _problem(header, tensors)
    if problem:
        raise DatasetError(f"dataset {cid}: {problem}")
    return dataset


def _problem(header: DatasetHeader, tensors: dict[str, np.ndarray]) -> str | None:
    n = header.samples
    if header.kind == "sequence":
        if set(tensors) != {"tokens"}:
            return "a sequence dataset has exactly one tensor, tokens"
        tokens = tensors["tokens"]
        if header.alphabet is None or header.classes is not None:
            return "a sequence dataset has an alphabet and no classes"
        if tokens.dtype != np.int64 or tokens.shape != (n,):
            return f"tokens must be int64 [{n}]"
        if n and (tokens.min() < 0 or tokens.max() >= len(header.alphabet)):
            return "a token is outside the alphabet"
        return None
    if set(tensors) != {"inputs", "targets"}:
        return "a dataset of examples has exactly two tensors, inputs and targets"
    inputs, targets = tensors["inputs"], tensors["targets"]
    if header.alphabet is not None:
        return "only sequence datasets have an alphabet"
    if inputs.dtype != np.float32 or inputs.ndim < 2 or inputs.shape[0] != n:
        return f"inputs must be float32 [{n}, ...]"
    if not np.isfinite(inputs).all():
        return "inputs hold NaN or infinite values"
    if header.kind == "classification":
        if header.classes is None:
            return "a classification dataset names its classes"
        if targets.dtype != np.int64 or targets.shape != (n,):
            return f"targets must be int64 [{n}]"
        if targets.min() < 0 or targets.max() >= header.classes:
            return f"a target is outside [0, {header.classes})"
        return None
    if header.classes is not None:
        return "a regression dataset has no classes"
    if targets.dtype != np.float32 or targets.ndim != 2 or targets.shape[0] != n:
        return f"targets must be float32 [{n}, outputs]"
    if not np.isfinite(targets).all():
        return "targets hold NaN or infinite values"
    return None
