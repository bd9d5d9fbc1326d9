"""Playing this agent's games, inside its loop: the game contract's events, a trace for each
game, and the journaled ``GamePlayer`` (``agents.dispute.driver``).

Each tick the desk reads the game contract's events (a cursor of their own in the agent's
database), folds them (``agents.roles.games``) and steps every game the agent still has
something to do in. A game's trace is the agent's own replay of the disputed segment from
the solver's checkpoints (``ReplayProvider``, cached on disk under the data directory), so
whichever role the agent plays it stands behind an honest trace. When the trace root it
committed in the game is not that replay's (a forced error's root, which the pool settles
by the verifier's reveal), it does not move: its moves could only be refused. Moves are
journaled like every transaction, so an agent killed mid-game resumes without sending a
move twice (docs/dispute.md, "Playing a game").
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.chain.errors import ChainError, RpcUnavailableError
from agents.chain.events import EventSource
from agents.chain.executor import TransactionExecutor
from agents.commitment import Root
from agents.dispute.driver import GamePlayer, game_subject
from agents.dispute.errors import DisputeError
from agents.dispute.game import GAME, GameState, Party
from agents.errors import VeritrainError
from agents.node.logs import event
from agents.roles.games import GameRecord, fold_games, standing, task_of, to_play
from agents.roles.jobs import OpeningJob, OpeningResult, PublicationJob, PublicationResult
from agents.roles.tasks import TaskView

if TYPE_CHECKING:
    from agents.dispute.program import Program
    from agents.dispute.provider import TraceProvider
    from agents.dispute.replay import ReplayProvider
    from agents.learning.layout import State
    from agents.node.metrics import AgentMetrics
    from agents.roles.connection import Connection
    from agents.store import ArtifactStore

log = logging.getLogger(__name__)

# A task's program, by spec CID: derived from the spec alone (a traced run), so kept.
_PROGRAMS: dict[str, Program] = {}


class GameDesk:
    """Plays the games of one agent (see the module docstring)."""

    def __init__(
        self,
        conn: Connection,
        db: sqlite3.Connection,
        executor: TransactionExecutor,
        metrics: AgentMetrics,
        cache: Path,
        traced: Callable[[int, int], OpeningResult | None] = lambda task, segment: None,
    ) -> None:
        self.conn = conn
        self.me = conn.me
        self.executor = executor
        self.metrics = metrics
        self.cache = cache
        self.traced = traced  # this agent's trace of (task, segment), if it made one
        self.game = conn.deployment.contract(GAME)
        self.events = EventSource(
            conn.client,
            [self.game],
            db,
            start_block=conn.deployment.block,
            confirmations=conn.config.chain.confirmations,
            reorg_window=conn.config.chain.reorg_window,
            source="games",
            subject=game_subject,
        )
        self.player = GamePlayer(
            executor,
            self.game,
            self._provider,
            from_block=conn.deployment.block,
            store=conn.store,
            wall_clock=True,
        )
        self.games: dict[int, GameRecord] = {}
        self._tasks: Mapping[int, TaskView] = {}
        self._providers: dict[int, TraceProvider | None] = {}
        self._refused: set[int] = set()

    @staticmethod
    def available(conn: Connection) -> bool:
        """Whether the deployment has a game contract to play on."""
        return GAME in conn.deployment.contracts

    def tick(
        self, tasks: Mapping[int, TaskView], head: int | None = None, read: bool = True
    ) -> int:
        """Read new game events (up to ``head``; none without ``read``: the chain has not moved
        since the last read) and step every game left to play; returns the moves sent."""
        if read:
            self.events.poll(head)
            self.games = fold_games(self.events.all_events())
        self._tasks = tasks
        sent = 0
        for game_id in to_play(self.games, self.me, self.executor.journal.statuses()):
            if game_id in self._refused and not self.games[game_id].resolved:
                continue
            try:
                move = self.player.step(game_id)
            except RpcUnavailableError:
                raise
            except (ChainError, VeritrainError) as exc:
                self.metrics.game_errors.inc()
                event(log, "game step failed", level=logging.WARNING, game=game_id, error=str(exc))
                continue
            if move is not None:
                sent += 1
                event(log, "game move", game=game_id, function=move.function, note=move.note)
        for name, count in standing(self.games, self.me).items():
            self.metrics.games.labels(standing=name).set(count)
        return sent

    def _provider(self, state: GameState) -> TraceProvider:
        """The agent's own trace of the game's segment (``DisputeError`` when it has none, or
        when the root it committed in the game is not its replay's)."""
        game_id = state.game_id
        if game_id not in self._providers:
            self._providers[game_id] = self._build(game_id)
        provider = self._providers[game_id]
        if provider is None:
            raise DisputeError(f"game {game_id}: no task of this agent has its checkpoints")
        me = state.party_of(self.me)
        if me is not None and provider.trace_root != state.traces[int(me)]:
            if game_id not in self._refused:
                self._refused.add(game_id)
                event(
                    log,
                    "game not played: the committed trace root is not this agent's replay",
                    level=logging.WARNING,
                    game=game_id,
                    party=Party(me).name,
                )
            raise DisputeError(f"game {game_id}: this agent's trace is not the one it committed")
        return provider

    def _build(self, game_id: int) -> TraceProvider | None:
        record = self.games.get(game_id)
        view = task_of(record, self._tasks) if record is not None else None
        if record is None or view is None or view.spec_cid is None or view.proof_cid is None:
            return None
        # A devnet adversary plays the lie it traced for its report (agents.roles.verifier).
        traced = self.traced(view.task_id, record.segment)
        fault = traced.fault if traced is not None else None
        provider, _ = segment_provider(
            self.conn.store, view.spec_cid, view.proof_cid, record.segment, self.cache, fault
        )
        return provider


def segment_provider(
    store: ArtifactStore,
    spec_cid: str,
    proof_cid: str,
    segment: int,
    cache: Path | None,
    fault: Mapping[str, int | str] | None = None,
) -> tuple[ReplayProvider, list[bytes]]:
    """An honest replay of ``segment`` of the task of ``spec_cid`` from the checkpoints of the
    proof ``proof_cid``, and the proof's checkpoint state roots (``DisputeError`` for a segment
    the proof does not have)."""
    from agents.dispute.programs import program_of
    from agents.dispute.replay import Fault, ReplayProvider
    from agents.learning.proof import artifact_limits, decode_checkpoint, read_manifest
    from agents.roles.work import load_task

    task = load_task(store, spec_cid)
    manifest = read_manifest(
        store, proof_cid, artifact_limits(task.spec).manifest, f"proof {proof_cid}"
    )
    if not 0 <= segment < len(manifest.checkpoints) - 1:
        raise DisputeError(f"proof {proof_cid} has no segment {segment}")

    def checkpoint(index: int) -> State:
        data = store.get_bytes(manifest.checkpoints[index].cid)
        return decode_checkpoint(data, f"checkpoint {index}")

    program = _PROGRAMS.get(spec_cid)
    if program is None:
        program = _PROGRAMS[spec_cid] = program_of(task)
    lie = Fault(**fault) if fault else None  # type: ignore[arg-type]
    provider = ReplayProvider(
        task, program, segment, checkpoint(segment), checkpoint(segment + 1), fault=lie, cache=cache
    )
    return provider, [bytes.fromhex(c.state_root) for c in manifest.checkpoints]


def opening_job(store: ArtifactStore, job: OpeningJob, cache: Path) -> OpeningResult:
    """This agent's trace of segment ``job.segment`` (its root and the distance it ends with)
    and the ``Opening`` of a game over it: the program header and the segment's two
    checkpoint state roots with their proofs in the committed checkpoint tree."""
    from agents.dispute.tree import MerkleLevels

    provider, roots = segment_provider(store, job.spec_cid, job.proof_cid, job.segment, cache)
    fault = _lie(provider, job.lie, job.segment)
    if fault is not None:
        provider, _ = segment_provider(
            store, job.spec_cid, job.proof_cid, job.segment, cache, fault
        )
    tree = MerkleLevels(roots)
    bits = _distance_bits(provider)
    return OpeningResult(
        segment=job.segment,
        trace_root=Root(provider.trace_root),
        distance=bits,
        program_header=provider.program.header().encode(),
        start_state=Root(roots[job.segment]),
        start_proof=tuple(Root(p) for p in tree.proof(job.segment)),
        claimed_state=Root(roots[job.segment + 1]),
        claimed_proof=tuple(Root(p) for p in tree.proof(job.segment + 1)),
        fault=fault,
        distance_proof=distance_proof(provider, roots, job.segment, exact=provider_exact(provider)),
    )


def publication_job(store: ArtifactStore, job: PublicationJob) -> PublicationResult:
    """Checkpoint ``job.segment`` of this agent's committed proof as ``publishState`` takes it,
    checked against the state root the proof's manifest lists (``DisputeError`` for a segment
    the proof does not have or a checkpoint that does not hash to its root)."""
    from agents.commitment import state_root, state_tensors
    from agents.dispute.tree import MerkleLevels
    from agents.learning.proof import artifact_limits, decode_checkpoint, read_manifest
    from agents.roles.work import load_task

    task = load_task(store, job.spec_cid)
    manifest = read_manifest(
        store, job.proof_cid, artifact_limits(task.spec).manifest, f"proof {job.proof_cid}"
    )
    if not 0 <= job.segment < len(manifest.checkpoints) - 1:
        raise DisputeError(f"proof {job.proof_cid} has no segment {job.segment}")
    entry = manifest.checkpoints[job.segment]
    state = decode_checkpoint(store.get_bytes(entry.cid), f"checkpoint {job.segment}")
    root = state_root(state)
    if root.hex() != entry.state_root:
        raise DisputeError(f"checkpoint {job.segment} does not hash to its state root")
    roots = [bytes.fromhex(c.state_root) for c in manifest.checkpoints]
    return PublicationResult(
        segment=job.segment,
        state_root=Root(root),
        tensors=tuple(state_tensors(state)),
        proof=tuple(Root(p) for p in MerkleLevels(roots).proof(job.segment)),
    )


def provider_exact(provider: ReplayProvider) -> bool:
    """Whether the provider's task verifies in exact mode (by the end state's root)."""
    return bool(provider.task.spec.verification.tolerance == "exact")


def distance_proof(
    provider: TraceProvider, roots: list[bytes], segment: int, *, exact: bool
) -> tuple[Any, ...]:
    """The pool's ``DistanceProof`` of what ``provider``'s trace ends with: in tolerant mode the
    distance computation's root, its last record and that record's one output leaf; in exact
    mode the last step's root, its STATE record (the end state's root) and the claimed
    checkpoint with its proof in the checkpoint tree (``roots``)."""
    from agents.dispute.tree import MerkleLevels

    def hexed(data: bytes) -> str:
        return "0x" + data.hex()

    trace = provider.trace_tree
    claimed_proof = [hexed(p) for p in MerkleLevels(roots).proof(segment + 1)]
    step = provider.step_count - 1 if exact else provider.step_count
    records = provider.records(step)
    last = len(records) - 1
    header = b"" if exact else provider.output_header(step, last)
    leaf = b"" if exact else provider.leaf(step, last, 0)
    return (
        hexed(provider.program.header().encode()),
        hexed(provider.step_tree(step).root),
        [hexed(p) for p in trace.proof(step)],
        hexed(records[last].encode()),
        [hexed(p) for p in provider.step_tree(step).proof(last)],
        hexed(header),
        hexed(leaf),
        hexed(roots[segment + 1]),
        claimed_proof,
    )


def _distance_bits(provider: TraceProvider) -> int:
    """The binary32 bits of the distance a trace ends with (its last op's output)."""
    step = provider.step_count
    last = len(provider.records(step)) - 1
    value = np.asarray(provider.tensors(step, last).output, dtype=np.float32)
    return int(value.reshape(-1)[:1].view(np.uint32)[0])


def _lie(provider: TraceProvider, lie: str, segment: int) -> dict[str, int | str] | None:
    """The fault of a devnet adversary's lying trace: ``pass`` zeroes the distance the trace
    ends with (nothing to lie about when it is +0 already), ``fail`` flips a value somewhere
    in the segment (chosen by the segment)."""
    import random
    from dataclasses import asdict

    from agents.dispute.replay import Fault, fault_choices

    if lie == "pass":
        bits = _distance_bits(provider)
        if bits == 0:
            return None
        last = len(provider.records(provider.step_count)) - 1
        return asdict(Fault("value", step=provider.step_count, op=last, element=0, mask=bits))
    if lie == "fail":
        chosen = fault_choices(provider, "value", random.Random(segment))
        return None if chosen is None else asdict(chosen)
    return None
