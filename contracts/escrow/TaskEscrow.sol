// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPoolEvents} from "../interfaces/ITaskPool.sol";
import {IJackpot} from "../interfaces/IJackpot.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {
    TaskId,
    Timestamp,
    Duration,
    Status,
    Mode,
    Outcome,
    Params,
    Task,
    Amounts,
    Payouts,
    Role,
    Flag,
    ChallengeId,
    Challenge
} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title TaskEscrow: the money side of the task pool
/// @notice Holds every task's bounty and stakes, fixes what a settled task pays to whom, and pays it.
///         Protocol fees and slashed shares accrue here and are swept to the jackpot in one transfer
///         for many tasks.
/// @dev The storage of both halves of the pool (`TaskPool` and `TaskPoolSettlement`, which runs on the
///      pool's storage by delegatecall) starts here, and neither half adds any: their layouts are this
///      one. The pool's balance always equals the sum over tasks of `held()` plus `jackpotAccrued()`:
///      money enters only with `submit`, `profile`, `claim` and `claimVerification` (exact amounts),
///      and leaves only through `withdraw`, `revealVerification` (which pays a settled task's parties)
///      and `sweepJackpot`, each guarded and checks-effects-interactions.
abstract contract TaskEscrow is ITaskPoolEvents, ReentrancyGuardTransient {
    uint256 internal constant BPS = 10_000;

    /// @dev Ids and accrued jackpot money share a slot because every submission updates both.
    struct Ledger {
        TaskId nextTaskId;
        uint192 jackpotAccrued;
    }

    IJackpot internal immutable _jackpot;
    uint256 internal immutable _protocolFeeBps;
    uint256 internal immutable _verificationFeeBps;
    uint256 internal immutable _profileFeeBps;
    uint256 internal immutable _profileRejectionFeeBps;
    uint256 internal immutable _solverStakeBps;
    uint256 internal immutable _verifierStakeBps;
    uint256 internal immutable _profilerStakeBps;
    uint256 internal immutable _slashToSubmitterBps;
    /// @dev The forced-error tax as deployed, and as charged (zero when no error is ever forced).
    uint256 internal immutable _forcedErrorTaxBps;
    uint256 internal immutable _chargedTaxBps;
    uint256 internal immutable _minBounty;
    /// @dev Kept here because settlement needs it to know when an unrevealed report may be settled.
    Duration internal immutable _revealWindow;

    /// @dev A challenge a report lost: who won (zero: both lost) and the position it disputed.
    struct Catch {
        address winner;
        uint32 position;
    }

    Ledger internal _ledger;
    mapping(TaskId taskId => Task) internal _tasks;

    // Challenges (written only when a task is challenged; the happy path reads `Task.disputes` alone).
    mapping(ChallengeId challengeId => Challenge) internal _challenges;
    /// @dev The challenges the current report lost, in the order they were resolved.
    mapping(TaskId taskId => Catch[]) internal _catches;
    /// @dev Open challenges per task; `Task.disputes` is 1 while this is non-zero. Counted by the
    ///      challenges half, read by the fault reports' half too (slither sees the halves apart).
    // slither-disable-next-line uninitialized-state
    mapping(TaskId taskId => uint256) internal _openChallenges;
    /// @dev The first challenger that won against the task's proof (written by the challenges half).
    // slither-disable-next-line uninitialized-state
    mapping(TaskId taskId => address) internal _proofWinner;
    mapping(address account => uint256) internal _credits;
    // Written by the challenges half only (slither analyses the halves apart).
    // slither-disable-next-line constable-states
    uint64 internal _lastChallengeId;
    /// @dev The sum of `_credits`.
    uint256 internal _creditTotal;
    /// @dev Bonds of proof challenges that wait for the solver's answer.
    // slither-disable-next-line constable-states
    uint256 internal _deposits;

    /// @param params The deployment parameters; the money ones are checked and kept here.
    /// @param jackpot_ The jackpot contract sweeps go to.
    constructor(Params memory params, IJackpot jackpot_) {
        if (address(jackpot_) == address(0)) revert Errors.ZeroAddress();
        if (params.protocolFeeBps > BPS) revert Errors.InvalidParameter("protocolFeeBps");
        if (uint256(params.verificationFeeBps) + params.profileFeeBps > BPS) {
            revert Errors.InvalidParameter("verificationFeeBps + profileFeeBps");
        }
        if (params.slashToSubmitterBps > BPS) revert Errors.InvalidParameter("slashToSubmitterBps");
        // The tax comes out of the fee: a verifier whose forced error was caught still gets its whole
        // stake back (it is not slashed), whatever happens.
        if (params.forcedErrorTaxBps > params.verificationFeeBps) revert Errors.InvalidParameter("forcedErrorTaxBps");
        // Rejecting a profile must cost the submitter something (it goes to the jackpot), or a
        // submitter could reject profiles for free until one proposes the τ it likes.
        if (params.profileRejectionFeeBps == 0 || params.profileRejectionFeeBps > BPS) {
            revert Errors.InvalidParameter("profileRejectionFeeBps");
        }
        // A task without stakes would let anyone stall it for free.
        if (params.solverStakeBps == 0) revert Errors.InvalidParameter("solverStakeBps");
        if (params.verifierStakeBps == 0) revert Errors.InvalidParameter("verifierStakeBps");
        if (params.profilerStakeBps == 0) revert Errors.InvalidParameter("profilerStakeBps");
        if (params.minBounty == 0 || params.minBounty > type(uint80).max) revert Errors.InvalidParameter("minBounty");
        if (Duration.unwrap(params.revealWindow) == 0) revert Errors.InvalidParameter("revealWindow");
        _jackpot = jackpot_;
        _protocolFeeBps = params.protocolFeeBps;
        _verificationFeeBps = params.verificationFeeBps;
        _profileFeeBps = params.profileFeeBps;
        _profileRejectionFeeBps = params.profileRejectionFeeBps;
        _solverStakeBps = params.solverStakeBps;
        _verifierStakeBps = params.verifierStakeBps;
        _profilerStakeBps = params.profilerStakeBps;
        _slashToSubmitterBps = params.slashToSubmitterBps;
        _forcedErrorTaxBps = params.forcedErrorTaxBps;
        _chargedTaxBps = params.forcedErrorPpm == 0 ? 0 : params.forcedErrorTaxBps;
        _minBounty = params.minBounty;
        _revealWindow = params.revealWindow;
        // Task ids start at 1; writing the slot now also spares the first submitter a fresh-slot write.
        _ledger.nextTaskId = TaskId.wrap(1);
    }

    /// @notice The amounts that follow from `bounty` (docs/contracts.md, "Settlement").
    function _amounts(uint256 bounty) internal view returns (Amounts memory a) {
        a.bounty = bounty;
        a.protocolFee = bounty * _protocolFeeBps / BPS;
        a.verificationFee = bounty * _verificationFeeBps / BPS;
        a.profileFee = bounty * _profileFeeBps / BPS;
        a.solverStake = bounty * _solverStakeBps / BPS;
        a.verifierStake = bounty * _verifierStakeBps / BPS;
        a.profilerStake = bounty * _profilerStakeBps / BPS;
        a.profileRejectionFee = bounty * _profileRejectionFeeBps / BPS;
        a.forcedErrorTax = bounty * _chargedTaxBps / BPS;
    }

    /// @notice Marks the task settled with `outcome`, accrues the jackpot's share and publishes the payouts,
    ///         which it returns.
    function _settle(Task storage t, TaskId taskId, Outcome outcome) internal returns (Payouts memory p) {
        t.status = Status.Settled;
        t.outcome = outcome;
        p = _payouts(t, 0);
        if (p.jackpot > 0) _accrueJackpot(p.jackpot);
        emit TaskSettled(taskId, outcome, p.submitter, p.solver, p.verifier, p.profiler, p.jackpot);
    }

    /// @notice Settles a reported verdict whose windows are over; a verifier that had to reveal and did
    ///         not forfeits its fee and stake.
    function _settleVerdict(Task storage t, TaskId taskId) internal {
        uint8 forfeit = _forfeit(t);
        if (forfeit != 0) t.flags |= forfeit;
        _settle(t, taskId, t.outcome);
    }

    /// @notice When a reported verdict may be settled: after its challenge window and, for a report that
    ///         may be a forced error, after the verifier's reveal window.
    function _verdictEnd(Task storage t) internal view returns (Timestamp) {
        uint256 end = Timestamp.unwrap(t.deadline);
        if (t.flags & Flag.FORCEABLE != 0) end += Duration.unwrap(_revealWindow);
        return Timestamp.wrap(uint40(end));
    }

    /// @notice Whether the task's verdict waits only for settlement (see `_verdictEnd`; no open dispute).
    function _settleable(Task storage t) internal view returns (bool) {
        return t.status == Status.ChallengeWindow && t.disputes == 0 && t.flags & Flag.DEFEATED == 0
            && block.timestamp > Timestamp.unwrap(_verdictEnd(t));
    }

    /// @notice `Flag.FORFEITED` when settling now would find an unrevealed report that may be forced.
    function _forfeit(Task storage t) internal view returns (uint8) {
        return t.flags & Flag.FORCEABLE != 0 ? Flag.FORFEITED : 0;
    }

    /// @notice Adds slashed or fee money to what the next sweep moves to the jackpot.
    function _accrueJackpot(uint256 amount) internal {
        // Bounded by the ETH ever sent to the pool, far below 2^192 wei.
        _ledger.jackpotAccrued += uint192(amount);
    }

    /// @notice Owes `amount` wei to `to`, outside any task (`withdrawCredit`).
    function _credit(address to, uint256 amount) internal {
        _credits[to] += amount;
        _creditTotal += amount;
    }

    /// @notice Sends `amount` wei to `to`; the caller has already marked it paid.
    function _send(address to, uint256 amount) internal {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert Errors.TransferFailed(to, amount);
    }

    /// @notice Whether the task's current verifier pays the forced-error tax: it made the first claim,
    ///         the only one that comes before the randomness (`Flag.FORCEABLE`), and so the only
    ///         report that may be forced (and earn a forced-error award). A first claim whose seed came
    ///         too late for it to be forceable pays it too: a solver that is its verifier's sybil knows
    ///         whether the claim is forced before it reveals, and must not be able to spare the tax by
    ///         waiting when it is not.
    function _taxed(Task storage t) internal view returns (bool) {
        return t.rounds == 1;
    }

    /// @notice Whether a profiler took part in the task.
    /// @dev Exact tasks never read the profiler slot.
    function _profiled(Task storage t) internal view returns (bool) {
        return t.mode == Mode.Tolerant && t.profiler != address(0);
    }

    /// @notice The payouts of the task `t` as settled with its outcome (docs/contracts.md, "Settlement"), with
    ///         `extraFlags` added to its flags (the forfeit that settling now would mark).
    /// @dev They always add up to the bounty plus every stake still locked at settlement. The verifier's
    ///      fee is the same whatever its verdict; the profile fee is paid once a solver has accepted τ.
    ///      A taxed verifier (`_taxed`: the report may have been forced) pays the forced-error tax out of
    ///      its payout to the jackpot.
    function _payouts(Task storage t, uint8 extraFlags) internal view returns (Payouts memory p) {
        Outcome outcome = t.outcome;
        uint256 bounty = t.bounty;
        bool profiled = _profiled(t);
        uint8 flags = t.flags | extraFlags;
        bool taxed = _taxed(t);
        Amounts memory a = _amounts(bounty);
        uint256 profileFee = 0;
        if (profiled) {
            bool accepted = outcome != Outcome.Cancelled && outcome != Outcome.Expired;
            if (accepted) profileFee = a.profileFee;
            p.profiler = profileFee + a.profilerStake;
        }
        uint256 slashed = a.solverStake;
        uint256 toSubmitter = slashed * _slashToSubmitterBps / BPS;
        if (outcome == Outcome.Passed || outcome == Outcome.Failed) {
            uint256 fee = a.verificationFee;
            uint256 verifier = fee + a.verifierStake;
            uint256 forfeit = slashed - toSubmitter;
            if (flags & (Flag.VOID | Flag.STAKE_TAKEN | Flag.SLASH_AWARDED) != 0) {
                // After challenges: a voided report pays no verifier (its stake was slashed already)
                // and its fee stays with the bounty; a stake credited back earlier is not paid again;
                // the first winner against the proof was credited the jackpot's part.
                if (flags & Flag.VOID != 0) (fee, verifier) = (0, 0);
                else if (flags & Flag.STAKE_TAKEN != 0) verifier = fee;
                if (flags & Flag.SLASH_AWARDED != 0) forfeit = 0;
            }
            if (flags & Flag.FORFEITED != 0) {
                p.jackpot = verifier;
            } else if (taxed && verifier > 0) {
                // The tax is at most the fee, so the stake always comes back whole.
                uint256 tax = bounty * _chargedTaxBps / BPS;
                p.verifier = verifier - tax;
                p.jackpot = tax;
            } else {
                p.verifier = verifier;
            }
            if (outcome == Outcome.Passed) {
                p.solver = bounty - fee - profileFee + a.solverStake;
            } else {
                p.submitter = bounty - fee - profileFee + toSubmitter;
                p.jackpot += forfeit;
            }
        } else if (outcome == Outcome.SolverTimedOut || outcome == Outcome.SeedWithheld) {
            p.submitter = bounty - profileFee + toSubmitter;
            p.jackpot = slashed - toSubmitter;
            // A verifier that waited for a withheld seed gets its stake back.
            if (outcome == Outcome.SeedWithheld) p.verifier = a.verifierStake;
        } else if (outcome == Outcome.Unverified) {
            p.submitter = bounty - profileFee;
            p.solver = a.solverStake;
        } else {
            // Cancelled or Expired: nobody claimed, the bounty goes back.
            p.submitter = bounty;
        }
    }

    /// @notice What `account` may still take from a settled task, and the roles it takes it as.
    function _due(Task storage t, address account) internal view returns (uint256 due, uint8 roles) {
        Payouts memory p = _payouts(t, 0);
        uint8 done = t.withdrawn;
        if (t.submitter == account && done & Role.SUBMITTER == 0) roles |= Role.SUBMITTER;
        if (t.solver == account && done & Role.SOLVER == 0) roles |= Role.SOLVER;
        if (t.verifier == account && done & Role.VERIFIER == 0) roles |= Role.VERIFIER;
        if (_profiled(t) && t.profiler == account && done & Role.PROFILER == 0) roles |= Role.PROFILER;
        due = _share(t, p, account, done);
    }

    /// @notice The part of `p` that `account` has not withdrawn yet (roles in `done` are paid).
    function _share(Task storage t, Payouts memory p, address account, uint8 done) internal view returns (uint256 due) {
        if (t.submitter == account && done & Role.SUBMITTER == 0) due += p.submitter;
        if (t.solver == account && done & Role.SOLVER == 0) due += p.solver;
        if (t.verifier == account && done & Role.VERIFIER == 0) due += p.verifier;
        if (_profiled(t) && t.profiler == account && done & Role.PROFILER == 0) due += p.profiler;
    }
}
