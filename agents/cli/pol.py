"""``veritrain pol``: proof of learning, offline (train, verify, profile, inspect)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from agents.cli.output import echo_json
from agents.errors import VeritrainError
from agents.learning.backends import get_backend
from agents.learning.datasets import MissingDatasetError
from agents.learning.opcount import op_count
from agents.learning.proof import (
    MANIFEST_NAME,
    ArtifactFileError,
    ProofDirectory,
    ProofError,
    artifact_limits,
    parse_manifest,
)
from agents.learning.selection import detection_probability
from agents.learning.spec import TaskSpec, load_spec
from agents.learning.task import open_task
from agents.learning.verifier import (
    EXACT_BACKEND,
    Fault,
    Replayer,
    Verdict,
    VerificationInputError,
    default_replay_backend,
    input_rejection,
    threshold,
    verify,
)
from agents.store import cid_of_bytes

JOURNAL_NAME = "journal.json"


def _emit(value: Any) -> None:
    echo_json(value, sort_keys=True)


def _backend_options(device: str | None, threads: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if device is not None:
        options["device"] = device
    if threads is not None:
        options["threads"] = threads
    return options


def _training_backend(spec: TaskSpec, name: str | None) -> str:
    exact = spec.verification.tolerance == "exact"
    chosen = name or ("exact" if exact else "native")
    if exact and chosen != "exact":
        raise VeritrainError("a task in exact mode is trained with the exact backend")
    return chosen


@click.group()
def pol() -> None:
    """Train with a proof, verify a proof, profile a task."""


@pol.command()
@click.option("--spec", "spec_path", required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Proof dir.")
@click.option("--backend", default=None, help="native or exact (default: by tolerance mode).")
@click.option(
    "--device",
    default=None,
    help="cpu or cuda: native, the torch device; exact, cuda runs its eager path (default cpu).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=0),
    default=None,
    help="CPU threads. native: torch intra-op threads (default 1; 0: torch's own setting); "
    "exact: numba threads (default 0: every core).",
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    spec_path: Path,
    out: Path,
    backend: str | None,
    device: str | None,
    threads: int | None,
    quiet: bool,
) -> None:
    """Train SPEC honestly and export its proof to OUT (resumes an interrupted run)."""
    from agents.learning.solver import train as train_task

    spec = load_spec(spec_path)
    name = _training_backend(spec, backend)
    trainer = get_backend(name, **_backend_options(device, threads))
    store = ProofDirectory(out, create=True)
    task = open_task(spec, store)
    spec_cid = store.put_bytes(spec.canonical_bytes())
    started = time.perf_counter()
    if quiet:
        manifest = train_task(
            task, store, trainer, spec_cid=spec_cid, journal_path=out / JOURNAL_NAME
        )
    else:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(transient=True, console=Console(stderr=True)) as bar:
            job = bar.add_task(f"training {spec.name}", total=spec.steps)
            manifest = train_task(
                task,
                store,
                trainer,
                spec_cid=spec_cid,
                journal_path=out / JOURNAL_NAME,
                progress=lambda done: bar.update(job, completed=done),
            )
    cid = store.write_manifest(manifest)
    (out / JOURNAL_NAME).unlink(missing_ok=True)
    _emit(
        {
            "manifest": cid,
            "checkpoint_root": manifest.checkpoint_root,
            "final_model": manifest.final_model,
            "spec": spec_cid,
            "backend": trainer.describe(),
            "steps": spec.steps,
            "segments": spec.segment_count,
            "seconds": round(time.perf_counter() - started, 3),
            "out": str(out),
        }
    )


def _randomness(text: str) -> bytes:
    digits = text.removeprefix("0x")
    try:
        value = bytes.fromhex(digits)
    except ValueError:
        raise VerificationInputError(f"randomness {text!r} is not hexadecimal") from None
    if len(value) != 32:
        raise VerificationInputError(
            f"randomness must be 32 bytes (64 hex digits), got {len(value)}"
        )
    return value


@pol.command(name="verify")
@click.option("--spec", "spec_path", required=True, type=click.Path(path_type=Path))
@click.option("--proof", "proof_dir", required=True, type=click.Path(path_type=Path))
@click.option("--randomness", required=True, help="32 bytes, hex: selects the segments.")
@click.option(
    "--backend",
    default=None,
    help="Replayer backend (default: exact if present; exact mode: exact).",
)
@click.option("--tau", type=float, default=None, help="Threshold (tolerant mode; default: spec).")
@click.option("--device", default=None, help="Torch device for the replayer.")
@click.option("--trace", is_flag=True, help="Record every replay's trace root (slower).")
def verify_command(
    spec_path: Path,
    proof_dir: Path,
    randomness: str,
    backend: str | None,
    tau: float | None,
    device: str | None,
    trace: bool,
) -> None:
    """Verify the proof in PROOF against SPEC, reading nothing outside PROOF and writing
    nothing into it; exit 0 pass, 1 fail, 2 unusable input, 70 internal error."""
    # The caller's inputs first: any trouble with them is exit 2, before the proof is read.
    seed = _randomness(randomness)
    spec = load_spec(spec_path)
    threshold(spec, tau)
    exact = spec.verification.tolerance == "exact"
    name = backend or (EXACT_BACKEND if exact else default_replay_backend())
    if exact and name != EXACT_BACKEND:
        raise VerificationInputError(
            f"an exact-mode spec is decided by the {EXACT_BACKEND} backend (the state roots "
            f"commit to its bits); --backend {name} cannot decide it"
        )
    replayer = Replayer(get_backend(name, **_backend_options(device, None)))
    store = ProofDirectory(proof_dir, read_only=True)
    spec_cid = cid_of_bytes(spec.canonical_bytes())
    # From here on everything read is the proof's: trouble with it is a verdict.
    try:
        task = open_task(spec, store, keep=False)
    except (ArtifactFileError, MissingDatasetError) as exc:
        fault = Fault("unavailable" if isinstance(exc, MissingDatasetError) else "malformed")
        _verdict(input_rejection(spec, replayer, str(exc), fault, tau=tau))
    limit = artifact_limits(spec).manifest
    try:
        data = store.manifest_bytes(limit)
    except ProofError as exc:
        _verdict(input_rejection(spec, replayer, str(exc), Fault("manifest"), tau=tau))
    manifest_cid = cid_of_bytes(data)
    try:
        manifest = parse_manifest(data, MANIFEST_NAME, limit=limit)
    except ProofError as exc:
        rejected = input_rejection(
            spec, replayer, str(exc), Fault("manifest"), tau=tau, manifest_cid=manifest_cid
        )
        _verdict(rejected)
    _verdict(
        verify(
            task,
            manifest,
            store,
            seed,
            replayer,
            spec_cid=spec_cid,
            tau=tau,
            manifest_cid=manifest_cid,
            trace=trace,
        )
    )


def _verdict(verdict: Verdict) -> NoReturn:
    """Print the verdict and exit with its status (0 pass, 1 fail)."""
    _emit(verdict.to_json())
    raise click.exceptions.Exit(0 if verdict.passed else 1)


@pol.command()
@click.option("--spec", "spec_path", required=True, type=click.Path(path_type=Path))
@click.option(
    "--budget",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.1,
    show_default=True,
    help="Share of the task's training steps the profile may run.",
)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Dir with the dataset.")
def profile(spec_path: Path, budget: float, data: Path | None) -> None:
    """Measure honest drift on SPEC, propose τ and state its bound (prints JSON)."""
    from agents.learning.profiler import profile as run_profile

    spec = load_spec(spec_path)
    with tempfile.TemporaryDirectory(prefix="veritrain-profile-") as scratch:
        store = ProofDirectory(data if data is not None else Path(scratch), create=True)
        task = open_task(spec, store)
        _emit(run_profile(task, budget=budget).to_json())


@pol.command()
@click.option("--spec", "spec_path", required=True, type=click.Path(path_type=Path))
def inspect(spec_path: Path) -> None:
    """Print SPEC's hash, CID, op count and sampling figures (prints JSON)."""
    from agents.store import cid_of_bytes

    spec = load_spec(spec_path)
    s, count = spec.verification.segments, spec.segment_count
    _emit(
        {
            "name": spec.name,
            "spec_hash": spec.spec_hash().hex(),
            "spec_cid": cid_of_bytes(spec.canonical_bytes()),
            "segments": count,
            "sampled": s,
            "detection_half_faked": detection_probability(count, count // 2, s),
            "ops": op_count(spec).to_json(),
        }
    )
