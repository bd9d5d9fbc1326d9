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
    Payouts,
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
import {ITaskPoolFaults} from "./ITaskPoolFaults.sol";

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
    ///         Its submitter may reject the profile until `reviewDeadline`; solvers may claim after it
    ///         (or once `ProfileAccepted`), until `deadline`.
    /// @dev Folded.
    event TaskProfiled(
        TaskId indexed taskId,
        address indexed profiler,
        Binary32 threshold,
        string profileCid,
        uint256 stake,
        Timestamp deadline,
        Timestamp reviewDeadline
    );

    /// @notice The submitter accepted the task's profile (τ `threshold`): solvers may claim at once,
    ///         until `deadline`.
    event ProfileAccepted(TaskId indexed taskId, address indexed profiler, Binary32 threshold, Timestamp deadline);

    /// @notice The submitter rejected the task's profile: the profiler was credited its stake `refund`
    ///         (and nothing more), the rejection fee `fee` paid by the submitter accrued to the jackpot,
    ///         and the task is Submitted again, waiting for another profile until `deadline`.
    event ProfileRejected(
        TaskId indexed taskId, address indexed profiler, uint256 refund, uint256 fee, Timestamp deadline
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
    ///         forced-error secret, whose hash is also its share of the randomness. `claimBlock` is the
    ///         block that holds the claim: its hash, unknown to anyone when the claim is sent, decides with
    ///         the secret and the randomness whether the verifier is forced to err.
    /// @dev Folded. By `deadline` the solver must reveal its seed (first verification; within 256 blocks of
    ///      `claimBlock` for the claim to be forceable) or the verifier report (later ones, the randomness
    ///      being fixed already).
    event VerificationClaimed(
        TaskId indexed taskId,
        address indexed verifier,
        Hash secretHash,
        uint256 stake,
        Timestamp deadline,
        uint256 claimBlock
    );

    /// @notice The solver revealed its seed: the randomness that selects the sampled segments is fixed,
    ///         `keccak256(abi.encode(seed, secretHash, taskId))`, for this and every later verification.
    ///         `claimBlockHash` is the hash of the block that holds the verifier's claim
    ///         (`VerificationClaimed.claimBlock`), which decides with the secret and the randomness whether
    ///         the verifier is forced to err (`forcedError`). It is zero when the seed came more than 256
    ///         blocks after the claim, where the chain no longer gives it: that claim is not forceable (no
    ///         forced error, nothing to reveal), and its verifier still pays the forced-error tax.
    /// @dev Folded. The verifier must report by `deadline`.
    event RandomnessDrawn(
        TaskId indexed taskId,
        address indexed solver,
        Randomness randomness,
        bytes32 seed,
        Timestamp deadline,
        bytes32 claimBlockHash
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

    /// @notice A challenge was opened. `Report`: the pool opened pinpoint game `game` over `segment`
    ///         between the verifier (defending `defenderTrace`, its reported root at `position`) and
    ///         `challenger`. `Proof`: the solver must answer with its trace root by `deadline` (`game`
    ///         and `defenderTrace` zero until then).
    event ChallengeOpened(
        TaskId indexed taskId,
        ChallengeId indexed challengeId,
        address indexed challenger,
        Claim claim,
        uint32 segment,
        uint32 position,
        Root defenderTrace,
        Root challengerTrace,
        GameId game,
        Timestamp deadline
    );

    /// @notice The solver answered a challenge on its proof with the trace root of its replay of the
    ///         segment, which ends in `distance` (at most τ); the pool opened game `game`.
    event ChallengeAnswered(
        TaskId indexed taskId,
        ChallengeId indexed challengeId,
        address indexed solver,
        Root solverTrace,
        Binary32 distance,
        GameId game
    );

    /// @notice A challenge ended: `Upheld` (the claim lost: the challenger won, both lost, or the
    ///         solver did not answer) or `Rejected` (the defender won). `ruling` is its game's.
    event ChallengeResolved(
        TaskId indexed taskId,
        ChallengeId indexed challengeId,
        address indexed challenger,
        Claim claim,
        ChallengeState state,
        Ruling ruling
    );

    /// @notice The verifier's report lost a challenge and was voided: its stake `slashed` went to
    ///         `winner` (the first challenger that won; zero: to the jackpot), its fee stays with the
    ///         bounty. `VerificationReopened` (the same randomness) or `TaskSettled` follows.
    event ReportDefeated(TaskId indexed taskId, address indexed verifier, address indexed winner, uint256 slashed);

    /// @notice The solver lost a challenge on its proof: the task fails; `winner` (zero: none) was
    ///         credited `award`, the jackpot's part of the solver's slashed stake.
    event ProofFailed(TaskId indexed taskId, address indexed solver, address indexed winner, uint256 award);

    /// @notice A forced error was caught: the jackpot awarded each of `catchers` `award` (together at most
    ///         the verifier's stake and at most a third of the reserve). The verifier is not slashed: its
    ///         true roots stand in a fresh challenge window and are paid as any report.
    event ForcedErrorCaught(TaskId indexed taskId, address indexed verifier, address[] catchers, uint256 award);

    /// @notice A forced error nobody caught: the jackpot awarded the verifier `award`, the award its
    ///         catchers would have shared (at most its stake and at most a third of the reserve), so
    ///         that catching its own forced error through another address gains it nothing.
    event ForcedErrorUncaught(TaskId indexed taskId, address indexed verifier, uint256 award);

    /// @notice A one-shot proof showed that a claimed distance is not what its trace root ends with
    ///         (`traced`; exact tasks: +0 when the replayed end state is the claimed one, +inf when
    ///         not): a report's (`challengeId` zero, `position` its place in the report) or a solver's
    ///         answer (`challengeId`). It counts as a challenge the claim lost, won by `prover`.
    event DistanceDisproved(
        TaskId indexed taskId,
        address indexed prover,
        ChallengeId indexed challengeId,
        uint32 position,
        Binary32 stated,
        Binary32 traced
    );

    /// @notice `account` withdrew its credit (won slashes, refunded deposits).
    event CreditWithdrawn(address indexed account, uint256 amount);

    /// @notice The last open challenge of a report that may be a forced error has ended: its verifier
    ///         may reveal (`revealVerification`) once `challengeDeadline` has passed, until
    ///         `revealDeadline`; settlement waits as long. When the challenges outlasted the challenge
    ///         window, `challengeDeadline` is the moment they ended (the reveal window restarts then).
    event RevealScheduled(
        TaskId indexed taskId, address indexed verifier, Timestamp challengeDeadline, Timestamp revealDeadline
    );
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

    /// @notice Posts the profile of a tolerant task: the threshold τ and the profile artifact. The task
    ///         is Open, but solvers may claim it only once its submitter has accepted the profile
    ///         (`acceptProfile`) or let `profileReviewWindow` pass without rejecting it (`rejectProfile`).
    /// @dev `msg.value` must be the profiler stake. Submitted only, before its deadline. Reverts with
    ///      `InvalidThreshold` unless τ is finite and non-negative, `ThresholdAboveBound` above the
    ///      bound the submitter accepts.
    /// @param taskId The task.
    /// @param threshold τ, the largest relative distance that passes, as binary32 bits.
    /// @param profileCid The CID of the profile artifact (emitted, not stored).
    function profile(TaskId taskId, Binary32 threshold, string calldata profileCid) external payable;

    /// @notice Claims an open task for training; `msg.value` must be the solver stake. Claiming a
    ///         tolerant task accepts its τ.
    /// @dev A tolerant task's profile must be out of review: accepted by the submitter, or its review
    ///      deadline passed (`ProfileUnderReview` otherwise).
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

    /// @notice The solver reveals its seed, which fixes the randomness (see `RandomnessDrawn`), and the pool
    ///         records the hash of the claim's block.
    /// @dev Only the solver, in Verifying before the randomness is fixed, before the deadline, in a later
    ///      block than the claim (`ClaimBlockOutOfReach`). More than 256 blocks after the claim the chain
    ///      no longer gives its block's hash: the seed is accepted, the recorded hash is zero and the claim
    ///      is not forceable (still taxed, so that a solver cannot spare its own verifier the tax by
    ///      waiting once it knows the verifier is not forced). The data
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
    ///         this call. Forced and erred: the true roots replace the reported ones and stay open to
    ///         challenge for another challenge window, and the jackpot pays one forced-error award, to
    ///         the challengers that won on the forced roots (`ForcedErrorCaught`) or, when none did, to
    ///         the verifier (`ForcedErrorUncaught`); the verifier is not slashed. A forced verifier that
    ///         did not err, or one whose true roots differ while not forced, forfeits its fee and stake
    ///         to the jackpot.
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
///         address (the deployment manifest lists every half's ABI under `TaskPool`).
interface ITaskPoolSettlement is ITaskPoolEvents {

    /// @notice Cancels a task nobody has claimed; the submitter gets its whole bounty back and a
    ///         profiler its stake (a profile is paid only once a solver has accepted its τ).
    /// @dev Only the submitter, in Submitted or Open.
    /// @param taskId The task.
    function cancel(TaskId taskId) external;

    /// @notice The submitter accepts the profile of its tolerant task: solvers may claim it at once.
    /// @dev Only the submitter, while the profile is under review (Open, before the review deadline).
    ///      Reverts with `WrongStatus`, `NoProfileUnderReview` (an exact task, or accepted already),
    ///      `DeadlinePassed` (the review is over: the profile stands) or `NotAuthorized`.
    /// @param taskId The task.
    function acceptProfile(TaskId taskId) external;

    /// @notice The submitter rejects the profile of its tolerant task: the task is Submitted again,
    ///         with a fresh `profileWindow`, and the profiler is credited its stake back
    ///         (`withdrawCredit`), nothing more: a profiler is paid only when a task completes with
    ///         its τ. The submitter pays the rejection fee with this call, to the jackpot, so that
    ///         rejecting a profile is never free and pays nobody.
    /// @dev `msg.value` must be `amounts(bounty).profileRejectionFee`. Same conditions and errors as
    ///      `acceptProfile`, and `WrongValue`.
    /// @param taskId The task.
    function rejectProfile(TaskId taskId) external payable;

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

    /// @notice Whether a verifier with `secret` is forced to err on a task with this randomness and claim
    ///         block hash (`RandomnessDrawn`), given that its report may be forced at all (it claimed before
    ///         the randomness existed): `keccak256(abi.encode(secret, keccak256(abi.encode(randomness,
    ///         claimBlockHash)))) < p · 2^256`; never for a zero claim block hash (a seed revealed more than
    ///         256 blocks after the claim).
    function forcedError(bytes32 secret, Randomness randomness, bytes32 claimBlockHash) external view returns (bool);

    /// @notice The id the next submission will get.
    function nextTaskId() external view returns (TaskId);

    /// @notice Jackpot money (protocol fees, slashed shares) held here until the next sweep, in wei.
    function jackpotAccrued() external view returns (uint256);

    /// @notice The jackpot contract that sweeps go to.
    function jackpot() external view returns (address);
}

/// @title The task pool's challenges: anyone may dispute a report or a proof (PROTOCOL.md §9)
/// @notice Every challenge is played as a pinpoint game that the pool opens (the game's `creator`), so
///         only games the pool created are honoured. While a task has an open challenge, nothing it
///         could change is paid out: `settle`, `withdraw` and the verifier's reveal wait. Consequences
///         are applied when the task's last open challenge ends (docs/contracts.md, "Challenges"):
///         a report that lost is voided, its verifier slashed to the first winner and the task
///         verified again with the same randomness; a proof that lost fails the task.
interface ITaskPoolChallenges is ITaskPoolEvents {
    /// @notice Challenges the trace root the verifier reported at `position` of its report (the sample
    ///         in increasing segment order, then the extra segments), in either direction, during the
    ///         challenge window (after a forced error's reveal: the true roots, in their window).
    ///         The pool computes the segment itself (the sample from the task's randomness, or the
    ///         named extra segment) and opens a pinpoint game: the verifier defends its reported root,
    ///         the caller challenges with `challengerTrace`. `msg.value` must be `challengeBond()`,
    ///         which pays the game's creation bond.
    /// @dev Reverts with `WrongStatus`, `DeadlinePassed`, `WrongValue`, `RecordMismatch`, `NoReport`,
    ///      `InvalidPosition`, `EmptyCommitment`, or the game's own errors (`InvalidTraces` for a root
    ///      equal to the reported one, `SameParty` for the verifier itself, `InvalidCheckpoint`,
    ///      `ProgramMismatch`).
    /// @param taskId The task.
    /// @param position The disputed root's position in the report's trace roots.
    /// @param challengerTrace The trace root the caller stands behind.
    /// @param history The task's folded events from `TaskSubmitted`, as logged (they rebuild its record).
    /// @param opening The program header and the segment's start and claimed states with their proofs.
    /// @return challengeId The new challenge.
    function challengeReport(
        TaskId taskId,
        uint32 position,
        Root challengerTrace,
        Folded[] calldata history,
        Opening calldata opening
    ) external payable returns (ChallengeId challengeId);

    /// @notice Challenges the solver's proof on any `segment`, sampled or not, during the challenge
    ///         window: the caller says the segment does not replay from checkpoint `segment` to within
    ///         τ of checkpoint `segment + 1` (exact mode: to its state root). The solver must answer
    ///         with its own trace root within `verifyWindow` (`answerChallenge`), or its proof fails.
    ///         `msg.value` must be `challengeBond()`; the pool holds it and pays the game's creation
    ///         bond with it (or credits it back if the solver does not answer).
    /// @dev Reverts with `WrongStatus`, `DeadlinePassed`, `WrongValue`, `InvalidPosition` (a segment
    ///      ≥ S) or `EmptyCommitment`.
    /// @param taskId The task.
    /// @param segment The disputed segment.
    /// @param challengerTrace The trace root the caller stands behind.
    /// @return challengeId The new challenge.
    function challengeProof(TaskId taskId, uint32 segment, Root challengerTrace)
        external
        payable
        returns (ChallengeId challengeId);

    /// @notice The solver answers a challenge on its proof with the trace root of its replay of the
    ///         segment and the distance that trace ends with (at most τ; +0 in exact mode); the pool
    ///         opens the game, the solver defending `solverTrace`.
    /// @dev Only the solver, while the challenge is `Answering` and before its deadline. Reverts with
    ///      `NotAuthorized`, `WrongChallengeState`, `DeadlinePassed`, `DistanceAboveThreshold`,
    ///      `RecordMismatch`, or the game's own errors.
    /// @param challengeId The challenge.
    /// @param solverTrace The solver's trace root of the segment.
    /// @param distance The distance its trace ends with, as binary32 bits.
    /// @param history The task's folded events from `TaskSubmitted`, as logged.
    /// @param opening The program header and the segment's states with their proofs.
    /// @return gameId The game opened.
    function answerChallenge(
        ChallengeId challengeId,
        Root solverTrace,
        Binary32 distance,
        Folded[] calldata history,
        Opening calldata opening
    ) external returns (GameId gameId);

    /// @notice One-shot claim, no game: the distance the verifier reported at `position` is not what
    ///         its reported trace root at `position` ends with (tolerant: the distance computation's
    ///         last value; exact: +0 exactly when the trace's end state is the claimed checkpoint).
    ///         The report lost, as if a game had been lost to the caller (consequences as for games,
    ///         once no challenge of the task is open). Anyone, during the challenge window.
    /// @dev Reverts with `WrongStatus`, `DeadlinePassed`, `RecordMismatch`, `NoReport`,
    ///      `InvalidPosition`, `ProgramMismatch`, `InvalidMerkleProof`, `InvalidCheckpoint`,
    ///      `MalformedRecord`, `MalformedHeader`, or `NothingProven` when the distance agrees.
    /// @param taskId The task.
    /// @param position The reported segment's position in the report.
    /// @param history The task's folded events from `TaskSubmitted`, as logged.
    /// @param proof What the reported trace root ends with (see `DistanceProof`).
    function disproveReport(TaskId taskId, uint32 position, Folded[] calldata history, DistanceProof calldata proof)
        external;

    /// @notice One-shot claim, no game: the distance the solver answered a proof challenge with is not
    ///         what its answered trace root ends with. The challenge is upheld at once (the proof
    ///         lost; its game goes on for its bonds only). Anyone, while the challenge's game runs.
    /// @dev Reverts with `UnknownChallenge`, `WrongChallengeState`, `RecordMismatch`, the proof errors
    ///      of `disproveReport`, or `NothingProven`.
    /// @param challengeId The answered proof challenge.
    /// @param history The task's folded events from `TaskSubmitted`, as logged.
    /// @param proof What the solver's trace root ends with.
    function disproveAnswer(ChallengeId challengeId, Folded[] calldata history, DistanceProof calldata proof) external;

    /// @notice Applies the end of a challenge: its game's ruling once the game is resolved, or, for a
    ///         proof challenge the solver did not answer by its deadline, the solver's loss (the
    ///         challenger's deposit is credited back). When it was the task's last open challenge,
    ///         the consequences follow at once (see the contract's notice). Anyone may call it.
    /// @dev Reverts with `UnknownChallenge`, `WrongChallengeState` or `GameNotResolved`.
    /// @param challengeId The challenge.
    function resolve(ChallengeId challengeId) external;

    /// @notice Sends the caller its credit: slashed stakes and awards it won, refunded deposits.
    /// @dev Reverts with `NothingToWithdraw`.
    /// @return amount The wei sent.
    function withdrawCredit() external returns (uint256 amount);

    /// @notice A challenge.
    function challenge(ChallengeId challengeId) external view returns (Challenge memory);

    /// @notice The value a challenge carries: the game's `requiredBond()`.
    function challengeBond() external view returns (uint256);

    /// @notice What `account` may take with `withdrawCredit`, in wei.
    function credit(address account) external view returns (uint256);

    /// @notice Credits and proof-challenge deposits the pool holds outside any task, in wei.
    function challengeFunds() external view returns (uint256 credits, uint256 deposits);

    /// @notice The pinpoint game the pool opens its challenges in.
    function game() external view returns (address);

    /// @notice The id the next challenge gets.
    function nextChallengeId() external view returns (ChallengeId);
}

/// @title The task pool: lifecycle, escrow and stakes of training tasks
/// @notice Everything a client calls at the pool's address (PROTOCOL.md §1).
interface ITaskPool is ITaskPoolLifecycle, ITaskPoolSettlement, ITaskPoolChallenges, ITaskPoolFaults {}
