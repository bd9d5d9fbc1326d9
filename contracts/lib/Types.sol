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
/// @dev `Disputed` is reserved; a task with open challenges stays in `ChallengeWindow` and counts them
///      in `Task.disputes` (nothing they can change is paid out while it is non-zero).
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
    Unverified,
    SeedWithheld
}

/// @notice The verdict of a verification report: pass iff every reported distance is at most τ.
enum Verdict {
    None,
    Pass,
    Fail
}

/// @notice What a submitter fixes about its task: the spec, the program a replay must follow, the
///         money, and the verification terms the chain enforces.
struct Terms {
    /// sha256 of the spec's canonical bytes (the spec itself is at the CID given with it).
    Hash specHash;
    /// The root of the task's program: what a replay must follow, op by op (docs/contracts.md).
    Root programRoot;
    /// The solver's pay, in wei.
    uint256 bounty;
    /// Exact or tolerant.
    Mode mode;
    /// Seconds the solver has between its claim and its commit.
    Duration trainingWindow;
    /// S: the number of segments a proof of this task has (steps / checkpoint interval).
    uint32 segments;
    /// s: segments the randomness draws besides the first and the last, which are always replayed.
    uint16 sampledSegments;
    /// The largest τ the submitter accepts from a profile (tolerant tasks; 0 for exact ones).
    Binary32 thresholdBound;
}

/// @notice A verifier's report: one distance per segment of the task's sample, in increasing segment
///         order, then the segments it replayed besides the sample (screening) with their distances.
struct Report {
    /// One distance per sampled segment (`sampleCount`), in increasing segment order.
    Binary32[] distances;
    /// Further segments the verifier replayed, strictly increasing, each below S.
    uint32[] extraSegments;
    /// One distance per extra segment.
    Binary32[] extraDistances;
    /// The root of the replay trace of each segment reported: the sample's, then the extra segments'.
    Root[] traceRoots;
    /// keccak256(abi.encode(secret, keccak256(abi.encode(trueTraceRoots)))): the verifier's true
    /// trace roots, sealed with its forced-error secret and opened by `revealVerification`.
    Hash sealedTraceRoots;
}

/// @notice The deployment parameters of a task pool; fixed at deployment, readable with `parameters()`.
/// @dev Fractions are in basis points (1 bps = 0.01 %); stakes are fractions of the bounty and may exceed 100 %.
struct Params {
    /// Fee on top of the bounty, paid at submission, that feeds the jackpot.
    uint16 protocolFeeBps;
    /// Part of the bounty paid to the verifier that reports, whatever its verdict.
    uint16 verificationFeeBps;
    /// Part of the bounty paid to the profiler of a tolerant task once a solver has accepted its τ.
    uint16 profileFeeBps;
    /// Part of the bounty a submitter pays the profiler whose profile it rejects (with `rejectProfile`).
    uint16 profileRejectionFeeBps;
    /// Stake a solver locks when it claims a task.
    uint32 solverStakeBps;
    /// Stake a verifier locks when it claims a verification.
    uint32 verifierStakeBps;
    /// Stake a profiler locks when it posts a profile.
    uint32 profilerStakeBps;
    /// Share of a slashed solver stake paid back to the submitter; the rest goes to the jackpot.
    uint16 slashToSubmitterBps;
    /// Time a submitted tolerant task waits for a profile.
    Duration profileWindow;
    /// Time the submitter has to reject a profile; solvers may claim once it has passed, or earlier
    /// once the submitter accepts the profile.
    Duration profileReviewWindow;
    /// Time an open task waits for a solver.
    Duration claimWindow;
    /// Longest training window a submitter may grant.
    Duration maxTrainingWindow;
    /// Time a committed proof waits for a verifier.
    Duration verifierClaimWindow;
    /// Time the solver has to reveal its seed once a verifier has claimed.
    Duration seedRevealWindow;
    /// Time a verifier has to report once the randomness is fixed.
    Duration verifyWindow;
    /// Time a reported verdict stays open to challenge before it can be settled.
    Duration challengeWindow;
    /// Time a verifier that may have been forced to err has, after the challenge window, to reveal.
    Duration revealWindow;
    /// Smallest number of random segments a task may sample (besides the first and the last).
    uint16 minSampledSegments;
    /// Verification claims a task accepts; a proof whose last verifier also stalls is settled unverified.
    uint8 maxVerificationRounds;
    /// Probability, in parts per million, that a verifier is forced to post a wrong result.
    uint32 forcedErrorPpm;
    /// The forced-error tax: part of the bounty the verifier of every report that may be forced (the
    /// first verification claim of a task, also when its seed came too late for it to be forced) pays
    /// to the jackpot out of its payout at settlement; it funds the forced-error awards
    /// (docs/economics.md). At most `verificationFeeBps`; not charged when `forcedErrorPpm` is zero.
    uint16 forcedErrorTaxBps;
    /// Largest τ any tolerant task may accept (a finite, non-negative binary32).
    Binary32 maxThreshold;
    /// Smallest bounty the pool accepts, in wei.
    uint256 minBounty;
}

/// @notice Everything the pool stores for one task, packed in five storage slots.
/// @dev Values the contract's own checks do not need (CIDs, roots, the randomness, the seed and secret
///      hashes) are emitted in events and folded into `record` instead of being stored; the calls that
///      need one of them take the events' data and check it against the record.
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
    /// `Flag` bits.
    uint8 flags;
    /// Verification claims so far.
    uint8 rounds;
    /// s, the task's random segments besides the first and the last.
    uint16 sampledSegments;
    /// Disputes open against the task (the arbitration game).
    uint8 disputes;
    // slot 2: verification
    address verifier;
    Binary32 threshold;
    uint32 segments;
    Duration trainingWindow;
    // slot 3: written for tolerant tasks only
    address profiler;
    Binary32 thresholdBound;
    /// Until when the submitter may reject the current profile (claims wait for it); zero once it
    /// accepted it, and while no profile is posted.
    Timestamp reviewDeadline;
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
    uint256 profileRejectionFee;
    /// What the verifier of a report that may be forced pays the jackpot at settlement (zero when
    /// the pool forces no errors).
    uint256 forcedErrorTax;
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

/// @notice Bits of `Task.flags`.
library Flag {
    /// The solver revealed its seed: the randomness is fixed for every later verification.
    uint8 internal constant RANDOMNESS = 1;
    /// The current verifier claimed before the randomness existed and the seed came while its claim's
    /// block hash was known, so it may be forced to err: its report is settled only once it reveals its
    /// secret (or forfeits).
    uint8 internal constant FORCEABLE = 2;
    /// The verifier did not reveal its secret in time, or was forced and did not err: its fee and
    /// stake go to the jackpot.
    uint8 internal constant FORFEITED = 4;
    /// The current report lost a challenge (a game or a one-shot claim): once no challenge is open
    /// (and, for a report that may be forced, once its verifier revealed), its verifier is slashed to
    /// the first winner and the task is verified again with the same randomness.
    uint8 internal constant DEFEATED = 8;
    /// The solver lost a challenge on its proof: the task fails, whatever the report said.
    uint8 internal constant PROOF_FAILED = 16;
    /// The verifier was slashed and removed: no verifier is paid, its fee stays with the bounty.
    uint8 internal constant VOID = 32;
    /// The first winner against the solver's proof was credited the jackpot's part of the solver's
    /// slashed stake.
    uint8 internal constant SLASH_AWARDED = 64;
    /// The verifier's stake left the task before settlement (it was credited back when a published
    /// state voided its fault report): settlement pays it no stake, and a defeat slashes none.
    uint8 internal constant STAKE_TAKEN = 128;
}

// ---------------------------------------------------------------------------------------------
// Challenges (docs/contracts.md, "Challenges")
// ---------------------------------------------------------------------------------------------

/// @notice Identifies a challenge the pool opened; ids start at 1.
type ChallengeId is uint64;

/// @notice What a challenge disputes.
/// @dev `Report`: the trace root a verifier reported for one segment of its report (the defender is
///      the verifier). `Proof`: the solver's proof on one segment, sampled or not (the defender is the
///      solver, with the trace root it answers with).
enum Claim {
    None,
    Report,
    Proof
}

/// @notice Where a challenge stands.
/// @dev `Answering`: a proof challenge waits for the solver's trace root (until its deadline);
///      `Playing`: its game runs; `Upheld`: the claim lost (the challenger won, or both lost, or the
///      solver did not answer); `Rejected`: the defender won.
enum ChallengeState {
    None,
    Answering,
    Playing,
    Upheld,
    Rejected
}

/// @notice Everything the pool keeps about one challenge.
struct Challenge {
    TaskId taskId;
    /// The pinpoint game the challenge opened (zero while a proof challenge waits for its answer).
    GameId game;
    Claim claim;
    ChallengeState state;
    /// The segment the game is played on.
    uint32 segment;
    /// For a `Report` challenge, the position of the disputed root in the report's trace roots.
    uint32 position;
    /// The end of the solver's answer window (`Proof` challenges).
    Timestamp deadline;
    address challenger;
    /// The trace root the challenger stands behind.
    Root challengerTrace;
    /// For an answered `Proof` challenge: the solver's trace root and the distance it said that
    /// trace ends with (zero before the answer and for `Report` challenges).
    Root defenderTrace;
    Binary32 distance;
}

/// @notice A one-shot proof of what a trace root ends with (`disproveReport`, `disproveAnswer`).
/// @dev Tolerant tasks: `node` is the distance computation's root (leaf `stepCount` of the trace
///      tree), `record` its last op record (leaf `distanceOps - 1` of that tree; its last 32 bytes
///      are its output root), `header` and `leaf` that output's shape header (one element) and only
///      leaf: its first four bytes, little-endian, are the traced distance. Exact tasks (the
///      verdict is the equality of the replayed end state and the claimed one): `node` is the
///      segment's last step root (leaf `stepCount - 1`), `record` that step's STATE record (leaf
///      `stepOps - 1`, `0x0040000000 ‖ end state root`), `claimedState` checkpoint `segment + 1`
///      with `claimedProof` in the committed checkpoint tree. Proofs list siblings lowest first.
struct DistanceProof {
    bytes programHeader;
    bytes32 node;
    bytes32[] nodeProof;
    bytes record;
    bytes32[] recordProof;
    bytes header;
    bytes leaf;
    Root claimedState;
    bytes32[] claimedProof;
}

/// @notice One folded event of a task, as logged: its topic0, its party (topic 2) and its data.
/// @dev A task's folded events in log order, from its `TaskSubmitted`, rebuild its record; calls that
///      need committed data the pool does not store (the program root, the checkpoint root, the
///      randomness, the report's trace roots) take them as a `Folded[]` history.
struct Folded {
    bytes32 topic0;
    address party;
    bytes data;
}

/// @notice What the game needs besides the task's committed roots to open a game over a segment.
struct Opening {
    /// The task's program header (its sha256 is the program root recorded at submit).
    bytes programHeader;
    /// The state root of checkpoint `segment` and its Merkle proof in the committed checkpoint tree.
    Root startState;
    bytes32[] startProof;
    /// The state root of checkpoint `segment + 1` and its proof.
    Root claimedState;
    bytes32[] claimedProof;
}

/// @notice One tensor of a published state (`publishState`): its shape header (docs/commitments.md:
///         `u64be numel ‖ u32be ndim ‖ ndim × u64be dim`) and its values, binary32 little-endian,
///         row-major, exactly `4 · numel` bytes (the pool pads the last leaf with zero bytes).
struct StateTensor {
    bytes header;
    bytes data;
}

// ---------------------------------------------------------------------------------------------
// The pinpoint game (PROTOCOL.md §5, docs/dispute.md)
// ---------------------------------------------------------------------------------------------

/// @notice Identifies a game of the pinpoint game contract; ids start at 1.
type GameId is uint64;

/// @notice Where a game stands: a bisection level, a reveal, a proof it waits for, or its end.
/// @dev `Steps`, `Ops` and `Element` are descents of Merkle trees (trace, step, output tensor or
///      state); `Record`, `Leaf` and `Terms` are rounds in which both parties reveal or post;
///      `Program`, `Input`, `Tensor` and `OneStep` wait for one proof that ends the game.
enum Phase {
    None,
    Steps,
    Ops,
    Record,
    Program,
    Input,
    Tensor,
    Element,
    Leaf,
    Terms,
    OneStep,
    Resolved
}

/// @notice The parties of a game: the defender stands behind the disputed claim.
enum Party {
    Defender,
    Challenger
}

/// @notice How a game ended.
enum Ruling {
    None,
    DefenderWins,
    ChallengerWins,
    BothLose
}

/// @notice What decided a game.
/// @dev `Clock`: a party ran out of time; `Padding`: a leaf past the end of a tree was not the
///      zero leaf; `Program`: a record's op code, attributes or output shape is not the program's;
///      `Source`: a record's input (or a state's tensor) is not where the program says it comes
///      from; `OneStep`: the chain computed the disputed element or partial result.
enum Reason {
    None,
    Clock,
    Padding,
    Program,
    Source,
    OneStep
}

/// @notice Where a tensor an op reads comes from, as the program says (docs/dispute.md, "Program").
/// @dev `Op`: the output of an earlier op of the same step; `State`: a tensor of the state the
///      step starts from (for the distance computation: the replayed end state); `Dataset`: a
///      tensor of the task's dataset; `Batch`: a batch index tensor of the step; `Start` and
///      `Claimed`: tensors of the segment's start state and of the claimed end state (the
///      distance computation's inputs).
enum SourceKind {
    Op,
    State,
    Dataset,
    Batch,
    Start,
    Claimed
}
