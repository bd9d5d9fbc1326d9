// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPoolSettlement} from "../interfaces/ITaskPool.sol";
import {IJackpot} from "../interfaces/IJackpot.sol";
import {IPinpointGame} from "../interfaces/IPinpointGame.sol";
import {PoolProxy} from "./PoolProxy.sol";
import {TaskPoolBase} from "./TaskPoolBase.sol";
import {
    TaskId,
    Randomness,
    Binary32,
    Mode,
    Timestamp,
    Duration,
    Status,
    Outcome,
    Params,
    Task,
    Amounts,
    Payouts,
    Role,
    Flag
} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title TaskPoolSettlement: the task pool's timeouts, cancellation, settlement, sweeps and views
/// @notice Runs only by delegatecall from `TaskPool`, on the pool's storage: everyone calls these at the
///         pool's address. Called at its own address it reads its own, empty storage and can move no
///         money (it holds none).
contract TaskPoolSettlement is TaskPoolBase, PoolProxy, ITaskPoolSettlement {
    /// @notice The challenges half, run by delegatecall (on the pool's storage) for every selector this
    ///         half does not implement.
    address public immutable challenges;

    /// @param params The deployment parameters, the pool's own.
    /// @param jackpot_ The pool's jackpot.
    /// @param game_ The pool's pinpoint game.
    /// @param challenges_ The challenges half, built with the same parameters.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_, address challenges_)
        TaskPoolBase(params, jackpot_, game_)
    {
        if (challenges_ == address(0)) revert Errors.ZeroAddress();
        challenges = challenges_;
    }

    /// @notice Every call neither the pool nor this half implements runs the challenges half, still on
    ///         the pool's storage (a delegatecall made in a delegatecall keeps the caller's storage), by
    ///         `Proxy`'s payable fallback (challenges carry their bond).
    function _implementation() internal view override returns (address) {
        return challenges;
    }

    /// @inheritdoc ITaskPoolSettlement
    function cancel(TaskId taskId) external {
        Task storage t = _known(taskId);
        Status status = t.status;
        if (status != Status.Submitted && status != Status.Open) revert Errors.WrongStatus(taskId, status);
        if (msg.sender != t.submitter) revert Errors.NotAuthorized(taskId, msg.sender);
        emit TaskCancelled(taskId);
        _settle(t, taskId, Outcome.Cancelled);
    }

    /// @inheritdoc ITaskPoolSettlement
    function acceptProfile(TaskId taskId) external {
        Task storage t = _underReview(taskId);
        t.reviewDeadline = Timestamp.wrap(0);
        emit ProfileAccepted(taskId, t.profiler, t.threshold, t.deadline);
    }

    /// @inheritdoc ITaskPoolSettlement
    function rejectProfile(TaskId taskId) external payable {
        Task storage t = _underReview(taskId);
        uint256 fee = t.bounty * _profileRejectionFeeBps / BPS;
        if (msg.value != fee) revert Errors.WrongValue(fee, msg.value);

        address profiler = t.profiler;
        uint256 stake = t.bounty * _profilerStakeBps / BPS;
        Timestamp deadline = _after(_profileWindow);
        t.profiler = address(0);
        t.reviewDeadline = Timestamp.wrap(0);
        t.threshold = Binary32.wrap(0);
        t.status = Status.Submitted;
        t.deadline = deadline;
        // The profiler gets its stake back and nothing more: a profiler is paid when a task
        // completes with its τ, so a junk profile earns nothing by being rejected. The fee
        // goes to the jackpot, so that a rejection costs the submitter without paying anyone.
        _credit(profiler, stake);
        _accrueJackpot(fee);
        emit ProfileRejected(taskId, profiler, stake, fee, deadline);
    }

    /// @inheritdoc ITaskPoolSettlement
    function settle(TaskId taskId) external {
        Task storage t = _known(taskId);
        if (t.status != Status.ChallengeWindow) revert Errors.WrongStatus(taskId, t.status);
        if (t.disputes != 0) revert Errors.ChallengesOpen(taskId);
        Timestamp end = _verdictEnd(t);
        if (block.timestamp <= Timestamp.unwrap(end)) revert Errors.DeadlineNotReached(taskId, end);
        // A report that may have been forced, lost a challenge and was never revealed is slashed to the
        // winner (not forfeited to the jackpot) and the task verified again.
        if (t.flags & Flag.DEFEATED != 0) _applyDefeat(t, taskId);
        else _settleVerdict(t, taskId);
    }

    /// @inheritdoc ITaskPoolSettlement
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

    /// @inheritdoc ITaskPoolSettlement
    function sweepJackpot() external nonReentrant {
        uint256 amount = _ledger.jackpotAccrued;
        if (amount == 0) revert Errors.NothingToSweep();
        _ledger.jackpotAccrued = 0;
        emit JackpotSwept(amount);
        _jackpot.fund{value: amount}();
    }

    /// @inheritdoc ITaskPoolSettlement
    function parameters() external view returns (Params memory) {
        return Params({
            protocolFeeBps: uint16(_protocolFeeBps),
            verificationFeeBps: uint16(_verificationFeeBps),
            profileFeeBps: uint16(_profileFeeBps),
            profileRejectionFeeBps: uint16(_profileRejectionFeeBps),
            solverStakeBps: uint32(_solverStakeBps),
            verifierStakeBps: uint32(_verifierStakeBps),
            profilerStakeBps: uint32(_profilerStakeBps),
            slashToSubmitterBps: uint16(_slashToSubmitterBps),
            profileWindow: _profileWindow,
            profileReviewWindow: _profileReviewWindow,
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
            forcedErrorTaxBps: uint16(_forcedErrorTaxBps),
            maxThreshold: _maxThreshold,
            minBounty: _minBounty
        });
    }

    /// @inheritdoc ITaskPoolSettlement
    function sampleCount(TaskId taskId) external view returns (uint256) {
        Task storage t = _tasks[taskId];
        return _sampleCount(t.segments, t.sampledSegments);
    }

    /// @inheritdoc ITaskPoolSettlement
    function amounts(uint256 bounty) external view returns (Amounts memory) {
        return _amounts(bounty);
    }

    /// @inheritdoc ITaskPoolSettlement
    function payouts(TaskId taskId) external view returns (Payouts memory) {
        Task storage t = _tasks[taskId];
        if (t.status != Status.Settled) return Payouts(0, 0, 0, 0, 0);
        return _payouts(t, 0);
    }

    /// @inheritdoc ITaskPoolSettlement
    function owed(TaskId taskId, address account) external view returns (uint256 due) {
        Task storage t = _tasks[taskId];
        if (t.status == Status.Settled) {
            (due,) = _due(t, account);
        } else if (_settleable(t)) {
            // What settling now would pay: an unrevealed report that may be forced forfeits.
            Payouts memory p = _payouts(t, _forfeit(t));
            due = _share(t, p, account, 0);
        }
    }

    /// @inheritdoc ITaskPoolSettlement
    function held(TaskId taskId) external view returns (uint256 escrowed, uint256 staked, uint256 unpaid) {
        Task storage t = _tasks[taskId];
        Status status = t.status;
        if (status == Status.None) return (0, 0, 0);
        bool profiled = _profiled(t);
        if (status == Status.Settled) {
            Payouts memory p = _payouts(t, 0);
            uint8 done = t.withdrawn;
            if (done & Role.SUBMITTER == 0) unpaid += p.submitter;
            if (done & Role.SOLVER == 0) unpaid += p.solver;
            if (done & Role.VERIFIER == 0) unpaid += p.verifier;
            if (done & Role.PROFILER == 0) unpaid += p.profiler;
            return (0, 0, unpaid);
        }
        Amounts memory a = _amounts(t.bounty);
        escrowed = a.bounty;
        if (profiled) staked += a.profilerStake;
        if (status >= Status.Training) staked += a.solverStake;
        if (t.verifier != address(0) && t.flags & Flag.STAKE_TAKEN == 0) staked += a.verifierStake;
    }

    /// @inheritdoc ITaskPoolSettlement
    function nextTaskId() external view returns (TaskId) {
        return _ledger.nextTaskId;
    }

    /// @inheritdoc ITaskPoolSettlement
    function jackpotAccrued() external view returns (uint256) {
        return _ledger.jackpotAccrued;
    }

    /// @inheritdoc ITaskPoolSettlement
    function jackpot() external view returns (address) {
        return address(_jackpot);
    }

    /// @inheritdoc ITaskPoolSettlement
    function forcedError(bytes32 secret, Randomness randomness, bytes32 claimBlockHash) external view returns (bool) {
        return _isForced(secret, randomness, claimBlockHash);
    }

    /// @notice The task, open with a profile its submitter (the caller) may still accept or reject.
    function _underReview(TaskId taskId) private view returns (Task storage t) {
        t = _known(taskId);
        if (t.status != Status.Open) revert Errors.WrongStatus(taskId, t.status);
        Timestamp review = t.reviewDeadline;
        if (t.mode != Mode.Tolerant || Timestamp.unwrap(review) == 0) revert Errors.NoProfileUnderReview(taskId);
        if (block.timestamp > Timestamp.unwrap(review)) revert Errors.DeadlinePassed(taskId, review);
        if (msg.sender != t.submitter) revert Errors.NotAuthorized(taskId, msg.sender);
    }

}
