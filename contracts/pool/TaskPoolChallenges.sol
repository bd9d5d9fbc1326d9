// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPoolChallenges} from "../interfaces/ITaskPool.sol";
import {IJackpot} from "../interfaces/IJackpot.sol";
import {IPinpointGame, GameSpec} from "../interfaces/IPinpointGame.sol";
import {TaskPoolHistory} from "./TaskPoolHistory.sol";
import {TaskPoolFaults} from "./TaskPoolFaults.sol";
import {PoolProxy} from "./PoolProxy.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {ProgramFormat, ProgramFacts} from "../dispute/ProgramFormat.sol";
import {
    TaskId,
    Root,
    Binary32,
    Timestamp,
    Status,
    Mode,
    Params,
    Task,
    Flag,
    ChallengeId,
    Claim,
    ChallengeState,
    Challenge,
    Folded,
    Opening,
    DistanceProof,
    GameId,
    Ruling
} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title TaskPoolChallenges: anyone disputes a report or a proof in a pinpoint game the pool opens
/// @notice Runs only by delegatecall from the settlement half (itself run by the pool), on the pool's
///         storage: everyone calls these at the pool's address (docs/contracts.md, "Challenges").
///         Called at its own address it reads its own, empty storage and holds no money.
contract TaskPoolChallenges is TaskPoolHistory, PoolProxy, ITaskPoolChallenges {
    uint32 internal constant BINARY32_SIGN = 0x80000000;
    uint32 internal constant BINARY32_INF = 0x7F800000;
    /// @dev A STATE record's bytes before its state root: op 0x0040, no attributes, no inputs.
    bytes5 internal constant STATE_PREFIX = 0x0040000000;

    /// @notice The fault reports' half, created with the same parameters; it runs on the pool's storage.
    address public immutable faults;

    /// @param params The deployment parameters, the pool's own.
    /// @param jackpot_ The pool's jackpot.
    /// @param game_ The pinpoint game challenges are played in.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_) TaskPoolHistory(params, jackpot_, game_) {
        faults = address(new TaskPoolFaults(params, jackpot_, game_));
    }

    /// @notice Every call no other half implements runs the fault reports' half (`TaskPoolFaults`),
    ///         still on the pool's storage; a selector it lacks too (or a plain transfer) is refused.
    function _implementation() internal view override returns (address) {
        return faults;
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeReport(
        TaskId taskId,
        uint32 position,
        Root challengerTrace,
        Folded[] calldata history,
        Opening calldata opening
    ) external payable nonReentrant returns (ChallengeId challengeId) {
        Task storage t = _inTime(taskId, Status.ChallengeWindow);
        if (_faultRound[taskId] == t.rounds) revert Errors.FaultReport(taskId);
        uint256 bond = _bond();
        if (msg.value != bond) revert Errors.WrongValue(bond, msg.value);
        if (Root.unwrap(challengerTrace) == 0) revert Errors.EmptyCommitment();
        Committed memory c = _committed(t, taskId, history);
        (uint32 segment, Root defended) = _reported(t, c, history, position);
        GameId gameId = _open(c, segment, opening, defended, challengerTrace, t.verifier, msg.sender, bond);
        challengeId = _store(taskId, gameId, Claim.Report, ChallengeState.Playing, segment, position, challengerTrace);
        _opened(t, taskId);
        emit ChallengeOpened(
            taskId,
            challengeId,
            msg.sender,
            Claim.Report,
            segment,
            position,
            defended,
            challengerTrace,
            gameId,
            Timestamp.wrap(0)
        );
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeProof(TaskId taskId, uint32 segment, Root challengerTrace)
        external
        payable
        nonReentrant
        returns (ChallengeId challengeId)
    {
        Task storage t = _inTime(taskId, Status.ChallengeWindow);
        if (msg.sender == t.solver) revert Errors.NotAuthorized(taskId, msg.sender);
        uint256 bond = _bond();
        if (msg.value != bond) revert Errors.WrongValue(bond, msg.value);
        if (Root.unwrap(challengerTrace) == 0) revert Errors.EmptyCommitment();
        if (segment >= t.segments) revert Errors.InvalidPosition(segment, t.segments);
        Timestamp deadline = _after(_verifyWindow);
        challengeId =
            _store(taskId, GameId.wrap(0), Claim.Proof, ChallengeState.Answering, segment, 0, challengerTrace);
        _challenges[challengeId].deadline = deadline;
        _deposits += bond;
        _opened(t, taskId);
        emit ChallengeOpened(
            taskId,
            challengeId,
            msg.sender,
            Claim.Proof,
            segment,
            0,
            Root.wrap(0),
            challengerTrace,
            GameId.wrap(0),
            deadline
        );
    }

    /// @inheritdoc ITaskPoolChallenges
    function answerChallenge(
        ChallengeId challengeId,
        Root solverTrace,
        Binary32 distance,
        Folded[] calldata history,
        Opening calldata opening
    ) external nonReentrant returns (GameId gameId) {
        Challenge storage c = _challenge(challengeId);
        if (c.state != ChallengeState.Answering) revert Errors.WrongChallengeState(challengeId, c.state);
        TaskId taskId = c.taskId;
        if (block.timestamp > Timestamp.unwrap(c.deadline)) revert Errors.DeadlinePassed(taskId, c.deadline);
        Task storage t = _tasks[taskId];
        if (msg.sender != t.solver) revert Errors.NotAuthorized(taskId, msg.sender);
        uint32 d = Binary32.unwrap(distance);
        if (d & BINARY32_SIGN != 0 || d > Binary32.unwrap(t.threshold)) {
            revert Errors.DistanceAboveThreshold(distance, t.threshold);
        }
        if (Root.unwrap(solverTrace) == 0) revert Errors.EmptyCommitment();
        Committed memory h = _committed(t, taskId, history);
        uint256 bond = _bond();
        _deposits -= bond;
        gameId = _open(h, c.segment, opening, solverTrace, c.challengerTrace, msg.sender, c.challenger, bond);
        c.game = gameId;
        c.state = ChallengeState.Playing;
        c.defenderTrace = solverTrace;
        c.distance = distance;
        emit ChallengeAnswered(taskId, challengeId, msg.sender, solverTrace, distance, gameId);
    }

    /// @inheritdoc ITaskPoolChallenges
    function disproveReport(TaskId taskId, uint32 position, Folded[] calldata history, DistanceProof calldata proof)
        external
        nonReentrant
    {
        Task storage t = _inTime(taskId, Status.ChallengeWindow);
        if (_faultRound[taskId] == t.rounds) revert Errors.FaultReport(taskId);
        Committed memory c = _committed(t, taskId, history);
        (uint32 segment, Root root) = _reported(t, c, history, position);
        Binary32 stated = _reportedDistance(t, history[c.report].data, position);
        Binary32 traced = _tracedDistance(t, c, segment, root, proof);
        if (Binary32.unwrap(traced) == Binary32.unwrap(stated)) revert Errors.NothingProven();
        emit DistanceDisproved(taskId, msg.sender, ChallengeId.wrap(0), position, stated, traced);
        t.flags |= Flag.DEFEATED;
        _catches[taskId].push(Catch(msg.sender, position));
        if (_openChallenges[taskId] == 0) _afterDisputes(t, taskId);
    }

    /// @inheritdoc ITaskPoolChallenges
    function disproveAnswer(ChallengeId challengeId, Folded[] calldata history, DistanceProof calldata proof)
        external
        nonReentrant
    {
        Challenge storage ch = _challenge(challengeId);
        if (ch.claim != Claim.Proof || ch.state != ChallengeState.Playing) {
            revert Errors.WrongChallengeState(challengeId, ch.state);
        }
        TaskId taskId = ch.taskId;
        Task storage t = _tasks[taskId];
        Committed memory c = _committed(t, taskId, history);
        Binary32 traced = _tracedDistance(t, c, ch.segment, ch.defenderTrace, proof);
        if (Binary32.unwrap(traced) == Binary32.unwrap(ch.distance)) revert Errors.NothingProven();
        emit DistanceDisproved(taskId, msg.sender, challengeId, 0, ch.distance, traced);
        ch.state = ChallengeState.Upheld;
        t.flags |= Flag.PROOF_FAILED;
        if (_proofWinner[taskId] == address(0)) _proofWinner[taskId] = msg.sender;
        emit ChallengeResolved(taskId, challengeId, ch.challenger, Claim.Proof, ChallengeState.Upheld, Ruling.None);
        _closed(t, taskId);
    }

    /// @inheritdoc ITaskPoolChallenges
    function resolve(ChallengeId challengeId) external nonReentrant {
        Challenge storage c = _challenge(challengeId);
        TaskId taskId = c.taskId;
        Ruling ruling = Ruling.None;
        bool upheld = false;
        if (c.state == ChallengeState.Answering) {
            // The solver did not stand behind its proof: it fails; the deposit goes back.
            if (block.timestamp <= Timestamp.unwrap(c.deadline)) {
                revert Errors.DeadlineNotReached(taskId, c.deadline);
            }
            uint256 bond = _bond();
            _deposits -= bond;
            _credit(c.challenger, bond);
            upheld = true;
        } else if (c.state == ChallengeState.Playing) {
            ruling = _game.game(c.game).ruling;
            if (ruling == Ruling.None) revert Errors.GameNotResolved(c.game);
            upheld = ruling != Ruling.DefenderWins;
        } else {
            revert Errors.WrongChallengeState(challengeId, c.state);
        }
        ChallengeState state = upheld ? ChallengeState.Upheld : ChallengeState.Rejected;
        c.state = state;
        Task storage t = _tasks[taskId];
        if (upheld) {
            // Both lost: the claim lost too, but nobody won what the loser forfeits.
            address winner = ruling == Ruling.BothLose ? address(0) : c.challenger;
            if (c.claim == Claim.Report) {
                t.flags |= Flag.DEFEATED;
                _catches[taskId].push(Catch(winner, c.position));
            } else {
                t.flags |= Flag.PROOF_FAILED;
                if (winner != address(0) && _proofWinner[taskId] == address(0)) _proofWinner[taskId] = winner;
            }
        }
        emit ChallengeResolved(taskId, challengeId, c.challenger, c.claim, state, ruling);
        _closed(t, taskId);
    }

    /// @inheritdoc ITaskPoolChallenges
    function withdrawCredit() external nonReentrant returns (uint256 amount) {
        amount = _credits[msg.sender];
        if (amount == 0) revert Errors.NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        _creditTotal -= amount;
        emit CreditWithdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice keccak256 of the parameters, jackpot and game this half was built with (the pool checks
    ///         it against its own when it is deployed).
    function configuration() external view returns (bytes32) {
        return _configuration;
    }

    /// @inheritdoc ITaskPoolChallenges
    function challenge(ChallengeId challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeBond() external view returns (uint256) {
        return _bond();
    }

    /// @inheritdoc ITaskPoolChallenges
    function credit(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeFunds() external view returns (uint256 credits, uint256 deposits) {
        return (_creditTotal, _deposits);
    }

    /// @inheritdoc ITaskPoolChallenges
    function game() external view returns (address) {
        return address(_game);
    }

    /// @inheritdoc ITaskPoolChallenges
    function nextChallengeId() external view returns (ChallengeId) {
        return ChallengeId.wrap(_lastChallengeId + 1);
    }

    // ------------------------------------------------------------------ internals

    function _bond() private view returns (uint256) {
        return _game.requiredBond();
    }

    function _challenge(ChallengeId challengeId) private view returns (Challenge storage c) {
        c = _challenges[challengeId];
        if (c.claim == Claim.None) revert Errors.UnknownChallenge(challengeId);
    }

    function _store(
        TaskId taskId,
        GameId gameId,
        Claim claim,
        ChallengeState state,
        uint32 segment,
        uint32 position,
        Root challengerTrace
    ) private returns (ChallengeId challengeId) {
        uint64 id = _lastChallengeId + 1;
        _lastChallengeId = id;
        challengeId = ChallengeId.wrap(id);
        _challenges[challengeId] = Challenge({
            taskId: taskId,
            game: gameId,
            claim: claim,
            state: state,
            segment: segment,
            position: position,
            deadline: Timestamp.wrap(0),
            challenger: msg.sender,
            challengerTrace: challengerTrace,
            defenderTrace: Root.wrap(0),
            distance: Binary32.wrap(0)
        });
    }

    /// @notice Counts an open challenge: settlement, withdrawals and the reveal wait for it.
    function _opened(Task storage t, TaskId taskId) private {
        _openChallenges[taskId] += 1;
        t.disputes = 1;
    }

    /// @notice Counts a challenge ended; the last one's end applies the consequences.
    function _closed(Task storage t, TaskId taskId) private {
        uint256 open = _openChallenges[taskId] - 1;
        _openChallenges[taskId] = open;
        if (open == 0) {
            t.disputes = 0;
            _afterDisputes(t, taskId);
        }
    }

    /// @notice The distance the current report states at `position` (VerificationReported data: the
    ///         sample's distances at the offset in word 0, the extra segments' in word 2).
    function _reportedDistance(Task storage t, bytes calldata reportData, uint32 position)
        private
        view
        returns (Binary32)
    {
        uint256 sampled = _sampleCount(t.segments, t.sampledSegments);
        (, bytes32 value) =
            position < sampled ? _element(reportData, 0, position) : _element(reportData, 2, position - sampled);
        return Binary32.wrap(uint32(uint256(value)));
    }

    /// @notice What trace root `trace` of `segment` ends with, proved by `p` (see `DistanceProof`):
    ///         tolerant tasks, the distance computation's last value; exact tasks, +0 when the
    ///         trace's end state is the claimed checkpoint and +inf when it is not.
    function _tracedDistance(Task storage t, Committed memory c, uint32 segment, Root trace, DistanceProof calldata p)
        private
        view
        returns (Binary32)
    {
        bytes32 given = sha256(p.programHeader);
        if (given != Root.unwrap(c.program)) revert Errors.ProgramMismatch(Root.unwrap(c.program), given);
        ProgramFacts memory f = ProgramFormat.facts(p.programHeader);
        uint256 first = uint256(segment) * f.interval;
        if (segment >= f.segments || first >= f.steps) revert Errors.InvalidCheckpoint(segment);
        uint256 remaining = f.steps - first;
        uint256 steps = remaining < f.interval ? remaining : f.interval;
        uint256 levels = Sha256Tree.depth(steps + 1);
        bytes32 record = sha256(p.record);
        if (t.mode == Mode.Exact) {
            Sha256Tree.verify(p.node, steps - 1, p.nodeProof, levels, Root.unwrap(trace));
            Sha256Tree.verify(record, f.stepOps - 1, p.recordProof, Sha256Tree.depth(f.stepOps), p.node);
            if (p.record.length != 37 || bytes5(p.record[0:5]) != STATE_PREFIX) revert Errors.MalformedRecord();
            uint256 checkpoints = Sha256Tree.depth(uint256(f.segments) + 1);
            bytes32 claimed = Root.unwrap(p.claimedState);
            if (
                p.claimedProof.length != checkpoints
                    || Sha256Tree.climb(claimed, uint256(segment) + 1, p.claimedProof) != Root.unwrap(c.checkpoints)
            ) revert Errors.InvalidCheckpoint(uint256(segment) + 1);
            return Binary32.wrap(bytes32(p.record[5:37]) == claimed ? 0 : BINARY32_INF);
        }
        Sha256Tree.verify(p.node, steps, p.nodeProof, levels, Root.unwrap(trace));
        Sha256Tree.verify(record, f.distanceOps - 1, p.recordProof, Sha256Tree.depth(f.distanceOps), p.node);
        if (p.record.length < 32 || p.leaf.length != Sha256Tree.LEAF_BYTES) revert Errors.MalformedRecord();
        if (Sha256Tree.numel(p.header) != 1) revert Errors.MalformedHeader();
        bytes32 output = bytes32(p.record[p.record.length - 32:]);
        if (Sha256Tree.tensorRoot(p.header, sha256(p.leaf)) != output) revert Errors.InvalidMerkleProof();
        // The value is the leaf's first binary32, little-endian.
        return Binary32.wrap(
            uint32(uint8(p.leaf[0])) | (uint32(uint8(p.leaf[1])) << 8) | (uint32(uint8(p.leaf[2])) << 16)
                | (uint32(uint8(p.leaf[3])) << 24)
        );
    }

    /// @notice Opens the game over `segment` on the task's committed program and checkpoint roots.
    function _open(
        Committed memory c,
        uint32 segment,
        Opening calldata opening,
        Root defenderTrace,
        Root challengerTrace,
        address defender,
        address challenger,
        uint256 bond
    ) private returns (GameId) {
        GameSpec memory spec = GameSpec({
            program: c.program,
            checkpoints: c.checkpoints,
            segment: segment,
            startState: opening.startState,
            claimedState: opening.claimedState,
            defenderTrace: defenderTrace,
            challengerTrace: challengerTrace
        });
        return _game.create{value: bond}(
            spec, opening.programHeader, opening.startProof, opening.claimedProof, defender, challenger
        );
    }
}
