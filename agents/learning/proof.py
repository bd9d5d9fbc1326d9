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
import errno
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agents.commitment import merkle_root
from agents.errors import VeritrainError
from agents.files import write_atomically
from agents.learning import strictjson, tensorfile
from agents.learning.layout import PARAM_PREFIX, State, parameters, state_shapes
from agents.learning.spec import MAX_SPEC_BYTES, TaskSpec
from agents.store import (
    AddOptions,
    ArtifactStore,
    BackendError,
    Retrieval,
    StoreError,
    UnavailableError,
    canonical_json,
    cid_of_bytes,
)

FORMAT: Literal["veritrain-proof/1"] = "veritrain-proof/1"
CHECKPOINT_FORMAT = "veritrain-checkpoint/1"
BATCHES_FORMAT = "veritrain-batches/1"
MODEL_FORMAT = "veritrain-model/1"
MAX_MANIFEST_BYTES = 64 << 20
# What a proof directory reads when nobody says how much an artifact may hold.
MAX_ARTIFACT_BYTES = 1 << 40
MAX_CHECKPOINTS = 1 << 20
MANIFEST_NAME = "manifest.json"
_CID_TEXT = re.compile(r"^[A-Za-z0-9]{46,128}$")

Cid = Annotated[str, Field(pattern=_CID_TEXT.pattern)]
Root = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0, lt=2**24)]


class ProofError(VeritrainError):
    """A proof (manifest or artifact) is unreadable or malformed: a reason to reject it."""


class ArtifactFileError(ProofError, StoreError):
    """A file of a proof directory is missing, not a regular file inside it, larger than the
    spec allows, or does not match its CID."""


class MissingArtifactError(ArtifactFileError):
    """An artifact is not in the proof directory."""


class _Strict(BaseModel):
    # Strict: a step written "4", 4.0 or true is not the integer 4.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


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


def build_manifest(
    *,
    spec_cid: str,
    backend: str,
    steps: int,
    checkpoint_interval: int,
    checkpoints: list[CheckpointEntry],
    segments: list[SegmentEntry],
    final_model: str,
) -> Manifest:
    """The manifest of a proof (format ``FORMAT``), its checkpoint root computed from the
    checkpoints' state roots: the one place a manifest is put together."""
    roots = [bytes.fromhex(c.state_root) for c in checkpoints]
    return Manifest(
        format=FORMAT,
        spec=spec_cid,
        backend=backend,
        steps=steps,
        checkpoint_interval=checkpoint_interval,
        checkpoints=checkpoints,
        segments=segments,
        final_model=final_model,
        checkpoint_root=checkpoint_root(roots).hex(),
    )


def parse_manifest(
    data: bytes | bytearray | memoryview, origin: str = "manifest", *, limit: int | None = None
) -> Manifest:
    """Validate manifest bytes (strict JSON, at most ``limit`` bytes when given);
    raises ``ProofError`` naming the first bad field."""
    bound = MAX_MANIFEST_BYTES if limit is None else min(limit, MAX_MANIFEST_BYTES)
    if len(data) > bound:
        raise ProofError(f"{origin}: {len(data)} bytes is larger than the manifest may be")
    # {"checkpoints": [{...}]}: three levels.
    value = strictjson.loads(data, origin, max_depth=3, error=ProofError)
    try:
        return Manifest.model_validate(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "manifest"
        raise ProofError(f"{origin}: {where}: {first['msg']}") from None


# --- what the spec implies ----------------------------------------------------------------

# Room for a header's fixed part, and per tensor for its entry beyond twice its name: a
# canonical entry with the largest offsets and eight dimensions is about 180 bytes.
_HEADER_BASE = 4096
_HEADER_PER_TENSOR = 256
# A manifest entry with the longest CID and the largest numbers is about 260 bytes of
# canonical JSON; twice that leaves room for a writer's whitespace.
_MANIFEST_BASE = 4096
_MANIFEST_PER_ENTRY = 512


@dataclass(frozen=True)
class ArtifactLimits:
    """The largest size, in bytes, of each artifact of a proof of one spec.

    Data sizes are exact (the spec fixes every shape); headers get the room above,
    so a proof can make a reader allocate at most these sizes, whatever it holds.
    """

    manifest: int
    checkpoint: int
    checkpoint_header: int
    batches: int
    batches_header: int
    model: int
    model_header: int


def _header_room(names: list[str]) -> int:
    return _HEADER_BASE + sum(2 * len(n.encode()) + _HEADER_PER_TENSOR for n in names)


def artifact_limits(spec: TaskSpec) -> ArtifactLimits:
    """The sizes a proof of ``spec`` may have (see ``ArtifactLimits``)."""
    shapes = state_shapes(spec)
    state_bytes = {name: 4 * int(np.prod(shape, dtype=np.int64)) for name, shape in shapes.items()}
    params = [n for n in shapes if n.startswith(PARAM_PREFIX)]
    checkpoint_header = _header_room(list(shapes))
    model_header = _header_room(params)
    batches_header = _header_room(["batches"])
    entries = 2 * spec.segment_count + 1
    return ArtifactLimits(
        manifest=min(MAX_MANIFEST_BYTES, _MANIFEST_BASE + _MANIFEST_PER_ENTRY * entries),
        checkpoint=8 + checkpoint_header + sum(state_bytes.values()),
        checkpoint_header=checkpoint_header,
        batches=8 + batches_header + 8 * spec.checkpoint_interval * spec.batch_size,
        batches_header=batches_header,
        model=8 + model_header + sum(state_bytes[n] for n in params),
        model_header=model_header,
    )


def cid_limits(manifest: Manifest, limits: ArtifactLimits) -> list[int]:
    """The largest size of each artifact ``manifest.cids()`` names, in the same order."""
    return (
        [MAX_SPEC_BYTES, limits.model]
        + [limits.checkpoint] * len(manifest.checkpoints)
        + [limits.batches] * len(manifest.segments)
    )


def read_artifact(store: ArtifactStore, cid: str, limit: int, what: str) -> bytes | memoryview:
    """The artifact ``cid``, read in pieces and refused as soon as it exceeds ``limit`` bytes.

    Raises ``ProofError`` when the artifact is larger than ``limit`` or its DAG cannot be
    walked; the store's own errors (``StoreError`` and its kinds) pass through.
    """
    if isinstance(store, ProofDirectory):
        return store.read(cid, limit=limit, what=what)
    pieces: list[bytes] = []
    total = 0
    try:
        for piece in store.open(cid):
            total += len(piece)
            if total > limit:
                raise ProofError(f"{what} is larger than the {limit} bytes the spec allows")
            pieces.append(piece)
    except RecursionError:
        raise ProofError(f"{what}: the artifact's DAG is nested too deeply") from None
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def read_manifest(store: ArtifactStore, cid: str, limit: int, what: str) -> Manifest:
    """The committed manifest ``cid``, read within ``limit`` bytes and parsed strictly.

    The store first retrieves the manifest within its retrieval timeout (a Kubo node asks
    its peers), so a CID that nobody serves is a missing manifest (``UnavailableError``,
    a ``MissingBlockError``) rather than a wait that ends as the store's own failure.
    Raises ``ProofError`` for a manifest that is too large or malformed; the store's
    errors pass through.
    """
    try:
        store.require_available(cid, Retrieval(max_bytes=limit))
    except UnavailableError as exc:
        raise UnavailableError(f"{what} is not available: {exc}") from exc
    return parse_manifest(read_artifact(store, cid, limit, what), what, limit=limit)


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


Buffer = bytes | bytearray | memoryview
# A step number as the batches metadata writes it: ASCII digits, no sign, no leading zero.
_STEP_TEXT = re.compile(r"^(0|[1-9][0-9]{0,9})$", re.ASCII)


def _decode(
    data: Buffer, expected: str, what: str, max_header_bytes: int | None
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    bound = tensorfile.MAX_HEADER_BYTES if max_header_bytes is None else max_header_bytes
    tensors, metadata = tensorfile.decode(data, what, max_header_bytes=bound)
    if metadata.get("format") != expected:
        shown = str(metadata.get("format"))[:64]
        raise ProofError(f"{what}: format {shown!r}, expected {expected!r}")
    return tensors, metadata


def decode_checkpoint(
    data: Buffer, what: str = "checkpoint", *, max_header_bytes: int | None = None
) -> State:
    """A checkpoint's state (read-only arrays); checks only the file format."""
    tensors, _ = _decode(data, CHECKPOINT_FORMAT, what, max_header_bytes)
    if any(t.dtype != np.float32 for t in tensors.values()):
        raise ProofError(f"{what}: every state tensor is float32")
    return tensors


def decode_batches(
    data: Buffer, what: str = "batches", *, max_header_bytes: int | None = None
) -> tuple[np.ndarray, int]:
    """Batch indices ``[k, B]`` and the step they start at."""
    tensors, metadata = _decode(data, BATCHES_FORMAT, what, max_header_bytes)
    batches = tensors.get("batches")
    if set(tensors) != {"batches"} or batches is None or batches.dtype != np.int64:
        raise ProofError(f"{what}: holds exactly one int64 tensor, batches")
    if batches.ndim != 2:
        raise ProofError(f"{what}: batches must be [steps, batch size]")
    first = metadata.get("first_step", "")
    if not _STEP_TEXT.match(first):
        raise ProofError(f"{what}: first_step {first[:32]!r} is not a step number")
    return batches, int(first)


def decode_model(
    data: Buffer, what: str = "model", *, max_header_bytes: int | None = None
) -> State:
    """A model's parameters."""
    tensors, _ = _decode(data, MODEL_FORMAT, what, max_header_bytes)
    if any(t.dtype != np.float32 for t in tensors.values()):
        raise ProofError(f"{what}: every parameter is float32")
    return tensors


# --- the directory export ------------------------------------------------------


_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then refuses it).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_READ_PIECE = 1 << 20
ARTIFACTS_NAME = "artifacts"


class ProofDirectory(ArtifactStore):
    """A proof exported to a directory: ``manifest.json`` and ``artifacts/<CID>``.

    It is an ``ArtifactStore`` (CIDs as ``ipfs add`` computes them with default
    options), so training writes into it and verification reads from it like any
    other store; every read recomputes the artifact's CID.

    Reads follow the path given for the directory itself (the caller chose it) and
    nothing else: ``artifacts/`` must be a directory and every file read a regular
    file, none of them a symbolic link, so a proof cannot make its reader read
    outside it, wait on a FIFO or a device, or allocate more than the size asked
    for. Opened with ``read_only``, it refuses every write: a verifier leaves the
    proof it verifies as it found it.
    """

    def __init__(
        self, root: str | os.PathLike[str], *, create: bool = False, read_only: bool = False
    ) -> None:
        if create and read_only:
            raise ValueError("a proof directory is created to be written")
        self.root = Path(root)
        self.artifacts = self.root / ARTIFACTS_NAME
        self.read_only = read_only
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

    def _writable(self) -> None:
        if self.read_only:
            raise StoreError(f"proof directory {self.root} is open for reading only")

    # -- reading, inside the directory only ---------------------------------------------

    def _fault(self, exc: OSError, what: str) -> StoreError:
        """An OS error while reading: the reader's own trouble (permissions, its disk)."""
        return BackendError(f"cannot read {what} in {self.root}: {exc.strerror or exc}")

    @contextlib.contextmanager
    def _directory(self, artifacts: bool) -> Iterator[int]:
        """A descriptor of the root (or of ``artifacts/`` in it, never through a link)."""
        try:
            root = os.open(self.root, _DIRECTORY_FLAGS)
        except OSError as exc:
            raise self._fault(exc, "the proof directory") from None
        try:
            if not artifacts:
                yield root
                return
            try:
                inner = os.open(ARTIFACTS_NAME, _DIRECTORY_FLAGS | os.O_NOFOLLOW, dir_fd=root)
            except FileNotFoundError:
                raise ArtifactFileError(f"{self.root} has no {ARTIFACTS_NAME}/ directory") from None
            except OSError as exc:
                if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                    kind = (
                        "a symbolic link" if _is_link(ARTIFACTS_NAME, root) else "not a directory"
                    )
                    raise ArtifactFileError(f"{self.artifacts} is {kind}") from None
                raise self._fault(exc, ARTIFACTS_NAME) from None
            try:
                yield inner
            finally:
                os.close(inner)
        finally:
            os.close(root)

    def _read_file(self, directory: int, name: str, limit: int, what: str) -> memoryview:
        """A regular file's bytes (at most ``limit``), read in pieces into one buffer."""
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=directory)
        except FileNotFoundError:
            raise MissingArtifactError(f"{what} is not in {self.root}") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ArtifactFileError(f"{what} is a symbolic link") from None
            if exc.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR):
                raise ArtifactFileError(f"{what} is not a regular file") from None
            raise self._fault(exc, what) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ArtifactFileError(f"{what} is not a regular file")
            if info.st_size > limit:
                raise ArtifactFileError(
                    f"{what} is {info.st_size} bytes, more than the {limit} the spec allows"
                )
            buffer = bytearray(info.st_size)
            view = memoryview(buffer)
            done = 0
            while done < len(buffer):
                count = os.readv(fd, [view[done : done + _READ_PIECE]])
                if count == 0:
                    break
                done += count
            if done != len(buffer) or os.read(fd, 1):
                raise ArtifactFileError(f"{what} changed while it was read")
        except OSError as exc:
            raise self._fault(exc, what) from None
        finally:
            os.close(fd)
        return view.toreadonly()

    def read(
        self, cid: str, *, limit: int = MAX_ARTIFACT_BYTES, what: str | None = None
    ) -> memoryview:
        """The artifact's bytes (read-only), after checking that they have the CID ``cid``.

        Raises ``ArtifactFileError`` when the artifact is absent, not a regular file in
        ``artifacts/``, larger than ``limit`` bytes, or does not match its CID.
        """
        name = what or f"artifact {cid}"
        self._path(cid)
        with self._directory(artifacts=True) as directory:
            data = self._read_file(directory, cid, limit, name)
        if cid_of_bytes(data) != cid:
            raise ArtifactFileError(f"{name} in {self.artifacts} does not match its CID")
        return data

    def open(self, cid: str) -> Iterator[bytes]:
        yield bytes(self.read(cid))

    def get_bytes(self, cid: str) -> bytes:
        return bytes(self.read(cid))

    def has(self, cid: str) -> bool:
        """Whether ``artifacts/<cid>`` is a regular file (not a link, not a FIFO).

        Raises ``ArtifactFileError`` when ``artifacts/`` itself is missing or not a directory.
        """
        self._path(cid)
        with self._directory(artifacts=True) as directory:
            try:
                info = os.stat(cid, dir_fd=directory, follow_symlinks=False)
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise self._fault(exc, f"artifact {cid}") from None
        return stat.S_ISREG(info.st_mode)

    def manifest_bytes(self, limit: int = MAX_MANIFEST_BYTES) -> memoryview:
        """The bytes of ``manifest.json`` (a regular file of at most ``limit`` bytes)."""
        with self._directory(artifacts=False) as directory:
            return self._read_file(directory, MANIFEST_NAME, limit, MANIFEST_NAME)

    def manifest(self, limit: int = MAX_MANIFEST_BYTES) -> Manifest:
        """The manifest in ``manifest.json``."""
        data = self.manifest_bytes(limit)
        return parse_manifest(data, str(self.root / MANIFEST_NAME), limit=limit)

    def manifest_cid(self) -> str:
        """The CID of ``manifest.json`` (what a solver commits)."""
        return cid_of_bytes(self.manifest_bytes())

    # -- writing ------------------------------------------------------------------------

    def put_bytes(self, data: bytes, options: AddOptions | None = None) -> str:
        self._writable()
        if options is not None and options != AddOptions():
            raise StoreError("a proof directory names artifacts by default-option CIDs only")
        cid = cid_of_bytes(data)
        # Always (re)written: a damaged file left by a crash is replaced, never trusted.
        write_atomically(self._path(cid), data)
        return cid

    def put_file(self, path: Path, options: AddOptions | None = None) -> str:
        return self.put_bytes(Path(path).read_bytes(), options)

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise StoreError(f"cannot pin {cid}: not in {self.artifacts}")

    def unpin(self, cid: str) -> None:
        """Nothing to do: a proof directory keeps everything it holds."""

    def pins(self) -> list[str]:
        if not self.artifacts.is_dir():
            return []
        return sorted(p.name for p in self.artifacts.iterdir() if _CID_TEXT.match(p.name))

    def write_manifest(self, manifest: Manifest) -> str:
        """Store the manifest as an artifact and as ``manifest.json``; return its CID."""
        self._writable()
        data = canonical_json(manifest.to_json())
        cid = self.put_bytes(data)
        write_atomically(self.root / MANIFEST_NAME, data)
        return cid


def _is_link(name: str, directory: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False
