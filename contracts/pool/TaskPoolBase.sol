// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJackpot} from "../interfaces/IJackpot.sol";
import {IPinpointGame} from "../interfaces/IPinpointGame.sol";
import {TaskEscrow} from "../escrow/TaskEscrow.sol";
import {
    TaskId, Record, Randomness, Binary32, Timestamp, Duration, Status, Outcome, Params, Task, Flag
} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title What both halves of the task pool share: the lifecycle's parameters and checks
/// @notice `TaskPool` (the calls of a task's happy path) and `TaskPoolSettlement` (timeouts, cancellation,
///         sweeps, views; run by delegatecall on the pool's storage) are both built on this base with the
///         same parameters, so they read the same storage and the same immutables.
abstract contract TaskPoolBase is TaskEscrow {
    /// @dev binary32 +infinity; finite non-negative values have smaller bit patterns.
    uint32 internal constant BINARY32_INFINITY = 0x7F800000;
    /// @dev The longest seed window: 256 blocks of 12 seconds (Ethereum's slot). `blockhash` gives the
    ///      claim block's hash, which decides forced errors, for the 256 blocks after it; a chain with
    ///      at most one block per 12 s cannot get that far within this window, so the solver cannot make
    ///      its verifier's claim unforceable by waiting (only blocks others mine can). A chain with
    ///      shorter blocks needs a shorter window (docs/operators.md), which the pool cannot tell.
    uint32 internal constant MAX_SEED_REVEAL_WINDOW = 256 * 12;

    Duration internal immutable _profileWindow;
    Duration internal immutable _profileReviewWindow;
    Duration internal immutable _claimWindow;
    Duration internal immutable _maxTrainingWindow;
    Duration internal immutable _verifierClaimWindow;
    Duration internal immutable _seedRevealWindow;
    Duration internal immutable _verifyWindow;
    Duration internal immutable _challengeWindow;
    uint16 internal immutable _minSampledSegments;
    uint8 internal immutable _maxVerificationRounds;
    uint32 internal immutable _forcedErrorPpm;
    Binary32 internal immutable _maxThreshold;
    /// @dev A verifier is forced iff keccak256(abi.encode(secret, randomness)) < this (p · 2^256).
    uint256 internal immutable _forcedBelow;
    /// @dev The pinpoint game challenges are played in.
    IPinpointGame internal immutable _game;
    /// @dev keccak256 of the deployment's parameters, jackpot and game: the halves must agree.
    bytes32 internal immutable _configuration;

    /// @dev The verification round (`Task.rounds`) whose report was a fault report (`reportFault`);
    ///      the current report is one iff this equals the task's rounds. Written and read by the
    ///      fault reports' half, read by the challenges half too (slither sees the halves apart, so it
    ///      finds it never written there); declared here so that every half has the same layout.
    // slither-disable-next-line uninitialized-state
    mapping(TaskId taskId => uint8) internal _faultRound;

    /// @param params The deployment parameters (docs/contracts.md, "Parameters").
    /// @param jackpot_ The jackpot contract that receives fees and slashed shares.
    /// @param game_ The pinpoint game the pool opens its challenges in.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_) TaskEscrow(params, jackpot_) {
        if (address(game_) == address(0)) revert Errors.ZeroAddress();
        _game = game_;
        _configuration = keccak256(abi.encode(params, jackpot_, game_));
        if (Duration.unwrap(params.profileWindow) == 0) revert Errors.InvalidParameter("profileWindow");
        if (Duration.unwrap(params.profileReviewWindow) == 0) revert Errors.InvalidParameter("profileReviewWindow");
        if (Duration.unwrap(params.claimWindow) == 0) revert Errors.InvalidParameter("claimWindow");
        if (Duration.unwrap(params.maxTrainingWindow) == 0) revert Errors.InvalidParameter("maxTrainingWindow");
        if (Duration.unwrap(params.verifierClaimWindow) == 0) revert Errors.InvalidParameter("verifierClaimWindow");
        uint32 seedWindow = Duration.unwrap(params.seedRevealWindow);
        if (seedWindow == 0 || seedWindow > MAX_SEED_REVEAL_WINDOW) revert Errors.InvalidParameter("seedRevealWindow");
        if (Duration.unwrap(params.verifyWindow) == 0) revert Errors.InvalidParameter("verifyWindow");
        if (Duration.unwrap(params.challengeWindow) == 0) revert Errors.InvalidParameter("challengeWindow");
        if (params.minSampledSegments == 0) revert Errors.InvalidParameter("minSampledSegments");
        if (params.maxVerificationRounds == 0) revert Errors.InvalidParameter("maxVerificationRounds");
        if (params.forcedErrorPpm > 1_000_000) revert Errors.InvalidParameter("forcedErrorPpm");
        if (Binary32.unwrap(params.maxThreshold) >= BINARY32_INFINITY) revert Errors.InvalidParameter("maxThreshold");
        _profileWindow = params.profileWindow;
        _profileReviewWindow = params.profileReviewWindow;
        _claimWindow = params.claimWindow;
        _maxTrainingWindow = params.maxTrainingWindow;
        _verifierClaimWindow = params.verifierClaimWindow;
        _seedRevealWindow = params.seedRevealWindow;
        _verifyWindow = params.verifyWindow;
        _challengeWindow = params.challengeWindow;
        _minSampledSegments = params.minSampledSegments;
        _maxVerificationRounds = params.maxVerificationRounds;
        _forcedErrorPpm = params.forcedErrorPpm;
        _maxThreshold = params.maxThreshold;
        // A forced error is a hash below ppm units of floor((2^256 - 1) / 10^6): the division first, so
        // the product cannot overflow (ppm <= 10^6); agents compute the same bound.
        // slither-disable-next-line divide-before-multiply
        _forcedBelow = (type(uint256).max / 1_000_000) * params.forcedErrorPpm;
    }

    /// @notice Whether a verifier with `secret` is forced to err on a task with this randomness, its claim
    ///         having been mined in the block whose hash is `claimBlockHash`. The solver and the verifier
    ///         know the randomness and the secret when the claim is sent, not the hash of the block that
    ///         will hold it: a pair that is both cannot grind the secret until it is forced. A zero hash (the
    ///         seed was revealed when the chain no longer gave it) forces nobody.
    function _isForced(bytes32 secret, Randomness randomness, bytes32 claimBlockHash) internal view returns (bool) {
        if (claimBlockHash == 0) return false;
        bytes32 drawn = keccak256(abi.encode(randomness, claimBlockHash));
        return uint256(keccak256(abi.encode(secret, drawn))) < _forcedBelow;
    }

    /// @notice Emits a commitment event (topics: `topic0`, the task, the party; `data` its ABI-encoded
    ///         fields, exactly as the event's declaration in ITaskPoolEvents lays them out) and chains it
    ///         into the task record: record' = keccak256(record ‖ topic0 ‖ taskId ‖ party ‖ keccak256(data)).
    /// @dev One encoding serves both the log and the record.
    function _record(Task storage t, bytes32 topic0, TaskId taskId, address party, bytes memory data) internal {
        t.record = Record.wrap(keccak256(abi.encode(t.record, topic0, taskId, party, keccak256(data))));
        assembly ("memory-safe") {
            log3(add(data, 32), mload(data), topic0, and(taskId, 0xffffffffffffffff), and(party, sub(shl(160, 1), 1)))
        }
    }

    /// @notice The record after folding one event whose data is given as logged.
    function _chain(Record record, bytes32 topic0, TaskId taskId, address party, bytes calldata data)
        internal
        pure
        returns (Record)
    {
        return Record.wrap(keccak256(abi.encode(record, topic0, taskId, party, keccak256(data))));
    }

    /// @notice Word `index` of ABI-encoded event data.
    function _word(bytes calldata data, uint256 index) internal pure returns (bytes32) {
        return bytes32(data[32 * index:32 * index + 32]);
    }

    function _known(TaskId taskId) internal view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert Errors.UnknownTask(taskId);
    }

    /// @notice The task, checked to be in `expected` with its deadline not yet passed.
    function _inTime(TaskId taskId, Status expected) internal view returns (Task storage t) {
        t = _known(taskId);
        if (t.status != expected) revert Errors.WrongStatus(taskId, t.status);
        if (block.timestamp > Timestamp.unwrap(t.deadline)) revert Errors.DeadlinePassed(taskId, t.deadline);
    }

    function _afterDeadline(Task storage t, TaskId taskId) internal view {
        if (block.timestamp <= Timestamp.unwrap(t.deadline)) revert Errors.DeadlineNotReached(taskId, t.deadline);
    }

    function _after(Duration window) internal view returns (Timestamp) {
        return Timestamp.wrap(uint40(block.timestamp + Duration.unwrap(window)));
    }

    function _sampleCount(uint32 segments, uint16 sampledSegments) internal pure returns (uint256) {
        uint256 wanted = uint256(sampledSegments) + 2;
        return segments < wanted ? segments : wanted;
    }

    // ------------------------------------------------------------------ consequences of challenges

    /// @notice What follows when a task's last open challenge has ended: a failed proof fails the task;
    ///         a lost report is voided unless its verifier may have been forced (its reveal decides);
    ///         a report that may be forced gets its reveal window from now if its challenge window is over
    ///         (`RevealScheduled` says when the verifier may reveal).
    function _afterDisputes(Task storage t, TaskId taskId) internal {
        uint8 flags = t.flags;
        if (flags & Flag.PROOF_FAILED != 0) {
            if (flags & Flag.DEFEATED != 0) _applyDefeat(t, taskId);
            else _failProof(t, taskId);
        } else if (flags & Flag.FORCEABLE != 0) {
            Timestamp deadline = t.deadline;
            if (block.timestamp > Timestamp.unwrap(deadline)) {
                deadline = Timestamp.wrap(uint40(block.timestamp));
                t.deadline = deadline;
            }
            emit RevealScheduled(taskId, t.verifier, deadline, _verdictEnd(t));
        } else if (flags & Flag.DEFEATED != 0) {
            _applyDefeat(t, taskId);
        }
    }

    /// @notice Voids a report that lost: its verifier's stake goes to the first winner (to the jackpot if
    ///         every lost game was lost by both), its fee stays with the bounty, and the task is verified
    ///         again with the same randomness (settled unverified after `maxVerificationRounds` claims;
    ///         failed if its proof failed too).
    function _applyDefeat(Task storage t, TaskId taskId) internal {
        Catch[] storage catches = _catches[taskId];
        address winner = address(0);
        for (uint256 i = 0; i < catches.length; ++i) {
            if (catches[i].winner != address(0)) {
                winner = catches[i].winner;
                break;
            }
        }
        delete _catches[taskId];
        uint256 slashed = t.flags & Flag.STAKE_TAKEN != 0 ? 0 : t.bounty * _verifierStakeBps / BPS;
        if (slashed > 0) {
            if (winner != address(0)) _credit(winner, slashed);
            else _accrueJackpot(slashed);
        }
        emit ReportDefeated(taskId, t.verifier, winner, slashed);
        t.verifier = address(0);
        t.flags &= ~(Flag.FORCEABLE | Flag.DEFEATED | Flag.STAKE_TAKEN | Flag.FORFEITED);
        if (t.flags & Flag.PROOF_FAILED != 0) {
            // Settled on the voided report: no verifier is paid, its fee stays with the bounty. (A
            // task verified again needs no mark: its next report has a verifier, paid as usual.)
            t.flags |= Flag.VOID;
            _failProof(t, taskId);
        } else if (t.rounds >= _maxVerificationRounds) {
            _settle(t, taskId, Outcome.Unverified);
        } else {
            Timestamp deadline = _after(_verifierClaimWindow);
            t.status = Status.Committed;
            t.deadline = deadline;
            emit VerificationReopened(taskId, deadline);
        }
    }

    /// @notice Fails a task whose proof lost a challenge: the first winner is credited the jackpot's part
    ///         of the solver's slashed stake; the report no longer matters (no reveal is awaited).
    function _failProof(Task storage t, TaskId taskId) internal {
        // Written by the challenges half, which runs on this storage (slither sees the halves apart).
        // slither-disable-next-line uninitialized-state
        address winner = _proofWinner[taskId];
        uint256 award = 0;
        if (winner != address(0)) {
            uint256 slashed = t.bounty * _solverStakeBps / BPS;
            // The settlement table's own rounding: the jackpot's part of the slash is exactly this.
            // slither-disable-next-line divide-before-multiply
            award = slashed - slashed * _slashToSubmitterBps / BPS;
            _credit(winner, award);
            t.flags |= Flag.SLASH_AWARDED;
        }
        emit ProofFailed(taskId, t.solver, winner, award);
        t.flags &= ~Flag.FORCEABLE;
        _settle(t, taskId, Outcome.Failed);
    }
}
