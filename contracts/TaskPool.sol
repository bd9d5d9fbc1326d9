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
    Terms,
    Report,
    Params,
    Task,
    Payouts,
    Role,
    Flag
} from "./lib/Types.sol";
import {Errors} from "./lib/Errors.sol";

/// @title TaskPool
/// @notice The lifecycle of veritrain training tasks (PROTOCOL.md §1), read top to bottom: submit,
///         profile, claim, commit, verification claim, the solver's seed (the randomness), report, the
///         verifier's reveal (forced errors), then settlement, with a timeout for every waiting state.
///         The money side (escrow, stakes, payouts, withdrawals) is `TaskEscrow`.
contract TaskPool is TaskEscrow {
    /// @dev Longest CID accepted; CIDv0 is 46 characters, base32 CIDv1 with sha2-256 59.
    uint256 internal constant MAX_CID_LENGTH = 128;
    /// @dev Gas each payout pushed by `revealVerification` may use in its recipient.
    uint256 internal constant PUSH_GAS = 10_000;
    /// @dev Most extra segments one report may carry (screening), to bound a report's gas.
    uint256 internal constant MAX_EXTRA_SEGMENTS = 64;
    /// @dev binary32 +infinity; finite non-negative values have smaller bit patterns.
    uint32 internal constant BINARY32_INFINITY = 0x7F800000;
    uint32 internal constant BINARY32_SIGN = 0x80000000;

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
        _forcedBelow = (type(uint256).max / 1_000_000) * params.forcedErrorPpm;
    }

    // ------------------------------------------------------------------ submit and cancel

    /// @inheritdoc ITaskPool
    function submit(string calldata specCid, Terms calldata terms) external payable returns (TaskId taskId) {
        uint256 bounty = terms.bounty;
        if (bounty < _minBounty || bounty > type(uint80).max) {
            revert Errors.BountyOutOfRange(bounty, _minBounty, type(uint80).max);
        }
        uint256 fee = bounty * _protocolFeeBps / BPS;
        if (msg.value != bounty + fee) revert Errors.WrongValue(bounty + fee, msg.value);
        _checkCid(specCid);
        if (Hash.unwrap(terms.specHash) == 0 || Root.unwrap(terms.programRoot) == 0) revert Errors.EmptyCommitment();
        uint32 window = Duration.unwrap(terms.trainingWindow);
        if (window == 0 || window > Duration.unwrap(_maxTrainingWindow)) {
            revert Errors.TrainingWindowOutOfRange(terms.trainingWindow, _maxTrainingWindow);
        }
        if (terms.segments == 0 || terms.segments == type(uint32).max) {
            revert Errors.InvalidSegmentCount(terms.segments);
        }
        if (terms.sampledSegments < _minSampledSegments) {
            revert Errors.InvalidSampleCount(terms.sampledSegments, _minSampledSegments);
        }
        bool exact = terms.mode == Mode.Exact;
        uint32 bound = Binary32.unwrap(terms.thresholdBound);
        if (exact ? bound != 0 : (bound == 0 || bound > Binary32.unwrap(_maxThreshold))) {
            revert Errors.InvalidThresholdBound(terms.thresholdBound, _maxThreshold);
        }

        taskId = _ledger.nextTaskId;
        _ledger.nextTaskId = TaskId.wrap(TaskId.unwrap(taskId) + 1);
        _accrueJackpot(fee);

        Timestamp deadline = _after(exact ? _claimWindow : _profileWindow);
        Task storage t = _tasks[taskId];
        t.submitter = msg.sender;
        t.bounty = uint80(bounty);
        t.mode = terms.mode;
        t.status = exact ? Status.Open : Status.Submitted;
        t.deadline = deadline;
        t.sampledSegments = terms.sampledSegments;
        t.segments = terms.segments;
        t.trainingWindow = terms.trainingWindow;
        if (!exact) t.thresholdBound = terms.thresholdBound;
        bytes memory data = abi.encode(
            terms.mode,
            bounty,
            fee,
            terms.specHash,
            terms.programRoot,
            terms.segments,
            terms.sampledSegments,
            terms.thresholdBound,
            terms.trainingWindow,
            specCid,
            deadline
        );
        _record(t, TaskSubmitted.selector, taskId, msg.sender, data);
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
        if (Binary32.unwrap(threshold) > Binary32.unwrap(t.thresholdBound)) {
            revert Errors.ThresholdAboveBound(threshold, t.thresholdBound);
        }
        _checkCid(profileCid);
        uint256 stake = t.bounty * _profilerStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        Timestamp deadline = _after(_claimWindow);
        t.profiler = msg.sender;
        t.threshold = threshold;
        t.status = Status.Open;
        t.deadline = deadline;
        _record(t, TaskProfiled.selector, taskId, msg.sender, abi.encode(threshold, profileCid, stake, deadline));
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

    // ------------------------------------------------------------------ commit

    /// @inheritdoc ITaskPool
    function commit(TaskId taskId, string calldata proofCid, Root checkpointRoot, Hash seedHash) external {
        Task storage t = _inTime(taskId, Status.Training);
        if (msg.sender != t.solver) revert Errors.NotAuthorized(taskId, msg.sender);
        _checkCid(proofCid);
        if (Root.unwrap(checkpointRoot) == 0 || Hash.unwrap(seedHash) == 0) revert Errors.EmptyCommitment();

        Timestamp deadline = _after(_verifierClaimWindow);
        t.status = Status.Committed;
        t.deadline = deadline;
        _record(
            t, ProofCommitted.selector, taskId, msg.sender, abi.encode(proofCid, checkpointRoot, seedHash, deadline)
        );
    }

    // ------------------------------------------------------------------ verification and the randomness

    /// @inheritdoc ITaskPool
    function claimVerification(TaskId taskId, Hash secretHash) external payable {
        Task storage t = _inTime(taskId, Status.Committed);
        if (msg.sender == t.solver) revert Errors.SolverCannotVerify(taskId, msg.sender);
        if (msg.sender == t.submitter) revert Errors.SubmitterCannotVerify(taskId, msg.sender);
        if (Hash.unwrap(secretHash) == 0) revert Errors.EmptyCommitment();
        uint256 stake = t.bounty * _verifierStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        // Before the randomness exists the solver must reveal its seed first; after, the verifier works.
        bool drawn = t.flags & Flag.RANDOMNESS != 0;
        Timestamp deadline = _after(drawn ? _verifyWindow : _seedRevealWindow);
        t.verifier = msg.sender;
        t.status = Status.Verifying;
        t.deadline = deadline;
        t.rounds += 1;
        _record(t, VerificationClaimed.selector, taskId, msg.sender, abi.encode(secretHash, stake, deadline));
    }

    /// @inheritdoc ITaskPool
    function revealSeed(
        TaskId taskId,
        bytes32 seed,
        Record recordBeforeCommit,
        bytes calldata commitData,
        bytes calldata claimData
    ) external {
        Task storage t = _inTime(taskId, Status.Verifying);
        if (t.flags & Flag.RANDOMNESS != 0) revert Errors.WrongStatus(taskId, Status.Verifying);
        address solver = t.solver;
        if (msg.sender != solver) revert Errors.NotAuthorized(taskId, msg.sender);
        Record record = _chain(recordBeforeCommit, ProofCommitted.selector, taskId, solver, commitData);
        record = _chain(record, VerificationClaimed.selector, taskId, t.verifier, claimData);
        if (Record.unwrap(record) != Record.unwrap(t.record)) revert Errors.RecordMismatch(taskId);
        // ProofCommitted data: (proofCid offset, checkpointRoot, seedHash, deadline); VerificationClaimed
        // data: (secretHash, stake, deadline). The record vouches for every word.
        bytes32 secretHash = _word(claimData, 0);
        if (keccak256(abi.encode(seed)) != _word(commitData, 2)) revert Errors.WrongSeed(taskId);

        // Neither party knew the other's share when it committed to its own.
        Randomness randomness = Randomness.wrap(keccak256(abi.encode(seed, secretHash, taskId)));
        Timestamp deadline = _after(_verifyWindow);
        t.flags |= _forcedErrorPpm == 0 ? Flag.RANDOMNESS : Flag.RANDOMNESS | Flag.FORCEABLE;
        t.deadline = deadline;
        _record(t, RandomnessDrawn.selector, taskId, solver, abi.encode(randomness, seed, deadline));
    }

    /// @inheritdoc ITaskPool
    function reportVerification(TaskId taskId, Report calldata report) external {
        Task storage t = _inTime(taskId, Status.Verifying);
        if (msg.sender != t.verifier) revert Errors.NotAuthorized(taskId, msg.sender);
        if (t.flags & Flag.RANDOMNESS == 0) revert Errors.RandomnessPending(taskId);
        if (Root.unwrap(report.traceRootsRoot) == 0 || Hash.unwrap(report.sealedTraceRootsRoot) == 0) {
            revert Errors.EmptyCommitment();
        }
        uint256 expected = _sampleCount(t.segments, t.sampledSegments);
        if (report.distances.length != expected) revert Errors.WrongDistanceCount(expected, report.distances.length);
        uint256 extras = report.extraSegments.length;
        if (extras != report.extraDistances.length || extras > MAX_EXTRA_SEGMENTS) {
            revert Errors.InvalidExtraSegments(extras);
        }
        uint32 segments = t.segments;
        for (uint256 i = 0; i < extras; ++i) {
            uint32 segment = report.extraSegments[i];
            if (segment >= segments || (i > 0 && segment <= report.extraSegments[i - 1])) {
                revert Errors.InvalidExtraSegments(i);
            }
        }

        // For binary32 values with the sign bit clear, integer order of the bit patterns is numeric
        // order, and every NaN pattern lies above the (finite) threshold: a NaN distance fails.
        uint32 threshold = Binary32.unwrap(t.threshold);
        bool passed = _within(report.distances, threshold, 0) && _within(report.extraDistances, threshold, expected);
        Verdict verdict = passed ? Verdict.Pass : Verdict.Fail;

        Timestamp deadline = _after(_challengeWindow);
        t.outcome = passed ? Outcome.Passed : Outcome.Failed;
        t.status = Status.ChallengeWindow;
        t.deadline = deadline;
        _record(
            t,
            VerificationReported.selector,
            taskId,
            msg.sender,
            abi.encode(
                report.distances,
                report.extraSegments,
                report.extraDistances,
                report.traceRootsRoot,
                report.sealedTraceRootsRoot,
                verdict,
                deadline
            )
        );
    }

    /// @inheritdoc ITaskPool
    function revealVerification(
        TaskId taskId,
        bytes32 secret,
        Root traceRootsRoot,
        Record recordBeforeClaim,
        bytes calldata claimData,
        bytes calldata drawnData,
        bytes calldata reportData
    ) external nonReentrant {
        Task storage t = _known(taskId);
        if (t.status != Status.ChallengeWindow) revert Errors.WrongStatus(taskId, t.status);
        if (t.flags & Flag.FORCEABLE == 0) revert Errors.NothingToReveal(taskId);
        _afterDeadline(t, taskId);
        Timestamp last = Timestamp.wrap(uint40(Timestamp.unwrap(t.deadline) + Duration.unwrap(_revealWindow)));
        if (block.timestamp > Timestamp.unwrap(last)) revert Errors.DeadlinePassed(taskId, last);
        address verifier = t.verifier;
        if (msg.sender != verifier) revert Errors.NotAuthorized(taskId, msg.sender);
        Record record = _chain(recordBeforeClaim, VerificationClaimed.selector, taskId, verifier, claimData);
        record = _chain(record, RandomnessDrawn.selector, taskId, t.solver, drawnData);
        record = _chain(record, VerificationReported.selector, taskId, verifier, reportData);
        if (Record.unwrap(record) != Record.unwrap(t.record)) revert Errors.RecordMismatch(taskId);
        // VerificationClaimed data starts with the secret hash, RandomnessDrawn data with the randomness;
        // VerificationReported data has the trace roots root and its seal in words 3 and 4.
        if (keccak256(abi.encode(secret)) != _word(claimData, 0)) revert Errors.WrongSecret(taskId);
        if (keccak256(abi.encode(secret, traceRootsRoot)) != _word(reportData, 4)) revert Errors.WrongSeal(taskId);

        bool forced = _isForced(secret, Randomness.wrap(_word(drawnData, 0)));
        bool erred = Root.unwrap(traceRootsRoot) != _word(reportData, 3);
        t.flags &= ~Flag.FORCEABLE;
        if (forced && erred) {
            // The forced report is void: its true trace roots root replaces it, open to challenge anew.
            Timestamp deadline = _after(_challengeWindow);
            t.deadline = deadline;
            _record(
                t, VerificationRevealed.selector, taskId, verifier, abi.encode(secret, true, traceRootsRoot, deadline)
            );
            return;
        }
        // Forced and honest, or not forced and disowning its own report: the verifier forfeits.
        if (forced || erred) t.flags |= Flag.FORFEITED;
        Timestamp none = Timestamp.wrap(0);
        _record(t, VerificationRevealed.selector, taskId, verifier, abi.encode(secret, forced, traceRootsRoot, none));
        _settle(t, taskId, t.outcome);
        _payEveryone(t, taskId);
    }
    // ------------------------------------------------------------------ settlement and timeouts

    /// @inheritdoc ITaskPool
    function settle(TaskId taskId) external {
        Task storage t = _known(taskId);
        if (t.status != Status.ChallengeWindow) revert Errors.WrongStatus(taskId, t.status);
        if (!_settleable(t)) {
            uint40 end = Timestamp.unwrap(t.deadline);
            if (t.flags & Flag.FORCEABLE != 0) end += uint40(Duration.unwrap(_revealWindow));
            revert Errors.DeadlineNotReached(taskId, Timestamp.wrap(end));
        }
        _settleVerdict(t, taskId);
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
        } else if (status == Status.Verifying && t.flags & Flag.RANDOMNESS == 0) {
            // The solver withheld its seed after seeing the verifier's share: as bad as failing.
            _afterDeadline(t, taskId);
            emit TaskTimedOut(taskId, status, t.solver, t.bounty * _solverStakeBps / BPS);
            _settle(t, taskId, Outcome.SeedWithheld);
        } else if (status == Status.Verifying) {
            _afterDeadline(t, taskId);
            // The silent verifier's whole stake goes to the jackpot; the proof waits for another verifier
            // with the same randomness, unless it has had as many verifiers as the pool allows.
            uint256 slashed = t.bounty * _verifierStakeBps / BPS;
            _accrueJackpot(slashed);
            emit TaskTimedOut(taskId, status, t.verifier, slashed);
            t.verifier = address(0);
            t.flags &= ~Flag.FORCEABLE;
            if (t.rounds >= _maxVerificationRounds) {
                _settle(t, taskId, Outcome.Unverified);
                return;
            }
            Timestamp deadline = _after(_verifierClaimWindow);
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
            slashToSubmitterBps: uint16(_slashToSubmitterBps),
            profileWindow: _profileWindow,
            claimWindow: _claimWindow,
            maxTrainingWindow: _maxTrainingWindow,
            verifierClaimWindow: _verifierClaimWindow,
            seedRevealWindow: _seedRevealWindow,
            verifyWindow: _verifyWindow,
            challengeWindow: _challengeWindow,
            revealWindow: _revealWindow,
            minSampledSegments: _minSampledSegments,
            maxVerificationRounds: _maxVerificationRounds,
            forcedErrorPpm: _forcedErrorPpm,
            maxThreshold: _maxThreshold,
            minBounty: _minBounty
        });
    }

    /// @inheritdoc ITaskPool
    function sampleCount(TaskId taskId) external view returns (uint256) {
        Task storage t = _tasks[taskId];
        return _sampleCount(t.segments, t.sampledSegments);
    }

    /// @inheritdoc ITaskPool
    function forcedError(bytes32 secret, Randomness randomness) external view returns (bool) {
        return _isForced(secret, randomness);
    }

    // ------------------------------------------------------------------ internals

    /// @notice Sends every party of a just-settled task its payout, so that the verifier's reveal is the
    ///         last transaction of a task's happy path. Each transfer gets `PUSH_GAS`; a recipient that
    ///         refuses it (or needs more gas) keeps its payout owed, to `withdraw` as usual.
    function _payEveryone(Task storage t, TaskId taskId) private {
        Payouts memory p = _payouts(t.outcome, t.bounty, _profiled(t), t.flags);
        _push(t, taskId, Role.SUBMITTER, t.submitter, p.submitter);
        _push(t, taskId, Role.SOLVER, t.solver, p.solver);
        _push(t, taskId, Role.VERIFIER, t.verifier, p.verifier);
        if (_profiled(t)) _push(t, taskId, Role.PROFILER, t.profiler, p.profiler);
    }

    function _push(Task storage t, TaskId taskId, uint8 role, address to, uint256 amount) private {
        if (amount == 0) return;
        // Effects first: the role is marked paid before the call, and unmarked if the call fails.
        t.withdrawn |= role;
        (bool ok,) = to.call{value: amount, gas: PUSH_GAS}("");
        if (ok) {
            emit PayoutWithdrawn(taskId, to, amount);
        } else {
            t.withdrawn &= ~role;
        }
    }

    function _isForced(bytes32 secret, Randomness randomness) private view returns (bool) {
        return uint256(keccak256(abi.encode(secret, randomness))) < _forcedBelow;
    }

    /// @notice Whether every distance (sign bit clear, checked) is at most `threshold`; `offset` numbers
    ///         the distances in errors.
    function _within(Binary32[] calldata distances, uint32 threshold, uint256 offset) private pure returns (bool ok) {
        ok = true;
        for (uint256 i = 0; i < distances.length; ++i) {
            uint32 d = Binary32.unwrap(distances[i]);
            if (d & BINARY32_SIGN != 0) revert Errors.InvalidDistance(offset + i, distances[i]);
            if (d > threshold) ok = false;
        }
    }

    /// @notice Emits a commitment event (topics: `topic0`, the task, the party; `data` its ABI-encoded
    ///         fields, exactly as the event's declaration in ITaskPool lays them out) and chains it into
    ///         the task record: record' = keccak256(record ‖ topic0 ‖ taskId ‖ party ‖ keccak256(data)).
    /// @dev One encoding serves both the log and the record.
    function _record(Task storage t, bytes32 topic0, TaskId taskId, address party, bytes memory data) private {
        t.record = Record.wrap(keccak256(abi.encode(t.record, topic0, taskId, party, keccak256(data))));
        assembly ("memory-safe") {
            log3(add(data, 32), mload(data), topic0, and(taskId, 0xffffffffffffffff), and(party, sub(shl(160, 1), 1)))
        }
    }

    /// @notice Word `index` of ABI-encoded event data.
    function _word(bytes calldata data, uint256 index) private pure returns (bytes32) {
        return bytes32(data[32 * index:32 * index + 32]);
    }

    /// @notice The record after folding one event whose data is given as logged.
    function _chain(Record record, bytes32 topic0, TaskId taskId, address party, bytes calldata data)
        private
        pure
        returns (Record)
    {
        return Record.wrap(keccak256(abi.encode(record, topic0, taskId, party, keccak256(data))));
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

    function _sampleCount(uint32 segments, uint16 sampledSegments) private pure returns (uint256) {
        uint256 wanted = uint256(sampledSegments) + 2;
        return segments < wanted ? segments : wanted;
    }

    function _checkCid(string calldata cid) private pure {
        uint256 length = bytes(cid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert Errors.InvalidCid(length);
    }
}
