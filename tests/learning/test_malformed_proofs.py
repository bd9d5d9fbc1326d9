"""A corpus of malformed proof directories, each checked through ``veritrain pol verify``.

Every case is an attacker's proof: each must end within seconds with exit status 1
and a reason (or 2 where the caller's own input is at fault), never a hang or an
internal error; a file reached through a symbolic link is never read (the links
here point at honest copies, so following one would pass); and verifying never
changes the proof directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from agents.cli import INTERNAL_ERROR, main
from agents.learning import datasets
from agents.learning.malformed import CRAFTS, craft, raw_tensorfile
from agents.learning.proof import (
    ProofDirectory,
    decode_checkpoint,
    encode_batches,
    encode_checkpoint,
)
from agents.learning.selection import sample_segments
from agents.learning.solver import train
from agents.learning.spec import TaskSpec, parse_spec
from agents.learning.task import open_task
from agents.store import cid_of_bytes
from tests.command_line import veritrain
from tests.learning.conftest import real_spec, spec_dict

RANDOMNESS = "5e" * 32
SECONDS = 60  # a case that takes longer has hung


@dataclass
class Honest:
    """An honest proof directory, its spec file, and what verification will select."""

    spec: TaskSpec
    spec_path: Path
    proof: Path
    selected: list[int]


def _honest(root: Path, spec: TaskSpec, package: bool = False) -> Honest:
    root.mkdir(parents=True, exist_ok=True)
    spec_path = root / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    proof = root / "proof"
    store = ProofDirectory(proof, create=True)
    if package:
        datasets.package(_rebuilt_dataset(), store)
    workspace_task = open_task(spec, store)
    spec_cid = store.put_bytes(spec.canonical_bytes())
    from agents.learning.backends import get_backend

    manifest = train(workspace_task, store, get_backend("native"), spec_cid=spec_cid)
    store.write_manifest(manifest)
    selected = sample_segments(
        bytes.fromhex(RANDOMNESS), spec.segment_count, spec.verification.segments
    )
    return Honest(spec, spec_path, proof, selected)


def _rebuilt_dataset() -> datasets.Dataset:
    source = real_spec().dataset.source
    assert source is not None
    return datasets.build(source)


@pytest.fixture(scope="module")
def honest(tmp_path_factory: pytest.TempPathFactory) -> Honest:
    return _honest(tmp_path_factory.mktemp("honest"), real_spec())


@pytest.fixture(scope="module")
def sourceless(tmp_path_factory: pytest.TempPathFactory) -> Honest:
    """A proof of a spec without a dataset recipe: the directory's copy is the only one."""
    data = real_spec().model_dump(mode="json")
    data["dataset"]["source"] = None
    return _honest(tmp_path_factory.mktemp("sourceless"), parse_spec(data), package=True)


@pytest.fixture
def case(honest: Honest, tmp_path: Path) -> Honest:
    """A private copy of the honest proof to break."""
    proof = tmp_path / "proof"
    shutil.copytree(honest.proof, proof, symlinks=True)
    return Honest(honest.spec, honest.spec_path, proof, honest.selected)


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def snapshot(root: Path) -> dict[str, tuple[str, str]]:
    """Every entry under ``root`` (links not followed): its kind and content or target."""
    out: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_symlink():
            out[name] = ("link", os.readlink(path))
        elif path.is_fifo():
            out[name] = ("fifo", "")
        elif path.is_dir():
            out[name] = ("dir", "")
        else:
            digest = hashlib.sha256()
            with path.open("rb") as f:
                for piece in iter(lambda: f.read(1 << 20), b""):
                    digest.update(piece)
            out[name] = ("file", f"{path.stat().st_size}:{digest.hexdigest()}")
    return out


def verify(
    capsys: pytest.CaptureFixture[str], spec_path: Path, proof: Path, *extra: str
) -> tuple[int, Any, str]:
    """``veritrain pol verify`` in this process, under a deadline; checks it wrote nothing."""
    before = snapshot(proof) if proof.is_dir() else None
    args = ["pol", "verify", "--spec", str(spec_path), "--proof", str(proof)]
    args += ["--randomness", RANDOMNESS, "--backend", "native", *extra]
    with deadline(SECONDS):
        code, out, err = veritrain(capsys, *args)
    if before is not None:
        assert snapshot(proof) == before, "verification changed the proof directory"
    assert code != INTERNAL_ERROR and "internal" not in err, err
    return code, json.loads(out) if out.strip() else None, err


def rejected(result: tuple[int, Any, str], kind: str, words: str) -> dict[str, Any]:
    code, verdict, err = result
    assert code == 1, (code, verdict, err)
    assert verdict["verdict"] == "fail" and verdict["segments"] == [], verdict
    assert verdict["fault"]["kind"] == kind, verdict
    assert any(re.search(words, reason) for reason in verdict["reasons"]), verdict["reasons"]
    return dict(verdict)


def manifest_of(proof: Path) -> Any:
    return ProofDirectory(proof).manifest()


def write_manifest_text(proof: Path, text: bytes) -> None:
    (proof / "manifest.json").write_bytes(text)


def test_the_honest_proof_passes(capsys: pytest.CaptureFixture[str], case: Honest) -> None:
    code, verdict, _ = verify(capsys, case.spec_path, case.proof)
    assert code == 0 and verdict["verdict"] == "pass" and verdict["fault"] is None


# -- the crafts an agent could commit, written into a proof directory -----------------------

CRAFT_WORDS = {
    "manifest-not-json": "not UTF-8",
    "manifest-digits": "5000 digits",
    "manifest-superscript": "step",
    # Both are larger than the spec allows a manifest to be: refused before any parsing.
    "manifest-nested": "more than the .* the spec allows",
    "manifest-oversized": "more than the .* the spec allows",
    "step-nan": "holds step nan",
    "step-inf": "holds step inf",
    "header-nested": "more than the .* the spec allows",
    "header-huge-dimension": "an integer of 22 digits",
    "header-many-dimensions": "more than the .* the spec allows",
    "checkpoint-oversized": "the spec allows",
    "checkpoint-is-batches": "format",
    "first-step-superscript": "is not a step number",
    "first-step-digits": "is not a step number|the spec allows",
    "missing-artifact": "not available",
}


def test_every_craft_has_a_case() -> None:
    assert set(CRAFT_WORDS) == set(CRAFTS)


@pytest.mark.parametrize("name", sorted(CRAFTS))
def test_crafted_proof(capsys: pytest.CaptureFixture[str], case: Honest, name: str) -> None:
    store = ProofDirectory(case.proof)
    proof = craft(name, case.spec, store, store.manifest())
    write_manifest_text(case.proof, proof.manifest)
    verdict = rejected(verify(capsys, case.spec_path, case.proof), proof.fault, CRAFT_WORDS[name])
    if proof.fault != "manifest":
        assert verdict["manifest"] == cid_of_bytes(proof.manifest)


# -- files that are not what they seem -----------------------------------------------------


def _checkpoint_path(case: Honest, index: int) -> Path:
    return Path(case.proof / "artifacts" / manifest_of(case.proof).checkpoints[index].cid)


def _outside(case: Honest, path: Path) -> Path:
    """An honest copy of ``path`` outside the proof directory."""
    target = case.proof.parent / "outside" / path.name
    target.parent.mkdir(exist_ok=True)
    if path.is_dir():
        shutil.copytree(path, target)
    else:
        shutil.copyfile(path, target)
    return target


def _link_out(case: Honest, path: Path) -> None:
    target = _outside(case, path)
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    path.symlink_to(target)


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _sparse(path: Path, size: int) -> None:
    path.unlink()
    with path.open("wb") as f:
        f.truncate(size)


Breakage = Callable[[Honest], object]


def _replace_with_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _replace_with_file(path: Path) -> None:
    shutil.rmtree(path)
    path.write_bytes(b"")


FILE_CASES: list[tuple[str, Breakage, str, str]] = [
    ("manifest is a FIFO", lambda c: _fifo(c.proof / "manifest.json"), "manifest", "regular"),
    ("manifest links out", lambda c: _link_out(c, c.proof / "manifest.json"), "manifest", "link"),
    (
        "manifest is a directory",
        lambda c: _replace_with_directory(c.proof / "manifest.json"),
        "manifest",
        "regular",
    ),
    ("manifest is missing", lambda c: (c.proof / "manifest.json").unlink(), "manifest", "not in"),
    (
        "manifest of 1 GiB",
        lambda c: _sparse(c.proof / "manifest.json", 1 << 30),
        "manifest",
        "the spec allows",
    ),
    ("manifest is empty", lambda c: _sparse(c.proof / "manifest.json", 0), "manifest", "not JSON"),
    (
        "no artifacts directory",
        lambda c: shutil.rmtree(c.proof / "artifacts"),
        "unavailable",
        "no artifacts/",
    ),
    (
        "artifacts links out",
        lambda c: _link_out(c, c.proof / "artifacts"),
        "unavailable",
        "symbolic link",
    ),
    (
        "artifacts is a file",
        lambda c: _replace_with_file(c.proof / "artifacts"),
        "unavailable",
        "not a directory",
    ),
    (
        "a checkpoint links out",
        lambda c: _link_out(c, _checkpoint_path(c, 0)),
        "unavailable",
        "not available",
    ),
    (
        "a checkpoint is a FIFO",
        lambda c: _fifo(_checkpoint_path(c, 0)),
        "unavailable",
        "not available",
    ),
    (
        "a checkpoint of 512 MiB",
        lambda c: _sparse(_checkpoint_path(c, 0), 512 << 20),
        "malformed",
        "the spec allows",
    ),
    (
        "a checkpoint is empty",
        lambda c: _sparse(_checkpoint_path(c, 0), 0),
        "malformed",
        "does not match its CID",
    ),
    (
        "a checkpoint's bytes changed",
        lambda c: _checkpoint_path(c, 0).write_bytes(
            _checkpoint_path(c, 0).read_bytes()[:-1] + b"\x01"
        ),
        "malformed",
        "does not match its CID",
    ),
]


@pytest.mark.parametrize(
    ("name", "breakage", "kind", "words"), FILE_CASES, ids=[c[0] for c in FILE_CASES]
)
def test_broken_file(
    capsys: pytest.CaptureFixture[str],
    case: Honest,
    name: str,
    breakage: Breakage,
    kind: str,
    words: str,
) -> None:
    breakage(case)
    rejected(verify(capsys, case.spec_path, case.proof), kind, words)


def test_a_checkpoint_link_is_reported_as_a_link(case: Honest) -> None:
    path = _checkpoint_path(case, 0)
    _link_out(case, path)
    store = ProofDirectory(case.proof, read_only=True)
    assert not store.has(path.name)
    with pytest.raises(Exception, match="symbolic link"):
        store.read(path.name)


def test_a_linked_proof_directory_is_the_callers_choice(
    capsys: pytest.CaptureFixture[str], case: Honest
) -> None:
    link = case.proof.parent / "chosen"
    link.symlink_to(case.proof)
    code, verdict, _ = verify(capsys, case.spec_path, link)
    assert code == 0 and verdict["verdict"] == "pass"


# -- tensor files crafted one flaw at a time ------------------------------------------------


def _checkpoint_file(case: Honest, index: int, data: bytes) -> None:
    """Make checkpoint ``index`` the artifact ``data``, the manifest updated to name it."""
    store = ProofDirectory(case.proof)
    manifest = store.manifest()
    checkpoints = list(manifest.checkpoints)
    checkpoints[index] = checkpoints[index].model_copy(update={"cid": store.put_bytes(data)})
    store.write_manifest(manifest.model_copy(update={"checkpoints": checkpoints}))


def _state(case: Honest, index: int) -> dict[str, np.ndarray]:
    store = ProofDirectory(case.proof)
    return dict(decode_checkpoint(store.get_bytes(store.manifest().checkpoints[index].cid)))


def _header(entries: dict[str, Any], body: bytes = b"") -> bytes:
    text = json.dumps({"__metadata__": {"format": "veritrain-checkpoint/1"}, **entries})
    return raw_tensorfile(text.encode(), body)


def _f32(shape: list[Any], start: int = 0, size: int = 0) -> dict[str, Any]:
    return {"dtype": "F32", "shape": shape, "data_offsets": [start, start + size]}


TENSOR_CASES: list[tuple[str, Callable[[Honest], bytes], str]] = [
    ("nested 2,500 deep", lambda c: raw_tensorfile(b"[" * 2500 + b"]" * 2500), "nested too deeply"),
    ("nine dimensions", lambda c: _header({"step": _f32([1] * 9, 0, 4)}, bytes(4)), "shape"),
    ("dimension 2^70", lambda c: _header({"step": _f32([0, 2**70])}), "22 digits"),
    ("dimension 2^63", lambda c: _header({"step": _f32([0, 2**63])}), "shape"),
    ("dimension 2^31", lambda c: _header({"step": _f32([0, 2**31])}), "shape"),
    (
        "extent overflows numpy",
        lambda c: _header({"step": _f32([0] + [2**31 - 1] * 7)}),
        "shape",
    ),
    ("negative dimension", lambda c: _header({"step": _f32([-1])}), "shape"),
    ("boolean dimension", lambda c: _header({"step": _f32([True], 0, 4)}, bytes(4)), "shape"),
    ("float dimension", lambda c: _header({"step": _f32([1.0], 0, 4)}, bytes(4)), "number"),
    (
        "5,000-digit offset",
        lambda c: raw_tensorfile(
            b'{"step":{"dtype":"F32","shape":[],"data_offsets":[0,' + b"9" * 5000 + b"]}}"
        ),
        "digits",
    ),
    (
        "NaN offset",
        lambda c: raw_tensorfile(b'{"step":{"dtype":"F32","shape":[],"data_offsets":[0,NaN]}}'),
        "NaN",
    ),
    (
        "duplicate tensor",
        lambda c: raw_tensorfile(
            b'{"step":{"dtype":"F32","shape":[],"data_offsets":[0,4]},'
            b'"step":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}',
            bytes(4),
        ),
        "twice",
    ),
    (
        "lone surrogate name",
        lambda c: raw_tensorfile(
            b'{"\\ud800":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}', bytes(4)
        ),
        "Unicode",
    ),
    (
        "float64 tensor",
        lambda c: _header(
            {"step": {"dtype": "F64", "shape": [], "data_offsets": [0, 8]}}, bytes(8)
        ),
        "dtype",
    ),
    (
        "dtype is a list",
        lambda c: _header(
            {"step": {"dtype": ["F32"], "shape": [], "data_offsets": [0, 4]}}, bytes(4)
        ),
        "dtype",
    ),
    ("metadata is a list", lambda c: raw_tensorfile(b'{"__metadata__":[]}'), "__metadata__"),
    ("metadata not strings", lambda c: raw_tensorfile(b'{"__metadata__":{"format":1}}'), "strings"),
    ("header length 2^64 - 1", lambda c: b"\xff" * 8 + b"{}", "header length"),
    ("header length past the end", lambda c: (1000).to_bytes(8, "little") + b"{}", "header length"),
    ("seven bytes", lambda c: b"\x00" * 7, "too short"),
    ("header not a mapping", lambda c: raw_tensorfile(b"[]"), "mapping"),
    ("header not UTF-8", lambda c: raw_tensorfile(b'{"\xff":1}'), "UTF-8"),
    (
        "overlapping tensors",
        lambda c: _header({"a": _f32([1], 0, 4), "step": _f32([], 0, 4)}, bytes(4)),
        "overlaps",
    ),
    ("bytes after the tensors", lambda c: _header({"step": _f32([], 0, 4)}, bytes(8)), "no tensor"),
    ("offsets past the end", lambda c: _header({"step": _f32([2], 0, 8)}, bytes(4)), "offsets"),
    (
        "NaN step",
        lambda c: encode_checkpoint({**_state(c, 0), "step": np.asarray(np.float32("nan"))}),
        "nan",
    ),
    (
        "half a step",
        lambda c: encode_checkpoint({**_state(c, 0), "step": np.asarray(np.float32(0.5))}),
        "0.5",
    ),
    (
        "int64 step",
        lambda c: encode_checkpoint({**_state(c, 0), "step": np.array(0, np.int64)}),
        "float32",
    ),
    (
        "step of shape [1]",
        lambda c: encode_checkpoint({**_state(c, 0), "step": np.zeros(1, np.float32)}),
        "shape",
    ),
    (
        "a tensor missing",
        lambda c: encode_checkpoint({k: v for k, v in _state(c, 0).items() if k != "step"}),
        "missing tensors",
    ),
    (
        "batches in a checkpoint's place",
        lambda c: encode_batches(np.zeros((4, 8), np.int64), 0),
        "format",
    ),
]


@pytest.mark.parametrize(("name", "make", "words"), TENSOR_CASES, ids=[c[0] for c in TENSOR_CASES])
def test_crafted_checkpoint(
    capsys: pytest.CaptureFixture[str],
    case: Honest,
    name: str,
    make: Callable[[Honest], bytes],
    words: str,
) -> None:
    _checkpoint_file(case, 0, make(case))
    code, verdict, _ = verify(capsys, case.spec_path, case.proof)
    assert code == 1 and verdict["fault"]["position"] == 2, verdict
    assert verdict["fault"]["kind"] in ("malformed", "inconsistent"), verdict
    assert any(words in r for r in verdict["reasons"]), verdict["reasons"]


BATCHES_CASES: list[tuple[str, str]] = [
    ("superscript", "\u00b2"),
    ("5,000 digits", "9" * 5000),
    ("Arabic-Indic digits", "\u0660"),
    ("leading zero", "00"),
    ("sign", "+0"),
    ("negative", "-0"),
    ("space", " 0"),
    ("empty", ""),
    ("eleven digits", "1" * 11),
]


@pytest.mark.parametrize(("name", "text"), BATCHES_CASES, ids=[c[0] for c in BATCHES_CASES])
def test_crafted_first_step(
    capsys: pytest.CaptureFixture[str], case: Honest, name: str, text: str
) -> None:
    store = ProofDirectory(case.proof)
    manifest = store.manifest()
    segment = case.selected[0]
    entry = manifest.segments[segment]
    good = store.get_bytes(entry.batches)
    from agents.learning.proof import decode_batches

    batches, _ = decode_batches(good)
    header = {
        "__metadata__": {"format": "veritrain-batches/1", "first_step": text},
        "batches": {
            "dtype": "I64",
            "shape": list(batches.shape),
            "data_offsets": [0, batches.nbytes],
        },
    }
    data = raw_tensorfile(json.dumps(header).encode(), batches.tobytes())
    segments = list(manifest.segments)
    segments[segment] = entry.model_copy(update={"batches": store.put_bytes(data)})
    store.write_manifest(manifest.model_copy(update={"segments": segments}))
    code, verdict, _ = verify(capsys, case.spec_path, case.proof)
    assert code == 1 and verdict["fault"]["kind"] == "malformed", verdict
    assert verdict["fault"]["position"] == 2 + len(manifest.checkpoints) + segment
    assert any(re.search("first_step|the spec allows", r) for r in verdict["reasons"]), verdict[
        "reasons"
    ]


# -- manifests crafted one flaw at a time ------------------------------------------------------

MANIFEST_CASES: list[tuple[str, str, str]] = [
    ("a step written 4.0", '"steps":40', '"steps":40.0'),
    ("a step written as text", '"steps":40', '"steps":"40"'),
    ("a step written true", '"checkpoint_interval":4', '"checkpoint_interval":true'),
    ("a step of NaN", '"steps":40', '"steps":NaN'),
    ("a step of 1e400", '"steps":40', '"steps":1e400'),
    ("a duplicate key", '"steps":40', '"steps":40,"steps":41'),
    ("a lone surrogate", '"backend":"', '"backend":"\\udc00'),
    ("an unknown field", '"steps":40', '"steps":40,"extra":1'),
    ("a list for the manifest", "", ""),
]


@pytest.mark.parametrize(("name", "old", "new"), MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_crafted_manifest(
    capsys: pytest.CaptureFixture[str], case: Honest, name: str, old: str, new: str
) -> None:
    text = (case.proof / "manifest.json").read_text()
    if old:
        assert old in text
        text = text.replace(old, new, 1)
    else:
        text = f"[{text}]"
    write_manifest_text(case.proof, text.encode())
    code, verdict, _ = verify(capsys, case.spec_path, case.proof)
    assert code == 1 and verdict["manifest"] == cid_of_bytes(text.encode()), verdict
    assert verdict["fault"] == {"kind": "manifest", "position": None, "cid": None}, verdict


# -- the dataset the directory carries ---------------------------------------------------------


def _dataset_path(spec: TaskSpec, proof: Path) -> Path:
    return proof / "artifacts" / spec.dataset.cid


def test_a_damaged_dataset_copy_is_rebuilt_from_the_spec(
    capsys: pytest.CaptureFixture[str], case: Honest
) -> None:
    path = _dataset_path(case.spec, case.proof)
    path.write_bytes(b"not the dataset")
    code, verdict, _ = verify(capsys, case.spec_path, case.proof)
    assert code == 0 and verdict["verdict"] == "pass"


@pytest.mark.parametrize("damage", ["changed", "missing", "linked out", "fifo"])
def test_a_damaged_dataset_without_a_recipe_fails_the_proof(
    capsys: pytest.CaptureFixture[str], sourceless: Honest, tmp_path: Path, damage: str
) -> None:
    proof = tmp_path / "proof"
    shutil.copytree(sourceless.proof, proof)
    path = _dataset_path(sourceless.spec, proof)
    if damage == "changed":
        path.write_bytes(path.read_bytes() + b" ")
    elif damage == "missing":
        path.unlink()
    elif damage == "fifo":
        _fifo(path)
    else:
        target = tmp_path / "dataset"
        shutil.copyfile(path, target)
        path.unlink()
        path.symlink_to(target)
    code, verdict, _ = verify(capsys, sourceless.spec_path, proof)
    assert code == 1 and verdict["verdict"] == "fail", verdict
    assert sourceless.spec.dataset.cid in verdict["reasons"][0]


def test_the_intact_sourceless_proof_passes(
    capsys: pytest.CaptureFixture[str], sourceless: Honest
) -> None:
    code, verdict, _ = verify(capsys, sourceless.spec_path, sourceless.proof)
    assert code == 0 and verdict["verdict"] == "pass"


def test_a_spec_naming_a_malformed_dataset_is_unusable_input(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The content matches the CID the spec names, so the spec (the caller's input) is bad."""
    proof = ProofDirectory(tmp_path / "proof", create=True)
    dataset = _rebuilt_dataset()
    inputs = dataset.tensors["inputs"].copy()
    inputs[0, 0] = np.nan
    broken = datasets.Dataset(dataset.name, dataset.kind, {**dataset.tensors, "inputs": inputs}, 3)
    cid = datasets.package(broken, proof)
    data = spec_dict()
    data["dataset"] = {"cid": cid}
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    code, verdict, err = verify(capsys, spec_path, proof.root)
    assert code == 2 and verdict is None and "NaN" in err


# -- the caller's own input ----------------------------------------------------------------


def test_exact_mode_refuses_a_backend_that_cannot_decide_it(
    capsys: pytest.CaptureFixture[str], case: Honest, tmp_path: Path
) -> None:
    data = case.spec.model_dump(mode="json")
    data["verification"] = {**data["verification"], "tolerance": "exact", "tau": None}
    spec_path = tmp_path / "exact.yaml"
    spec_path.write_text(yaml.safe_dump(data))
    code, verdict, err = verify(capsys, spec_path, case.proof)
    assert code == 2 and verdict is None and "exact" in err and "native" in err


@pytest.mark.parametrize("kind", ["missing", "a file"])
def test_a_proof_path_that_is_no_directory_is_unusable_input(
    capsys: pytest.CaptureFixture[str], honest: Honest, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "proof"
    if kind == "a file":
        path.write_bytes(b"")
    code, verdict, err = verify(capsys, honest.spec_path, path)
    assert code == 2 and verdict is None and "does not exist" in err


def test_a_directory_the_verifier_cannot_read_is_its_own_trouble(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OS error (not a property of the proof) is no verdict: exit 2 offline, a retry in an
    agent."""
    from agents.store import BackendError

    proof = ProofDirectory(tmp_path, read_only=True)
    (tmp_path / "artifacts").mkdir()
    real = os.open

    def failing(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith("Qm"):
            raise OSError(5, "Input/output error")
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", failing)
    with pytest.raises(BackendError, match="cannot read"):
        proof.read("Qm" + "a" * 44)


def test_a_read_only_proof_directory_refuses_writes(honest: Honest) -> None:
    from agents.store import StoreError

    store = ProofDirectory(honest.proof, read_only=True)
    with pytest.raises(StoreError, match="reading only"):
        store.put_bytes(b"x")
    with pytest.raises(StoreError, match="reading only"):
        store.write_manifest(store.manifest())


def test_a_bug_is_its_own_exit_status_never_a_verdict(
    capsys: pytest.CaptureFixture[str], case: Honest, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agents.cli.pol

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug in the verifier")

    monkeypatch.setattr(agents.cli.pol, "verify", broken)
    args = ["pol", "verify", "--spec", str(case.spec_path), "--proof", str(case.proof)]
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--randomness", RANDOMNESS, "--backend", "native"])
    _, err = capsys.readouterr()
    assert exit_.value.code == INTERNAL_ERROR == 70
    assert "error: internal: ZeroDivisionError" in err
