// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

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
    Amounts,
    Payouts
} from "../lib/Types.sol";

/// @title The task pool's events
/// @notice A task moves Submitted → Open → Training → Committed → Verifying → ChallengeWindow → Settled
///         (PROTOCOL.md §1). The events are complete: an observer rebuilds every task's state, parties,
///         deadlines, CIDs, roots, randomness, verdict and payouts from logs alone. The events marked
///         "folded" also enter the task's record (docs/contracts.md, "Task record").
interface ITaskPoolEvents {
    /// @notice A task was submitted; its bounty is escrowed and its protocol fee accrues to the jackpot.
    /// @dev Folded. `deadline` ends the next state: Submitted (tolerant) or Open (exact).
    event TaskSubmitted(
        TaskId indexed taskId,
        address indexed submitter,
        Mode mode,
        uint256 bounty,
        uint256 protocolFee,
        Hash specHash,
        Root programRoot,
        uint32 segments,
        uint16 sampledSegments,
        Binary32 thresholdBound,
        Duration trainingWindow,
        string specCid,
        Timestamp deadline
    );

    /// @notice A profiler posted the threshold τ of a tolerant task and locked its stake; the task is Open.
    /// @dev Folded.
    event TaskProfiled(
        TaskId indexed taskId,
        address indexed profiler,
        Binary32 threshold,
        string profileCid,
        uint256 stake,
        Timestamp deadline
    );

    /// @notice A solver claimed the task and locked its stake; it must commit a proof by `deadline`.
    event TaskClaimed(TaskId indexed taskId, address indexed solver, uint256 stake, Timestamp deadline);

    /// @notice The solver committed its proof and the hash of a seed it reveals once a verifier has claimed.
    /// @dev Folded. `deadline` ends the wait for a verifier.
    event ProofCommitted(
        TaskId indexed taskId,
        address indexed solver,
        string proofCid,
        Root checkpointRoot,
        Hash seedHash,
        Timestamp deadline
    );

    /// @notice A verifier claimed the verification, locked its stake and committed to a secret: its
    ///         forced-error secret, whose hash is also its share of the randomness.
    /// @dev Folded. By `deadline` the solver must reveal its seed (first verification) or the verifier
    ///      report (later ones, the randomness being fixed already).
    event VerificationClaimed(
        TaskId indexed taskId, address indexed verifier, Hash secretHash, uint256 stake, Timestamp deadline
    );

    /// @notice The solver revealed its seed: the randomness that selects the sampled segments is fixed,
    ///         `keccak256(abi.encode(seed, secretHash, taskId))`, for this and every later verification.
    /// @dev Folded. The verifier must report by `deadline`.
    event RandomnessDrawn(
        TaskId indexed taskId, address indexed solver, Randomness randomness, bytes32 seed, Timestamp deadline
    );

    /// @notice The verifier reported one distance and one replay trace root per sampled segment and per
    ///         extra segment it replayed; the chain derived the verdict.
    /// @dev Folded. The verdict may be challenged until `challengeDeadline`.
    event VerificationReported(
        TaskId indexed taskId,
        address indexed verifier,
        Binary32[] distances,
        uint32[] extraSegments,
        Binary32[] extraDistances,
        Root[] traceRoots,
        Hash sealedTraceRoots,
        Verdict verdict,
        Timestamp challengeDeadline
    );

    /// @notice A verifier that may have been forced to err revealed its secret. If it was forced, its
    ///         true trace roots `traceRoots` replace the reported ones and stay open to challenge until
    ///         `challengeDeadline`; otherwise the task is settled (`challengeDeadline` 0).
    /// @dev Folded.
    event VerificationRevealed(
        TaskId indexed taskId,
        address indexed verifier,
        bytes32 secret,
        bool forced,
        Root[] traceRoots,
        Timestamp challengeDeadline
    );

    /// @notice The submitter cancelled the task before any solver claimed it.
    event TaskCancelled(TaskId indexed taskId);

    /// @notice Anyone moved a task on after the deadline of `status` passed; `penalised` (zero when
    ///         nobody stalled) lost `slashed` wei.
    event TaskTimedOut(TaskId indexed taskId, Status status, address indexed penalised, uint256 slashed);

    /// @notice The verifier did not report in time; the proof waits for another verifier until `deadline`.
    event VerificationReopened(TaskId indexed taskId, Timestamp deadline);

    /// @notice The task is final; these are the payouts, owed until each party withdraws.
    event TaskSettled(
        TaskId indexed taskId,
        Outcome outcome,
        uint256 toSubmitter,
        uint256 toSolver,
        uint256 toVerifier,
        uint256 toProfiler,
        uint256 toJackpot
    );

    /// @notice `account` withdrew `amount` wei it was owed by the task.
    event PayoutWithdrawn(TaskId indexed taskId, address indexed account, uint256 amount);

    /// @notice Accrued jackpot money was moved to the jackpot contract.
    event JackpotSwept(uint256 amount);
}

/// @title The task pool's lifecycle: the calls of a task's happy path
/// @notice Implemented by `TaskPool` itself. Every waiting state has a deadline after which anyone may
///         move the task on (`ITaskPoolSettlement.timeout`, or `settle` once the challenge window is
///         over); whoever stalled is slashed. Money is pulled (`withdraw`), except that the verifier's
///         reveal pushes every party its payout.
interface ITaskPoolLifecycle is ITaskPoolEvents {
    /// @notice Submits a task: escrows the bounty and accrues the protocol fee to the jackpot.
    /// @dev `msg.value` must be `terms.bounty + amounts(terms.bounty).protocolFee`. An exact task is Open
    ///      at once; a tolerant one waits for a profile. Reverts with `BountyOutOfRange`, `WrongValue`,
    ///      `InvalidCid`, `EmptyCommitment`, `TrainingWindowOutOfRange`, `InvalidSegmentCount`,
    ///      `InvalidSampleCount` or `InvalidThresholdBound`.
    /// @param specCid The IPFS CID of the task spec (emitted, not stored).
    /// @param terms The spec hash, program root, bounty, mode, training window, S, s and τ bound.
    /// @return taskId The new task's id.
    function submit(string calldata specCid, Terms calldata terms) external payable returns (TaskId taskId);

    /// @notice Posts the profile of a tolerant task: the threshold τ and the profile artifact.
    /// @dev `msg.value` must be the profiler stake. Submitted only, before its deadline. Reverts with
    ///      `InvalidThreshold` unless τ is finite and non-negative, `ThresholdAboveBound` above the
    ///      bound the submitter accepts.
    /// @param taskId The task.
    /// @param threshold τ, the largest relative distance that passes, as binary32 bits.
    /// @param profileCid The CID of the profile artifact (emitted, not stored).
    function profile(TaskId taskId, Binary32 threshold, string calldata profileCid) external payable;

    /// @notice Claims an open task for training; `msg.value` must be the solver stake. Claiming a
    ///         tolerant task accepts its τ.
    /// @param taskId The task.
    function claim(TaskId taskId) external payable;

    /// @notice Commits the proof of learning: its CID, the Merkle root over the task's S + 1 checkpoint
    ///         state roots, and the hash of a seed the solver reveals once a verifier has claimed.
    /// @dev Only the solver, in Training, before the deadline.
    /// @param taskId The task.
    /// @param proofCid The CID of the proof manifest (emitted, not stored).
    /// @param checkpointRoot The Merkle root over the checkpoint state roots.
    /// @param seedHash keccak256(abi.encode(seed)).
    function commit(TaskId taskId, string calldata proofCid, Root checkpointRoot, Hash seedHash) external;

    /// @notice Claims the verification of a committed proof; `msg.value` must be the verifier stake.
    /// @dev Committed only, before the deadline; neither by the solver nor by the submitter. Reverts with
    ///      `EmptyCommitment` for a zero secret hash.
    /// @param taskId The task.
    /// @param secretHash keccak256(abi.encode(secret)) of the verifier's forced-error secret; it is also
    ///        the verifier's share of the randomness.
    function claimVerification(TaskId taskId, Hash secretHash) external payable;

    /// @notice The solver reveals its seed, which fixes the randomness (see `RandomnessDrawn`).
    /// @dev Only the solver, in Verifying before the randomness is fixed, before the deadline. The data
    ///      of the task's `ProofCommitted` and `VerificationClaimed` events, with the record before the
    ///      former, must rebuild the task's record (`RecordMismatch`); `WrongSeed` otherwise.
    /// @param taskId The task.
    /// @param seed The seed whose hash the solver committed.
    /// @param recordBeforeCommit The task's record before `ProofCommitted` was folded.
    /// @param commitData The data of the `ProofCommitted` log, as logged.
    /// @param claimData The data of the `VerificationClaimed` log, as logged.
    function revealSeed(
        TaskId taskId,
        bytes32 seed,
        Record recordBeforeCommit,
        bytes calldata commitData,
        bytes calldata claimData
    ) external;

    /// @notice Reports the verification: one binary32 distance per sampled segment, then the extra
    ///         segments replayed with their distances, the replay trace root of each, and the true trace
    ///         roots sealed with the verifier's secret. The chain derives the verdict (pass iff every
    ///         distance ≤ τ) and opens the challenge window.
    /// @dev Only the verifier, in Verifying, before the deadline, once the randomness is fixed. Reverts with
    ///      `WrongDistanceCount`, `InvalidDistance`, `InvalidExtraSegments`, `WrongTraceRootCount` or
    ///      `EmptyCommitment`.
    /// @param taskId The task.
    /// @param report The report (see `Report` in Types.sol).
    function reportVerification(TaskId taskId, Report calldata report) external;

    /// @notice A verifier whose report may have been a forced error reveals its secret and its true trace
    ///         roots, after the challenge window. Not forced: the task is settled and every party paid in
    ///         this call. Forced: the true roots replace the reported ones and stay open to challenge for
    ///         another challenge window. A forced verifier that did not err, or one whose true roots
    ///         differ while not forced, forfeits its fee and stake to the jackpot.
    /// @dev Only the verifier, in ChallengeWindow once its deadline has passed, within `revealWindow`.
    ///      The data of the `VerificationClaimed`, `RandomnessDrawn` and `VerificationReported` events,
    ///      with the record before the first, must rebuild the task's record.
    /// @param taskId The task.
    /// @param secret The secret whose hash the verifier committed at its claim.
    /// @param traceRoots The verifier's true trace roots (the sealed ones).
    /// @param recordBeforeClaim The task's record before `VerificationClaimed` was folded.
    /// @param claimData The data of the `VerificationClaimed` log.
    /// @param drawnData The data of the `RandomnessDrawn` log.
    /// @param reportData The data of the `VerificationReported` log.
    function revealVerification(
        TaskId taskId,
        bytes32 secret,
        Root[] calldata traceRoots,
        Record recordBeforeClaim,
        bytes calldata claimData,
        bytes calldata drawnData,
        bytes calldata reportData
    ) external;

    /// @notice Sends the caller everything the given settled tasks owe it, in one transfer. A task whose
    ///         challenge window is over is settled first, as `settle` would.
    /// @dev Tasks that owe the caller nothing are skipped; reverts with `NothingToWithdraw` if all are.
    /// @param taskIds The tasks; repeated ids are paid once.
    /// @return amount The wei sent.
    function withdraw(TaskId[] calldata taskIds) external returns (uint256 amount);

    /// @notice The stored state of a task (see `Task` in Types.sol).
    function task(TaskId taskId) external view returns (Task memory);
}

/// @title The task pool's settlement: timeouts, cancellation, sweeps and views
/// @notice Implemented by `TaskPoolSettlement`, which `TaskPool` runs by delegatecall on its own storage
///         for every selector it does not implement itself: callers see one contract at the pool's
///         address (the deployment manifest lists both halves' ABI under `TaskPool`).
interface ITaskPoolSettlement is ITaskPoolEvents {

    /// @notice Cancels a task nobody has claimed; the submitter gets its whole bounty back and a
    ///         profiler its stake (a profile is paid only once a solver has accepted its τ).
    /// @dev Only the submitter, in Submitted or Open.
    /// @param taskId The task.
    function cancel(TaskId taskId) external;

    /// @notice Settles a task whose challenge window (and, for a report that may have been forced, the
    ///         verifier's reveal window) is over, by its verdict. Anyone may call it.
    /// @param taskId The task.
    function settle(TaskId taskId) external;

    /// @notice Moves on a task whose current deadline has passed and slashes whoever stalled.
    ///         Anyone may call it. Submitted/Open: expired, refunded. Training: the solver is slashed.
    ///         Committed: no verifier came, all refunded. Verifying before the randomness: the solver
    ///         withheld its seed and is slashed. Verifying after it: the verifier is slashed and the proof
    ///         waits for another verifier (after `maxVerificationRounds` claims it is settled unverified).
    /// @param taskId The task.
    function timeout(TaskId taskId) external;

    /// @notice Moves the accrued protocol fees and slashed shares to the jackpot contract. Anyone may call it.
    function sweepJackpot() external;

    /// @notice The deployment parameters.
    function parameters() external view returns (Params memory);

    /// @notice The fee, stakes and fees that follow from `bounty`.
    function amounts(uint256 bounty) external view returns (Amounts memory);

    /// @notice What a settled task pays to each party and to the jackpot.
    function payouts(TaskId taskId) external view returns (Payouts memory);

    /// @notice What `account` may still withdraw from `taskId`, in wei.
    function owed(TaskId taskId, address account) external view returns (uint256);

    /// @notice The wei the pool holds for a task right now: escrowed bounty, locked stakes, and
    ///         payouts not yet withdrawn.
    function held(TaskId taskId) external view returns (uint256 escrowed, uint256 staked, uint256 unpaid);

    /// @notice How many distances a report on this task must carry before its extra segments:
    ///         min(S, s + 2), the first and last segments and s random ones.
    function sampleCount(TaskId taskId) external view returns (uint256);

    /// @notice Whether a verifier with `secret` is forced to err on a task with this randomness, given
    ///         that its report may be forced at all (it claimed before the randomness existed).
    function forcedError(bytes32 secret, Randomness randomness) external view returns (bool);

    /// @notice The id the next submission will get.
    function nextTaskId() external view returns (TaskId);

    /// @notice Jackpot money (protocol fees, slashed shares) held here until the next sweep, in wei.
    function jackpotAccrued() external view returns (uint256);

    /// @notice The jackpot contract that sweeps go to.
    function jackpot() external view returns (address);
}

/// @title The task pool: lifecycle, escrow and stakes of training tasks
/// @notice Everything a client calls at the pool's address (PROTOCOL.md §1).
interface ITaskPool is ITaskPoolLifecycle, ITaskPoolSettlement {}
