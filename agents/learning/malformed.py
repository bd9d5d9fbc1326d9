"""Malformed proofs: what a solver could commit to crash, hang or exhaust a verifier.

Like ``agents.learning.cheats``, these exist to test the verifier (the offline
corpus, the fuzzers, the devnet's test-double solver), never to be run as a
solver. Each takes an honest proof (its manifest, its artifacts in a store),
stores the crafted artifacts next to it and returns a ``MalformedProof``: the
manifest bytes to commit, the checkpoint root to commit with them, and the kind
of ``agents.learning.verifier.Fault`` a verifier must report. Where a craft
changes a checkpoint, its state root, the checkpoint root and the final model
are made consistent again, so that only the crafted flaw is left to find.

The classes (``CRAFTS``):

- the manifest: not JSON, a step of 5,000 digits, a step written ``"²"``, nested
  200,000 deep, one byte larger than the spec allows;
- a checkpoint: its step counter NaN or +inf; its safetensors header nested
  200,000 deep, a dimension of 2**70, 100,000 dimensions; more bytes than the
  spec implies; a batches artifact in its place;
- every batches artifact: ``first_step`` written ``"²"`` or with 5,000 digits;
- an artifact the store does not hold.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from agents.learning.layout import STEP, State, ordered
from agents.learning.proof import (
    BATCHES_FORMAT,
    Manifest,
    artifact_limits,
    decode_batches,
    decode_checkpoint,
    encode_checkpoint,
    parse_manifest,
)
from agents.learning.spec import TaskSpec
from agents.store import ArtifactStore, canonical_json, cid_of_bytes

NESTING = 200_000
DIGITS = "9" * 5_000


@dataclass(frozen=True)
class MalformedProof:
    """A crafted proof: what to commit, and the fault kind a verifier must report."""

    name: str
    manifest: bytes
    checkpoint_root: str
    fault: str


Craft = Callable[[TaskSpec, ArtifactStore, Manifest], MalformedProof]


def raw_tensorfile(header: bytes, body: bytes = b"") -> bytes:
    """A safetensors file with exactly this header text (padded to 8) and body."""
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + body


def _commit(name: str, fault: str, manifest: Manifest) -> MalformedProof:
    return MalformedProof(name, canonical_json(manifest.to_json()), manifest.checkpoint_root, fault)


def _with_checkpoint(store: ArtifactStore, manifest: Manifest, index: int, data: bytes) -> Manifest:
    """``manifest`` whose checkpoint ``index`` is the artifact ``data`` (roots kept)."""
    checkpoints = list(manifest.checkpoints)
    checkpoints[index] = checkpoints[index].model_copy(update={"cid": store.put_bytes(data)})
    return manifest.model_copy(update={"checkpoints": checkpoints})


def _last(store: ArtifactStore, manifest: Manifest) -> State:
    return dict(decode_checkpoint(store.get_bytes(manifest.checkpoints[-1].cid)))


def _text_manifest(name: str, text: bytes, manifest: Manifest) -> MalformedProof:
    return MalformedProof(name, text, manifest.checkpoint_root, "manifest")


def _replace_text(manifest: Manifest, old: str, new: str) -> bytes:
    text = canonical_json(manifest.to_json()).decode()
    if old not in text:
        raise ValueError(f"{old!r} is not in the manifest")
    return text.replace(old, new, 1).encode()


# -- the manifest ------------------------------------------------------------------------------


def manifest_not_json(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
    return _text_manifest("manifest-not-json", b"\x00\xffnot a manifest", manifest)


def manifest_digits(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
    text = _replace_text(manifest, f'"steps":{manifest.steps}', f'"steps":{DIGITS}')
    return _text_manifest("manifest-digits", text, manifest)


def manifest_superscript(
    spec: TaskSpec, store: ArtifactStore, manifest: Manifest
) -> MalformedProof:
    step = manifest.checkpoints[1].step
    text = _replace_text(manifest, f'"step":{step}', '"step":"\u00b2"')
    return _text_manifest("manifest-superscript", text, manifest)


def manifest_nested(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
    text = b'{"format":' + b"[" * NESTING + b"]" * NESTING + b"}"
    return _text_manifest("manifest-nested", text, manifest)


def manifest_oversized(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
    text = canonical_json(manifest.to_json())
    limit = artifact_limits(spec).manifest
    return _text_manifest("manifest-oversized", text + b" " * (limit + 1 - len(text)), manifest)


# -- a checkpoint --------------------------------------------------------------------------


def _step_counter(value: float, name: str) -> Craft:
    def craft(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
        from agents.learning.cheats import replace_checkpoint

        state = _last(store, manifest)
        state[STEP] = np.array(value, dtype=np.float32)
        crafted = replace_checkpoint(store, manifest, len(manifest.checkpoints) - 1, ordered(state))
        return _commit(name, "inconsistent", crafted)

    return craft


def _checkpoint_header(name: str, header: bytes, body: bytes = b"") -> Craft:
    def craft(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
        last = len(manifest.checkpoints) - 1
        crafted = _with_checkpoint(store, manifest, last, raw_tensorfile(header, body))
        return _commit(name, "malformed", crafted)

    return craft


def _entry(shape: list[int]) -> bytes:
    entry = {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]}
    return json.dumps(
        {"__metadata__": {"format": "veritrain-checkpoint/1"}, "step": entry}
    ).encode()


header_nested = _checkpoint_header(
    "header-nested", b'{"step":' + b"[" * NESTING + b"]" * NESTING + b"}"
)
header_huge_dimension = _checkpoint_header("header-huge-dimension", _entry([0, 2**70]))
header_many_dimensions = _checkpoint_header("header-many-dimensions", _entry([1] * 100_000))


def checkpoint_oversized(
    spec: TaskSpec, store: ArtifactStore, manifest: Manifest
) -> MalformedProof:
    """The last checkpoint with one more tensor, so that it is larger than the spec allows."""
    state: Mapping[str, np.ndarray] = _last(store, manifest)
    extra = np.zeros(artifact_limits(spec).checkpoint // 4 + 1, dtype=np.float32)
    data = encode_checkpoint({**state, "padding": extra})
    crafted = _with_checkpoint(store, manifest, len(manifest.checkpoints) - 1, data)
    return _commit("checkpoint-oversized", "malformed", crafted)


def checkpoint_is_batches(
    spec: TaskSpec, store: ArtifactStore, manifest: Manifest
) -> MalformedProof:
    data = store.get_bytes(manifest.segments[-1].batches)
    crafted = _with_checkpoint(store, manifest, len(manifest.checkpoints) - 1, data)
    return _commit("checkpoint-is-batches", "malformed", crafted)


# -- the batches ---------------------------------------------------------------------------


def _first_step(text: str, name: str) -> Craft:
    def craft(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
        segments = []
        for entry in manifest.segments:
            batches, _ = decode_batches(store.get_bytes(entry.batches))
            tensor = {
                "dtype": "I64",
                "shape": list(batches.shape),
                "data_offsets": [0, batches.nbytes],
            }
            metadata = {"format": BATCHES_FORMAT, "first_step": text}
            header = json.dumps({"__metadata__": metadata, "batches": tensor}, ensure_ascii=False)
            data = raw_tensorfile(header.encode(), batches.astype("<i8").tobytes())
            segments.append(entry.model_copy(update={"batches": store.put_bytes(data)}))
        return _commit(name, "malformed", manifest.model_copy(update={"segments": segments}))

    return craft


# -- availability --------------------------------------------------------------------------


def missing_artifact(spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
    absent = cid_of_bytes(b"an artifact nobody stored " + manifest.checkpoint_root.encode())
    return _commit(
        "missing-artifact", "unavailable", manifest.model_copy(update={"final_model": absent})
    )


CRAFTS: dict[str, Craft] = {
    "manifest-not-json": manifest_not_json,
    "manifest-digits": manifest_digits,
    "manifest-superscript": manifest_superscript,
    "manifest-nested": manifest_nested,
    "manifest-oversized": manifest_oversized,
    "step-nan": _step_counter(float("nan"), "step-nan"),
    "step-inf": _step_counter(float("inf"), "step-inf"),
    "header-nested": header_nested,
    "header-huge-dimension": header_huge_dimension,
    "header-many-dimensions": header_many_dimensions,
    "checkpoint-oversized": checkpoint_oversized,
    "checkpoint-is-batches": checkpoint_is_batches,
    "first-step-superscript": _first_step("\u00b2", "first-step-superscript"),
    "first-step-digits": _first_step(DIGITS, "first-step-digits"),
    "missing-artifact": missing_artifact,
}


def fault_of(name: str) -> str:
    """The fault kind a verifier must report for the craft ``name``."""
    if name.startswith("manifest-"):
        return "manifest"
    if name == "missing-artifact":
        return "unavailable"
    return "inconsistent" if name.startswith("step-") else "malformed"


def craft(name: str, spec: TaskSpec, store: ArtifactStore, manifest: Manifest) -> MalformedProof:
    """The malformed proof ``name`` (a key of ``CRAFTS``) made from the honest ``manifest``."""
    proof = CRAFTS[name](spec, store, manifest)
    assert proof.fault == fault_of(name), (name, proof.fault)
    if proof.fault != "manifest":
        parse_manifest(proof.manifest)  # every other craft commits a well-formed manifest
    return proof
