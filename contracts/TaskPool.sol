// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPool} from "./interfaces/ITaskPool.sol";
import {IJackpot} from "./interfaces/IJackpot.sol";
import {TaskEscrow} from "./escrow/TaskEscrow.sol";
import {
    TaskId,
    Hash,
    Root,
    Randomness,
    Record,
    Binary32,
    Timestamp,
    Duration,
    Status,
    Mode,
    Outcome,
    Verdict,
    Params,
    Task
} from "./lib/Types.sol";
import {Errors} from "./lib/Errors.sol";

/// @title TaskPool
/// @notice The lifecycle of veritrain training tasks (PROTOCOL.md §1), read top to bottom: submit,
///         profile, claim, commit, randomness, verification claim, report, then settlement, with a
///         timeout for every waiting state. The money side (escrow, stakes, payouts, withdrawals) is
///         `TaskEscrow`.
contract TaskPool is TaskEscrow {
    /// @dev Longest CID accepted; CIDv0 is 46 characters, base32 CIDv1 with sha2-256 59.
    uint256 internal constant MAX_CID_LENGTH = 128;
    /// @dev binary32 +infinity; finite non-negative values have smaller bit patterns.
    uint32 internal constant BINARY32_INFINITY = 0x7F800000;
    uint32 internal constant BINARY32_SIGN = 0x80000000;

    Duration internal immutable _profileWindow;
    Duration internal immutable _claimWindow;
    Duration internal immutable _maxTrainingWindow;
    Duration internal immutable _verifierClaimWindow;
    Duration internal immutable _verifyWindow;
    Duration internal immutable _challengeWindow;
    uint32 internal immutable _segmentsToSample;
    uint32 internal immutable _forcedErrorPpm;

    /// @param params The deployment parameters (docs/contracts.md, "Parameters").
    /// @param jackpot_ The jackpot contract that receives fees and slashed shares.
    constructor(Params memory params, IJackpot jackpot_) TaskEscrow(params, jackpot_) {
        if (Duration.unwrap(params.profileWindow) == 0) revert Errors.InvalidParameter("profileWindow");
        if (Duration.unwrap(params.claimWindow) == 0) revert Errors.InvalidParameter("claimWindow");
        if (Duration.unwrap(params.maxTrainingWindow) == 0) revert Errors.InvalidParameter("maxTrainingWindow");
        if (Duration.unwrap(params.verifierClaimWindow) == 0) revert Errors.InvalidParameter("verifierClaimWindow");
        if (Duration.unwrap(params.verifyWindow) == 0) revert Errors.InvalidParameter("verifyWindow");
        if (Duration.unwrap(params.challengeWindow) == 0) revert Errors.InvalidParameter("challengeWindow");
        if (params.segmentsToSample == 0) revert Errors.InvalidParameter("segmentsToSample");
        if (params.forcedErrorPpm > 1_000_000) revert Errors.InvalidParameter("forcedErrorPpm");
        _profileWindow = params.profileWindow;
        _claimWindow = params.claimWindow;
        _maxTrainingWindow = params.maxTrainingWindow;
        _verifierClaimWindow = params.verifierClaimWindow;
        _verifyWindow = params.verifyWindow;
        _challengeWindow = params.challengeWindow;
        _segmentsToSample = params.segmentsToSample;
        _forcedErrorPpm = params.forcedErrorPpm;
    }

    // ------------------------------------------------------------------ submit and cancel

    /// @inheritdoc ITaskPool
    function submit(string calldata specCid, Hash specHash, uint256 bounty, Mode mode, Duration trainingWindow)
        external
        payable
        returns (TaskId taskId)
    {
        if (bounty < _minBounty || bounty > type(uint80).max) {
            revert Errors.BountyOutOfRange(bounty, _minBounty, type(uint80).max);
        }
        uint256 fee = bounty * _protocolFeeBps / BPS;
        if (msg.value != bounty + fee) revert Errors.WrongValue(bounty + fee, msg.value);
        _checkCid(specCid);
        if (Hash.unwrap(specHash) == 0) revert Errors.EmptyCommitment();
        uint32 window = Duration.unwrap(trainingWindow);
        if (window == 0 || window > Duration.unwrap(_maxTrainingWindow)) {
            revert Errors.TrainingWindowOutOfRange(trainingWindow, _maxTrainingWindow);
        }

        taskId = _ledger.nextTaskId;
        _ledger.nextTaskId = TaskId.wrap(TaskId.unwrap(taskId) + 1);
        _accrueJackpot(fee);

        bool exact = mode == Mode.Exact;
        Timestamp deadline = _after(exact ? _claimWindow : _profileWindow);
        Task storage t = _tasks[taskId];
        t.submitter = msg.sender;
        t.bounty = uint80(bounty);
        t.mode = mode;
        t.status = exact ? Status.Open : Status.Submitted;
        t.deadline = deadline;
        t.trainingWindow = trainingWindow;
        _fold(
            t,
            TaskSubmitted.selector,
            taskId,
            msg.sender,
            abi.encode(mode, bounty, fee, specHash, specCid, trainingWindow, deadline)
        );
        emit TaskSubmitted(taskId, msg.sender, mode, bounty, fee, specHash, specCid, trainingWindow, deadline);
    }

    /// @inheritdoc ITaskPool
    function cancel(TaskId taskId) external {
        Task storage t = _known(taskId);
        Status status = t.status;
        if (status != Status.Submitted && status != Status.Open) revert Errors.WrongStatus(taskId, status);
        if (msg.sender != t.submitter) revert Errors.NotAuthorized(taskId, msg.sender);
        emit TaskCancelled(taskId);
        _settle(t, taskId, Outcome.Cancelled);
    }

    // ------------------------------------------------------------------ profile and claim

    /// @inheritdoc ITaskPool
    function profile(TaskId taskId, Binary32 threshold, string calldata profileCid) external payable {
        Task storage t = _inTime(taskId, Status.Submitted);
        if (Binary32.unwrap(threshold) >= BINARY32_INFINITY) revert Errors.InvalidThreshold(threshold);
        _checkCid(profileCid);
        uint256 stake = t.bounty * _profilerStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        Timestamp deadline = _after(_claimWindow);
        t.profiler = msg.sender;
        t.threshold = threshold;
        t.status = Status.Open;
        t.deadline = deadline;
        _fold(t, TaskProfiled.selector, taskId, msg.sender, abi.encode(threshold, profileCid, stake, deadline));
        emit TaskProfiled(taskId, msg.sender, threshold, profileCid, stake, deadline);
    }

    /// @inheritdoc ITaskPool
    function claim(TaskId taskId) external payable {
        Task storage t = _inTime(taskId, Status.Open);
        uint256 stake = t.bounty * _solverStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        Timestamp deadline = _after(t.trainingWindow);
        t.solver = msg.sender;
        t.status = Status.Training;
        t.deadline = deadline;
        emit TaskClaimed(taskId, msg.sender, stake, deadline);
    }

    // ------------------------------------------------------------------ commit and randomness

    /// @inheritdoc ITaskPool
    function commit(TaskId taskId, string calldata proofCid, Root checkpointRoot, uint32 segments) external {
        Task storage t = _inTime(taskId, Status.Training);
        if (msg.sender != t.solver) revert Errors.NotAuthorized(taskId, msg.sender);
        _checkCid(proofCid);
        if (Root.unwrap(checkpointRoot) == 0) revert Errors.EmptyCommitment();
        if (segments == 0 || segments == type(uint32).max) revert Errors.InvalidSegmentCount(segments);

        // The randomness is the hash of this very block: it exists only once the commit is sealed.
        uint256 randomnessBlock = block.number;
        Timestamp deadline = _after(_verifierClaimWindow);
        t.segments = segments;
        t.randomnessBlock = uint40(randomnessBlock);
        t.status = Status.Committed;
        t.deadline = deadline;
        _fold(
            t,
            ProofCommitted.selector,
            taskId,
            msg.sender,
            abi.encode(proofCid, checkpointRoot, segments, randomnessBlock, deadline)
        );
        emit ProofCommitted(taskId, msg.sender, proofCid, checkpointRoot, segments, randomnessBlock, deadline);
    }

    /// @inheritdoc ITaskPool
    function drawRandomness(TaskId taskId) external {
        Task storage t = _known(taskId);
        Status status = t.status;
        if (status != Status.Committed && status != Status.Verifying) revert Errors.WrongStatus(taskId, status);
        uint256 source = t.randomnessBlock;
        if (source == 0) revert Errors.RandomnessAlreadyDrawn(taskId);
        if (block.number <= source) revert Errors.RandomnessNotYetAvailable(taskId, source);
        _draw(t, taskId);
    }

    // ------------------------------------------------------------------ verification

    /// @inheritdoc ITaskPool
    function claimVerification(TaskId taskId, Hash secretHash) external payable {
        Task storage t = _inTime(taskId, Status.Committed);
        if (msg.sender == t.solver) revert Errors.SolverCannotVerify(taskId, msg.sender);
        if (Hash.unwrap(secretHash) == 0) revert Errors.EmptyCommitment();
        uint256 stake = t.bounty * _verifierStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        _draw(t, taskId);
        Timestamp deadline = _after(_verifyWindow);
        t.verifier = msg.sender;
        t.status = Status.Verifying;
        t.deadline = deadline;
        _fold(t, VerificationClaimed.selector, taskId, msg.sender, abi.encode(secretHash, stake, deadline));
        emit VerificationClaimed(taskId, msg.sender, secretHash, stake, deadline);
    }

    /// @inheritdoc ITaskPool
    function reportVerification(TaskId taskId, Binary32[] calldata distances, Root traceRootsRoot) external {
        Task storage t = _inTime(taskId, Status.Verifying);
        if (msg.sender != t.verifier) revert Errors.NotAuthorized(taskId, msg.sender);
        if (t.randomnessBlock != 0) revert Errors.RandomnessPending(taskId);
        if (Root.unwrap(traceRootsRoot) == 0) revert Errors.EmptyCommitment();
        uint256 expected = _sampleCount(t.segments);
        if (distances.length != expected) revert Errors.WrongDistanceCount(expected, distances.length);

        // For binary32 values with the sign bit clear, integer order of the bit patterns is numeric
        // order, and every NaN pattern lies above the (finite) threshold: a NaN distance fails.
        uint32 threshold = Binary32.unwrap(t.threshold);
        Verdict verdict = Verdict.Pass;
        for (uint256 i = 0; i < expected; ++i) {
            uint32 d = Binary32.unwrap(distances[i]);
            if (d & BINARY32_SIGN != 0) revert Errors.InvalidDistance(i, distances[i]);
            if (d > threshold) verdict = Verdict.Fail;
        }

        Timestamp deadline = _after(_challengeWindow);
        t.outcome = verdict == Verdict.Pass ? Outcome.Passed : Outcome.Failed;
        t.status = Status.ChallengeWindow;
        t.deadline = deadline;
        _fold(
            t,
            VerificationReported.selector,
            taskId,
            msg.sender,
            abi.encode(distances, traceRootsRoot, verdict, deadline)
        );
        emit VerificationReported(taskId, msg.sender, distances, traceRootsRoot, verdict, deadline);
    }

    // ------------------------------------------------------------------ settlement and timeouts

    /// @inheritdoc ITaskPool
    function settle(TaskId taskId) external {
        Task storage t = _known(taskId);
        if (t.status != Status.ChallengeWindow) revert Errors.WrongStatus(taskId, t.status);
        _afterDeadline(t, taskId);
        _settle(t, taskId, t.outcome);
    }

    /// @inheritdoc ITaskPool
    function timeout(TaskId taskId) external {
        Task storage t = _known(taskId);
        Status status = t.status;
        if (status == Status.Submitted || status == Status.Open) {
            _afterDeadline(t, taskId);
            emit TaskTimedOut(taskId, status, address(0), 0);
            _settle(t, taskId, Outcome.Expired);
        } else if (status == Status.Training) {
            _afterDeadline(t, taskId);
            emit TaskTimedOut(taskId, status, t.solver, t.bounty * _solverStakeBps / BPS);
            _settle(t, taskId, Outcome.SolverTimedOut);
        } else if (status == Status.Committed) {
            _afterDeadline(t, taskId);
            emit TaskTimedOut(taskId, status, address(0), 0);
            _settle(t, taskId, Outcome.Unverified);
        } else if (status == Status.Verifying) {
            _afterDeadline(t, taskId);
            // The silent verifier's whole stake goes to the jackpot; the proof waits for another verifier.
            uint256 slashed = t.bounty * _verifierStakeBps / BPS;
            _accrueJackpot(slashed);
            emit TaskTimedOut(taskId, status, t.verifier, slashed);
            Timestamp deadline = _after(_verifierClaimWindow);
            t.verifier = address(0);
            t.status = Status.Committed;
            t.deadline = deadline;
            emit VerificationReopened(taskId, deadline);
        } else {
            // ChallengeWindow ends with `settle`; Disputed and Settled have no timeout here.
            revert Errors.WrongStatus(taskId, status);
        }
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc ITaskPool
    function task(TaskId taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    /// @inheritdoc ITaskPool
    function parameters() external view returns (Params memory) {
        return Params({
            protocolFeeBps: uint16(_protocolFeeBps),
            verificationFeeBps: uint16(_verificationFeeBps),
            profileFeeBps: uint16(_profileFeeBps),
            solverStakeBps: uint32(_solverStakeBps),
            verifierStakeBps: uint32(_verifierStakeBps),
            profilerStakeBps: uint32(_profilerStakeBps),
            slashToVerifierBps: uint16(_slashToVerifierBps),
            slashToSubmitterBps: uint16(_slashToSubmitterBps),
            profileWindow: _profileWindow,
            claimWindow: _claimWindow,
            maxTrainingWindow: _maxTrainingWindow,
            verifierClaimWindow: _verifierClaimWindow,
            verifyWindow: _verifyWindow,
            challengeWindow: _challengeWindow,
            segmentsToSample: _segmentsToSample,
            forcedErrorPpm: _forcedErrorPpm,
            minBounty: _minBounty
        });
    }

    /// @inheritdoc ITaskPool
    function sampleCount(TaskId taskId) external view returns (uint256) {
        return _sampleCount(_tasks[taskId].segments);
    }

    // ------------------------------------------------------------------ internals

    /// @notice Draws the randomness from the hash of the task's randomness block, or re-anchors it to the
    ///         current block when that hash is out of reach. Does nothing before the block is sealed.
    function _draw(Task storage t, TaskId taskId) private {
        uint256 source = t.randomnessBlock;
        if (source == 0 || block.number <= source) return;
        bytes32 sourceHash = blockhash(source);
        if (sourceHash == bytes32(0)) {
            // More than 256 blocks old: the hash of the current block, unknown to anyone sending this
            // transaction, takes its place.
            t.randomnessBlock = uint40(block.number);
            emit RandomnessReanchored(taskId, source, block.number);
            return;
        }
        Randomness randomness = Randomness.wrap(keccak256(abi.encode(sourceHash, taskId)));
        t.randomnessBlock = 0;
        _fold(t, RandomnessDrawn.selector, taskId, abi.encode(randomness, source));
        emit RandomnessDrawn(taskId, randomness, source);
    }

    /// @notice Chains a commitment event into the task record:
    ///         record' = keccak256(record ‖ topic0 ‖ taskId ‖ party ‖ keccak256(event data)).
    function _fold(Task storage t, bytes32 topic0, TaskId taskId, address party, bytes memory data) private {
        t.record = Record.wrap(keccak256(abi.encode(t.record, topic0, taskId, party, keccak256(data))));
    }

    /// @notice The same for an event without a party topic:
    ///         record' = keccak256(record ‖ topic0 ‖ taskId ‖ keccak256(data)).
    function _fold(Task storage t, bytes32 topic0, TaskId taskId, bytes memory data) private {
        t.record = Record.wrap(keccak256(abi.encode(t.record, topic0, taskId, keccak256(data))));
    }

    function _known(TaskId taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.status == Status.None) revert Errors.UnknownTask(taskId);
    }

    /// @notice The task, checked to be in `expected` with its deadline not yet passed.
    function _inTime(TaskId taskId, Status expected) private view returns (Task storage t) {
        t = _known(taskId);
        if (t.status != expected) revert Errors.WrongStatus(taskId, t.status);
        if (block.timestamp > Timestamp.unwrap(t.deadline)) revert Errors.DeadlinePassed(taskId, t.deadline);
    }

    function _afterDeadline(Task storage t, TaskId taskId) private view {
        if (block.timestamp <= Timestamp.unwrap(t.deadline)) revert Errors.DeadlineNotReached(taskId, t.deadline);
    }

    function _after(Duration window) private view returns (Timestamp) {
        return Timestamp.wrap(uint40(block.timestamp + Duration.unwrap(window)));
    }

    function _sampleCount(uint32 segments) private view returns (uint256) {
        return segments < _segmentsToSample ? segments : _segmentsToSample;
    }

    function _checkCid(string calldata cid) private pure {
        uint256 length = bytes(cid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert Errors.InvalidCid(length);
    }
}
