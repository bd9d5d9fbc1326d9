// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPoolLifecycle} from "./interfaces/ITaskPool.sol";
import {IJackpot} from "./interfaces/IJackpot.sol";
import {IPinpointGame} from "./interfaces/IPinpointGame.sol";
import {PoolProxy} from "./pool/PoolProxy.sol";
import {TaskPoolBase} from "./pool/TaskPoolBase.sol";
import {TaskPoolSettlement} from "./pool/TaskPoolSettlement.sol";
import {TaskPoolChallenges} from "./pool/TaskPoolChallenges.sol";
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
///         verifier's reveal (forced errors), and withdrawals. Timeouts, cancellation, the review of
///         a profile, settlement by a third party, sweeps and views are `TaskPoolSettlement`, which
///         this contract creates and runs by delegatecall on its own storage for every selector it
///         does not implement (OpenZeppelin's `Proxy`, whose implementation is fixed here): one
///         address, one storage, halves of code each under the 24 KB limit.
contract TaskPool is TaskPoolBase, PoolProxy, ITaskPoolLifecycle {
    /// @dev Longest CID accepted; CIDv0 is 46 characters, base32 CIDv1 with sha2-256 59.
    uint256 internal constant MAX_CID_LENGTH = 128;
    /// @dev Gas each payout pushed by `revealVerification` may use in its recipient.
    uint256 internal constant PUSH_GAS = 10_000;
    /// @dev Most extra segments one report may carry (screening), to bound a report's gas.
    uint256 internal constant MAX_EXTRA_SEGMENTS = 64;
    uint32 internal constant BINARY32_SIGN = 0x80000000;

    /// @notice The settlement half, created with the same parameters; it runs on this storage.
    address public immutable settlement;

    /// @param params The deployment parameters (docs/contracts.md, "Parameters").
    /// @param jackpot_ The jackpot contract that receives fees and slashed shares; its arbitration must be
    ///        this pool for forced-error awards to be paid.
    /// @param game_ The pinpoint game challenges are played in.
    /// @param challenges The challenges half (`TaskPoolChallenges`), deployed with the same parameters,
    ///        jackpot and game; the settlement half runs it by delegatecall for the selectors it lacks.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_, address challenges)
        TaskPoolBase(params, jackpot_, game_)
    {
        if (TaskPoolChallenges(payable(challenges)).configuration() != keccak256(abi.encode(params, jackpot_, game_))) {
            revert Errors.InvalidParameter("challenges");
        }
        settlement = address(new TaskPoolSettlement(params, jackpot_, game_, challenges));
    }

    /// @notice Every call this contract does not implement runs the settlement half on this storage
    ///         (`Proxy`'s payable fallback: the challenges and `rejectProfile` carry value; a plain
    ///         transfer matches no function of any half and is refused). Reverts come back as they are.
    function _implementation() internal view override returns (address) {
        return settlement;
    }

    // ------------------------------------------------------------------ submit

    /// @inheritdoc ITaskPoolLifecycle
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

    // ------------------------------------------------------------------ profile and claim

    /// @inheritdoc ITaskPoolLifecycle
    function profile(TaskId taskId, Binary32 threshold, string calldata profileCid) external payable {
        Task storage t = _inTime(taskId, Status.Submitted);
        if (Binary32.unwrap(threshold) >= BINARY32_INFINITY) revert Errors.InvalidThreshold(threshold);
        if (Binary32.unwrap(threshold) > Binary32.unwrap(t.thresholdBound)) {
            revert Errors.ThresholdAboveBound(threshold, t.thresholdBound);
        }
        _checkCid(profileCid);
        uint256 stake = t.bounty * _profilerStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        // The submitter reviews the profile first; the claim window follows the review.
        Timestamp review = _after(_profileReviewWindow);
        Timestamp deadline = Timestamp.wrap(uint40(Timestamp.unwrap(review) + Duration.unwrap(_claimWindow)));
        t.profiler = msg.sender;
        t.reviewDeadline = review;
        t.threshold = threshold;
        t.status = Status.Open;
        t.deadline = deadline;
        _record(
            t, TaskProfiled.selector, taskId, msg.sender, abi.encode(threshold, profileCid, stake, deadline, review)
        );
    }

    /// @inheritdoc ITaskPoolLifecycle
    function claim(TaskId taskId) external payable {
        Task storage t = _inTime(taskId, Status.Open);
        if (t.mode == Mode.Tolerant) {
            Timestamp review = t.reviewDeadline;
            if (block.timestamp <= Timestamp.unwrap(review)) revert Errors.ProfileUnderReview(taskId, review);
        }
        uint256 stake = t.bounty * _solverStakeBps / BPS;
        if (msg.value != stake) revert Errors.WrongValue(stake, msg.value);

        Timestamp deadline = _after(t.trainingWindow);
        t.solver = msg.sender;
        t.status = Status.Training;
        t.deadline = deadline;
        emit TaskClaimed(taskId, msg.sender, stake, deadline);
    }

    // ------------------------------------------------------------------ commit

    /// @inheritdoc ITaskPoolLifecycle
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

    /// @inheritdoc ITaskPoolLifecycle
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
        _record(
            t, VerificationClaimed.selector, taskId, msg.sender, abi.encode(secretHash, stake, deadline, block.number)
        );
    }

    /// @inheritdoc ITaskPoolLifecycle
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
        // data: (secretHash, stake, deadline, claimBlock). The record vouches for every word.
        bytes32 secretHash = _word(claimData, 0);
        if (keccak256(abi.encode(seed)) != _word(commitData, 2)) revert Errors.WrongSeed(taskId);
        // The claim's block hash decides forcing. It is not known in the claim's own block (the solver
        // reveals in a later one), and the chain gives it for the 256 blocks after it only: a seed revealed
        // later still fixes the randomness (nobody can push an honest solver's reveal out of reach and get
        // it slashed), and the claim is then not forceable: `blockhash` is zero there. It is still taxed
        // (its verifier made the first claim): a solver and verifier that are one party know whether the
        // claim is forced before the reveal, and waiting must not spare them the tax when it is not.
        uint256 claimBlock = uint256(_word(claimData, 3));
        if (block.number <= claimBlock) revert Errors.ClaimBlockOutOfReach(taskId, claimBlock);
        bytes32 claimBlockHash = blockhash(claimBlock);

        // Neither party knew the other's share when it committed to its own.
        Randomness randomness = Randomness.wrap(keccak256(abi.encode(seed, secretHash, taskId)));
        Timestamp deadline = _after(_verifyWindow);
        bool forceable = _forcedErrorPpm != 0 && claimBlockHash != 0;
        t.flags |= forceable ? Flag.RANDOMNESS | Flag.FORCEABLE : Flag.RANDOMNESS;
        t.deadline = deadline;
        _record(t, RandomnessDrawn.selector, taskId, solver, abi.encode(randomness, seed, deadline, claimBlockHash));
    }

    /// @inheritdoc ITaskPoolLifecycle
    function reportVerification(TaskId taskId, Report calldata report) external {
        Task storage t = _inTime(taskId, Status.Verifying);
        if (msg.sender != t.verifier) revert Errors.NotAuthorized(taskId, msg.sender);
        if (t.flags & Flag.RANDOMNESS == 0) revert Errors.RandomnessPending(taskId);
        if (Hash.unwrap(report.sealedTraceRoots) == 0) revert Errors.EmptyCommitment();
        uint256 expected = _sampleCount(t.segments, t.sampledSegments);
        if (report.distances.length != expected) revert Errors.WrongDistanceCount(expected, report.distances.length);
        uint256 extras = report.extraSegments.length;
        if (extras != report.extraDistances.length || extras > MAX_EXTRA_SEGMENTS) {
            revert Errors.InvalidExtraSegments(extras);
        }
        if (report.traceRoots.length != expected + extras) {
            revert Errors.WrongTraceRootCount(expected + extras, report.traceRoots.length);
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
                report.traceRoots,
                report.sealedTraceRoots,
                verdict,
                deadline
            )
        );
    }

    /// @inheritdoc ITaskPoolLifecycle
    function revealVerification(
        TaskId taskId,
        bytes32 secret,
        Root[] calldata traceRoots,
        Record recordBeforeClaim,
        bytes calldata claimData,
        bytes calldata drawnData,
        bytes calldata reportData
    ) external nonReentrant {
        Task storage t = _known(taskId);
        if (t.status != Status.ChallengeWindow) revert Errors.WrongStatus(taskId, t.status);
        if (t.flags & Flag.FORCEABLE == 0) revert Errors.NothingToReveal(taskId);
        // Challenges of the report end first; the reveal window restarts when the last one does.
        if (t.disputes != 0) revert Errors.ChallengesOpen(taskId);
        _afterDeadline(t, taskId);
        Timestamp last = Timestamp.wrap(uint40(Timestamp.unwrap(t.deadline) + Duration.unwrap(_revealWindow)));
        if (block.timestamp > Timestamp.unwrap(last)) revert Errors.DeadlinePassed(taskId, last);
        address verifier = t.verifier;
        if (msg.sender != verifier) revert Errors.NotAuthorized(taskId, msg.sender);
        Record record = _chain(recordBeforeClaim, VerificationClaimed.selector, taskId, verifier, claimData);
        record = _chain(record, RandomnessDrawn.selector, taskId, t.solver, drawnData);
        record = _chain(record, VerificationReported.selector, taskId, verifier, reportData);
        if (Record.unwrap(record) != Record.unwrap(t.record)) revert Errors.RecordMismatch(taskId);
        // VerificationClaimed data starts with the secret hash, RandomnessDrawn data with the randomness and
        // ends (word 3) with the claim block's hash; VerificationReported data has the offset of its trace
        // roots in word 3 and their seal in word 4.
        if (keccak256(abi.encode(secret)) != _word(claimData, 0)) revert Errors.WrongSecret(taskId);
        bytes32 trueRoots = keccak256(abi.encode(traceRoots));
        if (keccak256(abi.encode(secret, trueRoots)) != _word(reportData, 4)) revert Errors.WrongSeal(taskId);

        bool forced = _isForced(secret, Randomness.wrap(_word(drawnData, 0)), _word(drawnData, 3));
        bool erred = trueRoots != _arrayHash(reportData, 3);
        t.flags &= ~Flag.FORCEABLE;
        bool defeated = t.flags & Flag.DEFEATED != 0;
        if (forced && erred) {
            // The forced report is void: its true trace roots replace it, open to challenge anew, and
            // are paid as any report (less the forced-error tax): the verifier is not slashed.
            Timestamp deadline = _after(_challengeWindow);
            t.deadline = deadline;
            _record(
                t, VerificationRevealed.selector, taskId, verifier, abi.encode(secret, true, traceRoots, deadline)
            );
            // The jackpot pays one award for the forced error: to the challengers that caught it, or to
            // the verifier when nobody did, so that catching one's own forced error through another
            // address only moves the award. A game lost on a root the verifier stands by is a real
            // defeat (slashed, no award to the verifier). Effects first, the jackpot last.
            address[] memory catchers = new address[](0);
            if (defeated) {
                catchers = _forcedErrorCatchers(t, taskId, traceRoots, reportData);
                defeated = t.flags & Flag.DEFEATED != 0;
                if (defeated) _applyDefeat(t, taskId);
            }
            // Nobody can catch a fault report (no game is played on one): an award for it would be the
            // verifier's for sure, so a forced fault report earns none.
            // slither-disable-next-line incorrect-equality
            bool fault = _faultRound[taskId] == t.rounds;
            if (catchers.length > 0 || !(defeated || fault)) _awardForcedError(t, taskId, verifier, catchers);
            return;
        }
        Timestamp none = Timestamp.wrap(0);
        _record(t, VerificationRevealed.selector, taskId, verifier, abi.encode(secret, forced, traceRoots, none));
        if (defeated) {
            // Not forced (or forced and honest) and lost a challenge: slashed to the winner.
            _applyDefeat(t, taskId);
            return;
        }
        // Forced and honest, or not forced and disowning its own report: the verifier forfeits.
        if (forced || erred) t.flags |= Flag.FORFEITED;
        _payEveryone(t, taskId, _settle(t, taskId, t.outcome));
    }
    // ------------------------------------------------------------------ withdrawals and the task

    /// @inheritdoc ITaskPoolLifecycle
    function withdraw(TaskId[] calldata taskIds) external nonReentrant returns (uint256 amount) {
        for (uint256 i = 0; i < taskIds.length; ++i) {
            TaskId taskId = taskIds[i];
            Task storage t = _tasks[taskId];
            // A verdict whose windows are over is settled here, sparing its parties a separate call.
            if (_settleable(t)) _settleVerdict(t, taskId);
            if (t.status != Status.Settled) continue;
            (uint256 due, uint8 roles) = _due(t, msg.sender);
            if (roles == 0) continue;
            t.withdrawn |= roles;
            if (due > 0) {
                amount += due;
                emit PayoutWithdrawn(taskId, msg.sender, due);
            }
        }
        if (amount == 0) revert Errors.NothingToWithdraw(msg.sender);
        _send(msg.sender, amount);
    }

    /// @inheritdoc ITaskPoolLifecycle
    function task(TaskId taskId) external view returns (Task memory) {
        return _tasks[taskId];
    }

    // ------------------------------------------------------------------ internals

    /// @notice Sends every party of a just-settled task its payout, so that the verifier's reveal is the
    ///         last transaction of a task's happy path. Each transfer gets `PUSH_GAS`; a recipient that
    ///         refuses it (or needs more gas) keeps its payout owed, to `withdraw` as usual.
    function _payEveryone(Task storage t, TaskId taskId, Payouts memory p) private {
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

    /// @notice The catchers of a forced error: the winners of the challenges the report lost on a position
    ///         whose reported root is not the verifier's true one. The challenges it lost on a root the
    ///         verifier stands by stay (in order) for `_applyDefeat`, and `Flag.DEFEATED` stays only if
    ///         there are any: a real defeat.
    function _forcedErrorCatchers(
        Task storage t,
        TaskId taskId,
        Root[] calldata trueRoots,
        bytes calldata reportData
    ) private returns (address[] memory catchers) {
        Catch[] storage catches = _catches[taskId];
        uint256 n = catches.length;
        catchers = new address[](n);
        uint256 count = 0;
        uint256 kept = 0;
        uint256 offset = uint256(_word(reportData, 3));
        for (uint256 i = 0; i < n; ++i) {
            Catch memory c = catches[i];
            uint256 at = offset + 32 * (1 + uint256(c.position));
            if (bytes32(reportData[at:at + 32]) != Root.unwrap(trueRoots[c.position])) {
                if (c.winner != address(0)) catchers[count++] = c.winner;
            } else {
                catches[kept++] = c;
            }
        }
        for (uint256 i = kept; i < n; ++i) {
            catches.pop();
        }
        assembly ("memory-safe") {
            mstore(catchers, count)
        }
        if (kept == 0) t.flags &= ~Flag.DEFEATED;
    }

    /// @notice Has the jackpot award a forced error once: min(the verifier's stake, a third of the
    ///         reserve), split evenly among its `catchers`, or to the verifier when there are none. It
    ///         first moves everything accrued to the jackpot, so that the cap is a third of the whole
    ///         reserve. Called last: the jackpot is the deployment's own contract.
    function _awardForcedError(Task storage t, TaskId taskId, address verifier, address[] memory catchers) private {
        uint256 accrued = _ledger.jackpotAccrued;
        if (accrued > 0) {
            _ledger.jackpotAccrued = 0;
            emit JackpotSwept(accrued);
            _jackpot.fund{value: accrued}();
        }
        uint256 award = _jackpot.awardCap();
        uint256 stake = t.bounty * _verifierStakeBps / BPS;
        if (award > stake) award = stake;
        bytes32 reason = bytes32(uint256(TaskId.unwrap(taskId)));
        uint256 n = catchers.length;
        if (n == 0) {
            emit ForcedErrorUncaught(taskId, verifier, award);
            if (award > 0) _jackpot.award(verifier, award, reason);
            return;
        }
        uint256 each = award / n;
        emit ForcedErrorCaught(taskId, verifier, catchers, each);
        if (each == 0) return;
        for (uint256 i = 0; i < n; ++i) {
            _jackpot.award(catchers[i], each, reason);
        }
    }

    /// @notice keccak256(abi.encode(array)) of the `bytes32[]` whose offset is word `index` of ABI-encoded
    ///         event data: the array's own encoding (its length, then its elements) follows a head word.
    function _arrayHash(bytes calldata data, uint256 index) private pure returns (bytes32) {
        uint256 offset = uint256(_word(data, index));
        uint256 length = uint256(bytes32(data[offset:offset + 32]));
        return keccak256(bytes.concat(bytes32(uint256(32)), data[offset:offset + 32 * (length + 1)]));
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

    function _checkCid(string calldata cid) private pure {
        uint256 length = bytes(cid).length;
        if (length == 0 || length > MAX_CID_LENGTH) revert Errors.InvalidCid(length);
    }
}
