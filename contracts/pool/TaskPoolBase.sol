// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJackpot} from "../interfaces/IJackpot.sol";
import {TaskEscrow} from "../escrow/TaskEscrow.sol";
import {TaskId, Record, Randomness, Binary32, Timestamp, Duration, Status, Params, Task} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title What both halves of the task pool share: the lifecycle's parameters and checks
/// @notice `TaskPool` (the calls of a task's happy path) and `TaskPoolSettlement` (timeouts, cancellation,
///         sweeps, views; run by delegatecall on the pool's storage) are both built on this base with the
///         same parameters, so they read the same storage and the same immutables.
abstract contract TaskPoolBase is TaskEscrow {
    /// @dev binary32 +infinity; finite non-negative values have smaller bit patterns.
    uint32 internal constant BINARY32_INFINITY = 0x7F800000;

    Duration internal immutable _profileWindow;
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

    /// @param params The deployment parameters (docs/contracts.md, "Parameters").
    /// @param jackpot_ The jackpot contract that receives fees and slashed shares.
    constructor(Params memory params, IJackpot jackpot_) TaskEscrow(params, jackpot_) {
        if (Duration.unwrap(params.profileWindow) == 0) revert Errors.InvalidParameter("profileWindow");
        if (Duration.unwrap(params.claimWindow) == 0) revert Errors.InvalidParameter("claimWindow");
        if (Duration.unwrap(params.maxTrainingWindow) == 0) revert Errors.InvalidParameter("maxTrainingWindow");
        if (Duration.unwrap(params.verifierClaimWindow) == 0) revert Errors.InvalidParameter("verifierClaimWindow");
        if (Duration.unwrap(params.seedRevealWindow) == 0) revert Errors.InvalidParameter("seedRevealWindow");
        if (Duration.unwrap(params.verifyWindow) == 0) revert Errors.InvalidParameter("verifyWindow");
        if (Duration.unwrap(params.challengeWindow) == 0) revert Errors.InvalidParameter("challengeWindow");
        if (params.minSampledSegments == 0) revert Errors.InvalidParameter("minSampledSegments");
        if (params.maxVerificationRounds == 0) revert Errors.InvalidParameter("maxVerificationRounds");
        if (params.forcedErrorPpm > 1_000_000) revert Errors.InvalidParameter("forcedErrorPpm");
        if (Binary32.unwrap(params.maxThreshold) >= BINARY32_INFINITY) revert Errors.InvalidParameter("maxThreshold");
        _profileWindow = params.profileWindow;
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

    /// @notice Whether a verifier with `secret` is forced to err on a task with this randomness.
    function _isForced(bytes32 secret, Randomness randomness) internal view returns (bool) {
        return uint256(keccak256(abi.encode(secret, randomness))) < _forcedBelow;
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
}
