// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Identifies a task in the pool; ids start at 1 and increase by one per submission.
type TaskId is uint64;

/// @notice A 32-byte content hash the chain keeps instead of the content (a spec hash, a secret hash).
type Hash is bytes32;

/// @notice A Merkle root over commitments (PROTOCOL.md §4): checkpoint state roots, replay trace roots.
type Root is bytes32;

/// @notice The 32 random bytes that select which segments of a proof are verified.
type Randomness is bytes32;

/// @notice The hash chain over a task's commitment events (see docs/contracts.md, "Task record").
type Record is bytes32;

/// @notice The bit pattern of an IEEE-754 binary32 value (a threshold τ or a segment distance).
type Binary32 is uint32;

/// @notice A point in time, in seconds since the Unix epoch (block.timestamp).
type Timestamp is uint40;

/// @notice A length of time in seconds.
type Duration is uint32;

/// @notice Where a task stands in its lifecycle (PROTOCOL.md §1).
/// @dev `Disputed` is reserved for the arbitration game; no transition enters it yet.
enum Status {
    None,
    Submitted,
    Open,
    Training,
    Committed,
    Verifying,
    ChallengeWindow,
    Disputed,
    Settled
}

/// @notice How a task's result is judged: bit-exact replay (τ = 0, no profiling) or within a profiled τ.
enum Mode {
    Exact,
    Tolerant
}

/// @notice Why a task was settled; it fixes who receives what (docs/contracts.md, "Settlement").
/// @dev `Passed` and `Failed` are recorded when the verdict is reported and become final at settlement.
enum Outcome {
    None,
    Passed,
    Failed,
    Cancelled,
    Expired,
    SolverTimedOut,
    Unverified
}

/// @notice The verdict of a verification report: pass iff every sampled distance is at most τ.
enum Verdict {
    None,
    Pass,
    Fail
}

/// @notice The deployment parameters of a task pool; fixed at deployment, readable with `parameters()`.
/// @dev Fractions are in basis points (1 bps = 0.01 %); stakes are fractions of the bounty and may exceed 100 %.
struct Params {
    /// Fee on top of the bounty, paid at submission, that feeds the jackpot.
    uint16 protocolFeeBps;
    /// Part of the bounty paid to the verifier when the verdict is a pass.
    uint16 verificationFeeBps;
    /// Part of the bounty paid to the profiler of a tolerant task, whatever the outcome.
    uint16 profileFeeBps;
    /// Stake a solver locks when it claims a task.
    uint32 solverStakeBps;
    /// Stake a verifier locks when it claims a verification.
    uint32 verifierStakeBps;
    /// Stake a profiler locks when it posts a profile.
    uint32 profilerStakeBps;
    /// Share of a slashed solver stake paid to the verifier that reported the failing verdict.
    uint16 slashToVerifierBps;
    /// Share of a slashed solver stake paid back to the submitter.
    uint16 slashToSubmitterBps;
    /// Time a submitted tolerant task waits for a profile.
    Duration profileWindow;
    /// Time an open task waits for a solver.
    Duration claimWindow;
    /// Longest training window a submitter may grant.
    Duration maxTrainingWindow;
    /// Time a committed proof waits for a verifier.
    Duration verifierClaimWindow;
    /// Time a verifier has to report after its claim.
    Duration verifyWindow;
    /// Time a reported verdict stays open to challenge before it can be settled.
    Duration challengeWindow;
    /// Number of segments the randomness selects for verification (all of them when a proof has fewer).
    uint32 segmentsToSample;
    /// Probability, in parts per million, that a verifier is forced to post a wrong result.
    uint32 forcedErrorPpm;
    /// Smallest bounty the pool accepts, in wei.
    uint256 minBounty;
}

/// @notice Everything the pool stores for one task, packed in five storage slots.
/// @dev Values the contract's own checks do not need (CIDs, roots, the randomness, the secret hash)
///      are emitted in events and folded into `record` instead of being stored.
struct Task {
    // slot 0: who pays, how much, and which parties have withdrawn their payout
    address submitter;
    uint80 bounty;
    Mode mode;
    uint8 withdrawn;
    // slot 1: the lifecycle
    address solver;
    Status status;
    Outcome outcome;
    Timestamp deadline;
    /// Block whose hash becomes the task's randomness; zero once the randomness is drawn.
    uint40 randomnessBlock;
    // slot 2: verification
    address verifier;
    Binary32 threshold;
    uint32 segments;
    Duration trainingWindow;
    // slot 3: written for tolerant tasks only
    address profiler;
    // slot 4
    Record record;
}

/// @notice The amounts that follow from one bounty under the deployment's parameters, in wei.
struct Amounts {
    uint256 bounty;
    uint256 protocolFee;
    uint256 verificationFee;
    uint256 profileFee;
    uint256 solverStake;
    uint256 verifierStake;
    uint256 profilerStake;
}

/// @notice What a settled task pays to each party and to the jackpot, in wei.
struct Payouts {
    uint256 submitter;
    uint256 solver;
    uint256 verifier;
    uint256 profiler;
    uint256 jackpot;
}

/// @notice Bits of `Task.withdrawn`: which parties of a settled task have taken their payout.
library Role {
    uint8 internal constant SUBMITTER = 1;
    uint8 internal constant SOLVER = 2;
    uint8 internal constant VERIFIER = 4;
    uint8 internal constant PROFILER = 8;
}
