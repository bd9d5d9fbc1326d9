// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {
    TaskId,
    Hash,
    Root,
    Randomness,
    Binary32,
    Timestamp,
    Duration,
    Status,
    Mode,
    Outcome,
    Verdict,
    Params,
    Task,
    Amounts,
    Payouts
} from "../lib/Types.sol";

/// @title The task pool: lifecycle, escrow and stakes of training tasks
/// @notice A task moves Submitted → Open → Training → Committed → Verifying → ChallengeWindow → Settled
///         (PROTOCOL.md §1). Every waiting state has a deadline after which anyone may move the task on
///         with `timeout` (or `settle` once the challenge window is over); whoever stalled is slashed.
///         Money is pulled: settlement fixes each party's payout and `withdraw` sends it.
/// @dev The events are complete: an observer rebuilds every task's state, parties, deadlines, CIDs,
///      roots, randomness, verdict and payouts from logs alone. The events marked "folded" also enter
///      the task's record (docs/contracts.md, "Task record").
interface ITaskPool {
    /// @notice A task was submitted; its bounty is escrowed and its protocol fee accrues to the jackpot.
    /// @dev Folded. `deadline` ends the next state: Submitted (tolerant) or Open (exact).
    event TaskSubmitted(
        TaskId indexed taskId,
        address indexed submitter,
        Mode mode,
        uint256 bounty,
        uint256 protocolFee,
        Hash specHash,
        string specCid,
        Duration trainingWindow,
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

    /// @notice The solver committed its proof. The hash of block `randomnessBlock` will become the randomness.
    /// @dev Folded. `deadline` ends the wait for a verifier.
    event ProofCommitted(
        TaskId indexed taskId,
        address indexed solver,
        string proofCid,
        Root checkpointRoot,
        uint32 segments,
        uint256 randomnessBlock,
        Timestamp deadline
    );

    /// @notice The randomness that selects the sampled segments was drawn from the hash of `sourceBlock`.
    /// @dev Folded.
    event RandomnessDrawn(TaskId indexed taskId, Randomness randomness, uint256 sourceBlock);

    /// @notice Nobody drew the randomness while the hash of `expiredBlock` was readable (256 blocks);
    ///         the hash of `newBlock`, the block of this call, will be used instead.
    event RandomnessReanchored(TaskId indexed taskId, uint256 expiredBlock, uint256 newBlock);

    /// @notice A verifier claimed the verification, locked its stake and committed to a forced-error secret.
    /// @dev Folded. The verifier must report by `deadline`.
    event VerificationClaimed(
        TaskId indexed taskId, address indexed verifier, Hash secretHash, uint256 stake, Timestamp deadline
    );

    /// @notice The verifier reported one distance per sampled segment; the chain derived the verdict.
    /// @dev Folded. The verdict may be challenged until `challengeDeadline`.
    event VerificationReported(
        TaskId indexed taskId,
        address indexed verifier,
        Binary32[] distances,
        Root traceRootsRoot,
        Verdict verdict,
        Timestamp challengeDeadline
    );

    /// @notice The submitter cancelled the task before any solver claimed it.
    event TaskCancelled(TaskId indexed taskId);

    /// @notice Anyone moved a task on after the deadline of `status` passed; `penalised` (zero when
    ///         nobody stalled) lost `slashed` wei of stake.
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

    /// @notice Submits a task: escrows `bounty` and accrues the protocol fee to the jackpot.
    /// @dev `msg.value` must be `bounty + amounts(bounty).protocolFee`. An exact task is Open at once;
    ///      a tolerant one waits for a profile. Reverts with `BountyOutOfRange`, `WrongValue`,
    ///      `InvalidCid`, `EmptyCommitment` or `TrainingWindowOutOfRange`.
    /// @param specCid The IPFS CID of the task spec (emitted, not stored).
    /// @param specHash The hash of the spec document, folded into the task record.
    /// @param bounty The solver's pay, in wei.
    /// @param mode Exact (τ = 0, no profiling) or tolerant (τ from a profile).
    /// @param trainingWindow Seconds the solver has between its claim and its commit.
    /// @return taskId The new task's id.
    function submit(string calldata specCid, Hash specHash, uint256 bounty, Mode mode, Duration trainingWindow)
        external
        payable
        returns (TaskId taskId);

    /// @notice Cancels a task nobody has claimed; the submitter is refunded (less the profile fee, if profiled).
    /// @dev Only the submitter, in Submitted or Open, before the state's deadline.
    /// @param taskId The task.
    function cancel(TaskId taskId) external;

    /// @notice Posts the profile of a tolerant task: the threshold τ and the profile artifact.
    /// @dev `msg.value` must be the profiler stake. Submitted only, before its deadline. Reverts with
    ///      `InvalidThreshold` unless τ is finite and non-negative.
    /// @param taskId The task.
    /// @param threshold τ, the largest relative distance that passes, as binary32 bits.
    /// @param profileCid The CID of the profile artifact (emitted, not stored).
    function profile(TaskId taskId, Binary32 threshold, string calldata profileCid) external payable;

    /// @notice Claims an open task for training; `msg.value` must be the solver stake.
    /// @param taskId The task.
    function claim(TaskId taskId) external payable;

    /// @notice Commits the proof of learning: its CID, the Merkle root over the checkpoint state roots
    ///         and the number of segments. Fixes the block whose hash becomes the randomness.
    /// @dev Only the solver, in Training, before the deadline.
    /// @param taskId The task.
    /// @param proofCid The CID of the proof manifest (emitted, not stored).
    /// @param checkpointRoot The Merkle root over the checkpoint state roots.
    /// @param segments The number of segments S (checkpoints minus one).
    function commit(TaskId taskId, string calldata proofCid, Root checkpointRoot, uint32 segments) external;

    /// @notice Draws the task's randomness from the hash of its randomness block. Anyone may call it
    ///         once that block is sealed; `claimVerification` calls it too.
    /// @dev If the block hash is out of reach (more than 256 blocks old) the randomness is re-anchored
    ///      to the current block instead, and a later call draws it.
    /// @param taskId The task.
    function drawRandomness(TaskId taskId) external;

    /// @notice Claims the verification of a committed proof; `msg.value` must be the verifier stake.
    /// @dev Committed only, before the deadline; not by the solver. Draws the randomness if possible.
    /// @param taskId The task.
    /// @param secretHash The hash of the verifier's forced-error secret.
    function claimVerification(TaskId taskId, Hash secretHash) external payable;

    /// @notice Reports the verification: one binary32 distance per sampled segment, in the order the
    ///         randomness selects them, and the root over the replay trace roots. The chain derives the
    ///         verdict (pass iff every distance ≤ τ) and opens the challenge window.
    /// @dev Only the verifier, in Verifying, before the deadline, after the randomness is drawn.
    /// @param taskId The task.
    /// @param distances One distance per sampled segment, as binary32 bits with the sign bit clear.
    /// @param traceRootsRoot The Merkle root over the replay trace roots of the sampled segments.
    function reportVerification(TaskId taskId, Binary32[] calldata distances, Root traceRootsRoot) external;

    /// @notice Settles a task whose challenge window is over, by its verdict. Anyone may call it.
    /// @param taskId The task.
    function settle(TaskId taskId) external;

    /// @notice Moves on a task whose current deadline has passed and slashes whoever stalled.
    ///         Anyone may call it. Submitted/Open: expired, refunded. Training: the solver is slashed.
    ///         Committed: no verifier came, all refunded. Verifying: the verifier is slashed and the
    ///         proof waits for another verifier.
    /// @param taskId The task.
    function timeout(TaskId taskId) external;

    /// @notice Sends the caller everything the given settled tasks owe it, in one transfer. A task whose
    ///         challenge window is over is settled first, as `settle` would.
    /// @dev Tasks that owe the caller nothing are skipped; reverts with `NothingToWithdraw` if all are.
    /// @param taskIds The tasks; repeated ids are paid once.
    /// @return amount The wei sent.
    function withdraw(TaskId[] calldata taskIds) external returns (uint256 amount);

    /// @notice Moves the accrued protocol fees and slashed shares to the jackpot contract. Anyone may call it.
    function sweepJackpot() external;

    /// @notice The stored state of a task (see `Task` in Types.sol).
    function task(TaskId taskId) external view returns (Task memory);

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

    /// @notice How many distances a report on this task must carry: min(segmentsToSample, segments).
    function sampleCount(TaskId taskId) external view returns (uint256);

    /// @notice The id the next submission will get.
    function nextTaskId() external view returns (TaskId);

    /// @notice Jackpot money (protocol fees, slashed shares) held here until the next sweep, in wei.
    function jackpotAccrued() external view returns (uint256);

    /// @notice The jackpot contract that sweeps go to.
    function jackpot() external view returns (address);
}
