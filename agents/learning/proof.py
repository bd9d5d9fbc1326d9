"""The proof of learning: its manifest, its artifacts, and its export as a directory.

A proof is a JSON manifest (format ``veritrain-proof/1``, schema in ``Manifest``
and docs/proof.md) that names, by CID, the spec, every checkpoint (with its
step and state root), every segment (its two checkpoints and the artifact of
its batch indices) and the final model, plus the checkpoint root: the Merkle
root (PROTOCOL.md §4) over the checkpoint state roots in order, which is what
a solver commits on chain next to the manifest's CID.

Artifacts are canonical safetensors files (``agents.learning.tensorfile``):

- checkpoint: the whole state (``agents.learning.layout``), metadata
  ``{"format": "veritrain-checkpoint/1"}``;
- batches: one int64 tensor ``batches`` ``[k, B]``, metadata
  ``{"format": "veritrain-batches/1", "first_step": "<t>"}``;
- model: only the ``param/`` tensors, metadata ``{"format": "veritrain-model/1"}``.

The on-disk export (``ProofDirectory``) is a directory holding ``manifest.json``
and ``artifacts/<CID>``, one file per artifact whose content has that CID; it
also holds the spec and the dataset, so an auditor needs nothing else.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.commitment import merkle_root
from agents.errors import VeritrainError
from agents.learning import tensorfile
from agents.learning.layout import State, parameters
from agents.store import AddOptions, ArtifactStore, StoreError, canonical_json, cid_of_bytes

FORMAT = "veritrain-proof/1"
CHECKPOINT_FORMAT = "veritrain-checkpoint/1"
BATCHES_FORMAT = "veritrain-batches/1"
MODEL_FORMAT = "veritrain-model/1"
MAX_MANIFEST_BYTES = 64 << 20
MAX_CHECKPOINTS = 1 << 20
MANIFEST_NAME = "manifest.json"
_CID_TEXT = re.compile(r"^[A-Za-z0-9]{46,128}$")

Cid = Annotated[str, Field(pattern=_CID_TEXT.pattern)]
Root = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, lt=2**24)]


class ProofError(VeritrainError):
    """A proof (manifest or artifact) is unreadable or malformed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckpointEntry(_Strict):
    """Checkpoint ``index`` holds the state after ``step`` steps; ``state_root`` commits to it."""

    index: Count
    step: Count
    cid: Cid
    state_root: Root


class SegmentEntry(_Strict):
    """Segment ``index`` runs from checkpoint ``start`` to ``end`` on the batches in ``batches``."""

    index: Count
    start: Count
    end: Count
    batches: Cid


class Manifest(_Strict):
    """A proof of learning (format ``veritrain-proof/1``)."""

    format: Literal["veritrain-proof/1"]
    spec: Cid
    backend: Annotated[str, Field(min_length=1, max_length=64)]
    steps: Count
    checkpoint_interval: Annotated[int, Field(ge=1, lt=2**24)]
    checkpoints: Annotated[list[CheckpointEntry], Field(max_length=MAX_CHECKPOINTS)]
    segments: Annotated[list[SegmentEntry], Field(max_length=MAX_CHECKPOINTS)]
    final_model: Cid
    checkpoint_root: Root

    def to_json(self) -> dict[str, Any]:
        """The manifest as plain JSON data."""
        return self.model_dump(mode="json")

    def cids(self) -> list[str]:
        """Every artifact the manifest names, spec first."""
        out = [self.spec, self.final_model]
        out += [c.cid for c in self.checkpoints]
        out += [s.batches for s in self.segments]
        return out


def checkpoint_root(state_roots: list[bytes]) -> bytes:
    """The Merkle root over checkpoint state roots, in checkpoint order."""
    return merkle_root(state_roots)


def parse_manifest(data: bytes, origin: str = "manifest") -> Manifest:
    """Validate manifest bytes; raises ``ProofError`` naming the first bad field."""
    if len(data) > MAX_MANIFEST_BYTES:
        raise ProofError(f"{origin}: {len(data)} bytes is larger than a manifest may be")
    try:
        return Manifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise ProofError(f"{origin}: {where}: {first['msg']}") from None


# --- artifacts ---------------------------------------------------------------


def encode_checkpoint(state: Mapping[str, np.ndarray]) -> bytes:
    """A checkpoint artifact's bytes."""
    return tensorfile.encode(state, {"format": CHECKPOINT_FORMAT})


def encode_batches(batches: np.ndarray, first_step: int) -> bytes:
    """A batches artifact's bytes."""
    metadata = {"format": BATCHES_FORMAT, "first_step": str(first_step)}
    return tensorfile.encode({"batches": np.asarray(batches, dtype=np.int64)}, metadata)


def encode_model(state: Mapping[str, np.ndarray]) -> bytes:
    """A model artifact's bytes: the parameters of ``state``."""
    return tensorfile.encode(parameters(state), {"format": MODEL_FORMAT})


def _decode(data: bytes, expected: str, what: str) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    tensors, metadata = tensorfile.decode(data, what)
    if metadata.get("format") != expected:
        raise ProofError(f"{what}: format {metadata.get('format')!r}, expected {expected!r}")
    return tensors, metadata


def decode_checkpoint(data: bytes, what: str = "checkpoint") -> State:
    """A checkpoint's state (read-only arrays); checks only the file format."""
    tensors, _ = _decode(data, CHECKPOINT_FORMAT, what)
    if any(t.dtype != np.float32 for t in tensors.values()):
        raise ProofError(f"{what}: every state tensor is float32")
    return tensors


def decode_batches(data: bytes, what: str = "batches") -> tuple[np.ndarray, int]:
    """Batch indices ``[k, B]`` and the step they start at."""
    tensors, metadata = _decode(data, BATCHES_FORMAT, what)
    batches = tensors.get("batches")
    if set(tensors) != {"batches"} or batches is None or batches.dtype != np.int64:
        raise ProofError(f"{what}: holds exactly one int64 tensor, batches")
    if batches.ndim != 2:
        raise ProofError(f"{what}: batches must be [steps, batch size]")
    first = metadata.get("first_step", "")
    if not first.isdigit():
        raise ProofError(f"{what}: first_step must be a decimal integer")
    return batches, int(first)


def decode_model(data: bytes, what: str = "model") -> State:
    """A model's parameters."""
    tensors, _ = _decode(data, MODEL_FORMAT, what)
    if any(t.dtype != np.float32 for t in tensors.values()):
        raise ProofError(f"{what}: every parameter is float32")
    return tensors


# --- the directory export ------------------------------------------------------


class ProofDirectory(ArtifactStore):
    """A proof exported to a directory: ``manifest.json`` and ``artifacts/<CID>``.

    It is an ``ArtifactStore`` (CIDs as ``ipfs add`` computes them with default
    options), so training writes into it and verification reads from it like any
    other store; every read recomputes the artifact's CID.
    """

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False) -> None:
        self.root = Path(root)
        self.artifacts = self.root / "artifacts"
        if create:
            try:
                self.artifacts.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create proof directory {self.root}: {exc}") from None
        elif not self.root.is_dir():
            raise StoreError(f"proof directory {self.root} does not exist")

    def _path(self, cid: str) -> Path:
        if not _CID_TEXT.match(cid):
            raise StoreError(f"{cid!r} is not a CID")
        return self.artifacts / cid

    def put_bytes(self, data: bytes, options: AddOptions | None = None) -> str:
        if options is not None and options != AddOptions():
            raise StoreError("a proof directory names artifacts by default-option CIDs only")
        cid = cid_of_bytes(data)
        # Always (re)written: a damaged file left by a crash is replaced, never trusted.
        write_atomically(self._path(cid), data)
        return cid

    def put_file(self, path: Path, options: AddOptions | None = None) -> str:
        return self.put_bytes(Path(path).read_bytes(), options)

    def open(self, cid: str) -> Iterator[bytes]:
        yield self.read(cid)

    def read(self, cid: str) -> bytes:
        """The artifact's bytes, after checking that they have the CID ``cid``."""
        path = self._path(cid)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"artifact {cid} is not in {self.artifacts}") from None
        if cid_of_bytes(data) != cid:
            raise StoreError(f"artifact {cid} in {self.artifacts} does not match its CID")
        return data

    def get_bytes(self, cid: str) -> bytes:
        return self.read(cid)

    def has(self, cid: str) -> bool:
        return self._path(cid).is_file()

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise StoreError(f"cannot pin {cid}: not in {self.artifacts}")

    def unpin(self, cid: str) -> None:
        """Nothing to do: a proof directory keeps everything it holds."""

    def pins(self) -> list[str]:
        return sorted(p.name for p in self.artifacts.iterdir() if _CID_TEXT.match(p.name))

    def write_manifest(self, manifest: Manifest) -> str:
        """Store the manifest as an artifact and as ``manifest.json``; return its CID."""
        data = canonical_json(manifest.to_json())
        cid = self.put_bytes(data)
        write_atomically(self.root / MANIFEST_NAME, data)
        return cid

    def manifest(self) -> Manifest:
        """The manifest in ``manifest.json``."""
        path = self.root / MANIFEST_NAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ProofError(f"{self.root} holds no {MANIFEST_NAME}") from None
        return parse_manifest(data, str(path))

    def manifest_cid(self) -> str:
        """The CID of ``manifest.json`` (what a solver commits)."""
        return cid_of_bytes((self.root / MANIFEST_NAME).read_bytes())


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    # One temporary name per process and thread: cheaper than mkstemp, and no two
    # writers share one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        with tmp.open("wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
