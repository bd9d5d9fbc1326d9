// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TaskId, Status, Binary32, Timestamp, Duration} from "./Types.sol";

/// @title Errors
/// @notice Every custom error of the veritrain contracts, in one place; raised as `revert Errors.Name(...)`.
library Errors {
    /// @notice A deployment parameter is out of its documented range.
    error InvalidParameter(string name);

    /// @notice No task has this id.
    error UnknownTask(TaskId taskId);

    /// @notice The task is not in a state that allows this call.
    error WrongStatus(TaskId taskId, Status status);

    /// @notice Only a given party of the task may make this call.
    error NotAuthorized(TaskId taskId, address caller);

    /// @notice The solver of a task may not verify its own proof.
    error SolverCannotVerify(TaskId taskId, address solver);

    /// @notice The submitter of a task may not verify it.
    error SubmitterCannotVerify(TaskId taskId, address submitter);

    /// @notice The events' data given with the call do not rebuild the task's record.
    error RecordMismatch(TaskId taskId);

    /// @notice The revealed seed does not hash to the seed hash the solver committed.
    error WrongSeed(TaskId taskId);

    /// @notice The revealed secret does not hash to the secret hash the verifier committed.
    error WrongSecret(TaskId taskId);

    /// @notice The revealed trace roots and secret do not open the report's seal.
    error WrongSeal(TaskId taskId);

    /// @notice The task's report does not wait for its verifier to reveal a secret.
    error NothingToReveal(TaskId taskId);

    /// @notice The deadline of the task's current state has passed; only its timeout remains.
    error DeadlinePassed(TaskId taskId, Timestamp deadline);

    /// @notice The deadline of the task's current state has not passed yet.
    error DeadlineNotReached(TaskId taskId, Timestamp deadline);

    /// @notice The ETH sent with the call is not the amount the call requires.
    error WrongValue(uint256 expected, uint256 received);

    /// @notice The bounty is below the pool's minimum or above what a task can hold.
    error BountyOutOfRange(uint256 bounty, uint256 min, uint256 max);

    /// @notice The training window is zero or longer than the pool allows.
    error TrainingWindowOutOfRange(Duration window, Duration max);

    /// @notice A CID must be 1 to 128 bytes long.
    error InvalidCid(uint256 length);

    /// @notice A hash or root that commits to something must not be zero.
    error EmptyCommitment();

    /// @notice A threshold must be a finite, non-negative binary32 value.
    error InvalidThreshold(Binary32 threshold);

    /// @notice A task must have between one and 2^32 - 2 segments.
    error InvalidSegmentCount(uint32 segments);

    /// @notice A task must sample at least the pool's minimum of random segments.
    error InvalidSampleCount(uint16 sampledSegments, uint16 min);

    /// @notice A tolerant task's threshold bound must be a finite binary32 in (0, max]; an exact task's is 0.
    error InvalidThresholdBound(Binary32 bound, Binary32 max);

    /// @notice A profile's τ exceeds the bound the task's submitter accepts.
    error ThresholdAboveBound(Binary32 threshold, Binary32 bound);

    /// @notice A verification report must carry one distance per sampled segment.
    error WrongDistanceCount(uint256 expected, uint256 received);

    /// @notice A verification report must carry one trace root per segment it reports.
    error WrongTraceRootCount(uint256 expected, uint256 received);

    /// @notice A distance must be a binary32 value with its sign bit clear.
    error InvalidDistance(uint256 index, Binary32 distance);

    /// @notice Extra segments must be strictly increasing, below the segment count, at most 64 of
    ///         them, and come with one distance each.
    error InvalidExtraSegments(uint256 index);

    /// @notice The randomness of the task has not been drawn yet.
    error RandomnessPending(TaskId taskId);

    /// @notice The caller has nothing to withdraw from these tasks.
    error NothingToWithdraw(address account);

    /// @notice There is nothing to move to the jackpot.
    error NothingToSweep();

    /// @notice Sending ETH to an account failed; the payout stays owed.
    error TransferFailed(address to, uint256 amount);


    /// @notice Only the arbitration contract may make this call.
    error NotArbitration(address caller);

    /// @notice The zero address is not allowed here.
    error ZeroAddress();

    /// @notice An award may not exceed a third of the jackpot's reserve.
    error AwardAboveCap(uint256 requested, uint256 cap);

    /// @notice An amount must be greater than zero.
    error ZeroAmount();

    /// @notice The op code is not one this contract evaluates.
    error UnknownOp(uint16 op);

    /// @notice Packed operands must be a whole number of groups of `width` bytes.
    error MalformedOperands(uint256 length, uint256 width);

    /// @notice A proof does not hold against the root it claims to open (`what` says which part).
    error InvalidProof(bytes32 root, string what);

    /// @notice The computation reads leaf `leaf` of an input, and its proof does not carry it.
    error MissingLeaf(uint256 leaf);

    /// @notice An op record is not `u16be(op) u8(n) attributes u16be(m) m·root`, or an attribute
    ///         tag is unknown.
    error MalformedRecord();

    /// @notice One proof per input of the record is needed (none for a `STATE` record).
    error WrongInputCount(uint256 expected, uint256 given);

    /// @notice The element index is not below the tensor's element count.
    error ElementOutOfRange(uint256 element);

    /// @notice A query's term range must satisfy termFrom <= termTo <= terms and span at most
    ///         the one step's bound; a proved claim must be about the element itself.
    error TermsOutOfRange(uint256 termFrom, uint256 termTo, uint256 terms);

    /// @notice Claim `claim` states a value its own proof does not hold.
    error ClaimMismatch(uint256 claim);

    /// @notice The op has no elements to compute (`STATE`: its output is a root).
    error NoElements(uint16 op);
}
