// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TaskId, Status, Binary32, Timestamp, Duration, GameId, Phase, ChallengeId, ChallengeState} from "./Types.sol";

/// @title Errors
/// @notice Every custom error of the veritrain contracts, in one place; raised as `revert Errors.Name(...)`.
library Errors {
    /// @notice A deployment parameter is out of its documented range.
    error InvalidParameter(string name);

    /// @notice No task has this id.
    error UnknownTask(TaskId taskId);

    /// @notice The task is not in a state that allows this call.
    error WrongStatus(TaskId taskId, Status status);

    /// @notice Only a given party of the task may make this call.
    error NotAuthorized(TaskId taskId, address caller);

    /// @notice The solver of a task may not verify its own proof.
    error SolverCannotVerify(TaskId taskId, address solver);

    /// @notice The submitter of a task may not verify it.
    error SubmitterCannotVerify(TaskId taskId, address submitter);

    /// @notice The events' data given with the call do not rebuild the task's record.
    error RecordMismatch(TaskId taskId);

    /// @notice The revealed seed does not hash to the seed hash the solver committed.
    error WrongSeed(TaskId taskId);

    /// @notice The seed is revealed in the block of the verifier's claim, whose hash is not known yet; the
    ///         solver reveals in a later block. (More than 256 blocks after the claim, where the chain no
    ///         longer gives that hash, the seed is accepted and the claim is not forceable.)
    error ClaimBlockOutOfReach(TaskId taskId, uint256 claimBlock);

    /// @notice The revealed secret does not hash to the secret hash the verifier committed.
    error WrongSecret(TaskId taskId);

    /// @notice The revealed trace roots and secret do not open the report's seal.
    error WrongSeal(TaskId taskId);

    /// @notice The task's report does not wait for its verifier to reveal a secret.
    error NothingToReveal(TaskId taskId);

    /// @notice The deadline of the task's current state has passed; only its timeout remains.
    error DeadlinePassed(TaskId taskId, Timestamp deadline);

    /// @notice The deadline of the task's current state has not passed yet.
    error DeadlineNotReached(TaskId taskId, Timestamp deadline);

    /// @notice The ETH sent with the call is not the amount the call requires.
    error WrongValue(uint256 expected, uint256 received);

    /// @notice The bounty is below the pool's minimum or above what a task can hold.
    error BountyOutOfRange(uint256 bounty, uint256 min, uint256 max);

    /// @notice The training window is zero or longer than the pool allows.
    error TrainingWindowOutOfRange(Duration window, Duration max);

    /// @notice A CID must be 1 to 128 bytes long.
    error InvalidCid(uint256 length);

    /// @notice A hash or root that commits to something must not be zero.
    error EmptyCommitment();

    /// @notice A threshold must be a finite, non-negative binary32 value.
    error InvalidThreshold(Binary32 threshold);

    /// @notice A task must have between one and 2^32 - 2 segments.
    error InvalidSegmentCount(uint32 segments);

    /// @notice A task must sample at least the pool's minimum of random segments.
    error InvalidSampleCount(uint16 sampledSegments, uint16 min);

    /// @notice A tolerant task's threshold bound must be a finite binary32 in (0, max]; an exact task's is 0.
    error InvalidThresholdBound(Binary32 bound, Binary32 max);

    /// @notice A profile's τ exceeds the bound the task's submitter accepts.
    error ThresholdAboveBound(Binary32 threshold, Binary32 bound);

    /// @notice The task's profile is under its submitter's review until `reviewDeadline` (inclusive):
    ///         it may be claimed after that, or once the submitter accepts the profile.
    error ProfileUnderReview(TaskId taskId, Timestamp reviewDeadline);

    /// @notice The task has no profile under review (an exact task, no profile yet, or one accepted).
    error NoProfileUnderReview(TaskId taskId);

    /// @notice A verification report must carry one distance per sampled segment.
    error WrongDistanceCount(uint256 expected, uint256 received);

    /// @notice A verification report must carry one trace root per segment it reports.
    error WrongTraceRootCount(uint256 expected, uint256 received);

    /// @notice A distance must be a binary32 value with its sign bit clear.
    error InvalidDistance(uint256 index, Binary32 distance);

    /// @notice Extra segments must be strictly increasing, below the segment count, at most 64 of
    ///         them, and come with one distance each.
    error InvalidExtraSegments(uint256 index);

    /// @notice The randomness of the task has not been drawn yet.
    error RandomnessPending(TaskId taskId);

    /// @notice The caller has nothing to withdraw from these tasks.
    error NothingToWithdraw(address account);

    /// @notice There is nothing to move to the jackpot.
    error NothingToSweep();

    /// @notice Sending ETH to an account failed; the payout stays owed.
    error TransferFailed(address to, uint256 amount);


    /// @notice Only the arbitration contract may make this call.
    error NotArbitration(address caller);

    /// @notice The zero address is not allowed here.
    error ZeroAddress();

    /// @notice An award may not exceed a third of the jackpot's reserve.
    error AwardAboveCap(uint256 requested, uint256 cap);

    /// @notice An amount must be greater than zero.
    error ZeroAmount();

    /// @notice The op code is not one this contract evaluates.
    error UnknownOp(uint16 op);

    /// @notice Packed operands must be a whole number of groups of `width` bytes.
    error MalformedOperands(uint256 length, uint256 width);

    /// @notice A proof does not hold against the root it claims to open (`what` says which part).
    error InvalidProof(bytes32 root, string what);

    /// @notice The computation reads leaf `leaf` of an input, and its proof does not carry it.
    error MissingLeaf(uint256 leaf);

    /// @notice An op record is not `u16be(op) u8(n) attributes u16be(m) m·root`, or an attribute
    ///         tag is unknown.
    error MalformedRecord();

    /// @notice One proof per input of the record is needed (none for a `STATE` record).
    error WrongInputCount(uint256 expected, uint256 given);

    /// @notice The element index is not below the tensor's element count.
    error ElementOutOfRange(uint256 element);

    /// @notice A query's term range must satisfy termFrom <= termTo <= terms and span at most
    ///         the one step's bound; a proved claim must be about the element itself.
    error TermsOutOfRange(uint256 termFrom, uint256 termTo, uint256 terms);

    /// @notice Claim `claim` states a value its own proof does not hold.
    error ClaimMismatch(uint256 claim);

    /// @notice The op has no elements to compute (`STATE`: its output is a root).
    error NoElements(uint16 op);

    // --- the pinpoint game ---------------------------------------------------------------------

    /// @notice No game has this id.
    error UnknownGame(GameId gameId);

    /// @notice The game is not in a phase that allows this call.
    error WrongPhase(GameId gameId, Phase phase);

    /// @notice Only the defender or the challenger of the game may make this move.
    error NotAParty(GameId gameId, address caller);

    /// @notice The defender and the challenger of a game must be different accounts.
    error SameParty(address account);

    /// @notice The two parties of a game must stand behind different, non-zero trace roots.
    error InvalidTraces();

    /// @notice The party has already made its move of this round.
    error AlreadyMoved(GameId gameId, uint8 party);

    /// @notice The party's clock has run out; only `timeout` remains.
    error ClockExpired(GameId gameId, uint8 party);

    /// @notice No party that owes a move has run out of time.
    error ClockNotExpired(GameId gameId);

    /// @notice The bytes given as the program header do not hash to the game's program root.
    error ProgramMismatch(bytes32 expected, bytes32 given);

    /// @notice The program header, a program entry or a step's constants are malformed.
    error MalformedProgram();

    /// @notice A shape header is malformed (PROTOCOL.md §4).
    error MalformedHeader();

    /// @notice A checkpoint does not lie in the proof's checkpoint tree, or the segment is not one of it.
    error InvalidCheckpoint(uint256 index);

    /// @notice A Merkle proof does not lead to the root it must lead to.
    error InvalidMerkleProof();

    /// @notice A dissection must reveal this many nodes.
    error WrongNodeCount(uint256 expected, uint256 given);

    /// @notice Revealed nodes, a record or a leaf do not hash to the party's commitment.
    error NotCommitted(uint8 party);

    /// @notice The opponent's move of this round must be given back with this one (or must not be).
    error OpponentMove(GameId gameId);

    /// @notice A revealed leaf has non-zero bytes past the tensor's last element.
    error NonZeroPadding();

    /// @notice The values given back as the opponent's posted partial results are not the posted ones.
    error WrongTerms();

    /// @notice The record given for the one step is not the disputed op's.
    error NotTheDisputedOp();

    /// @notice The proof shows nothing against either party.
    error NothingProven();

    /// @notice This code runs only as part of the game contract (by delegatecall).
    error NotDelegated();

    /// @notice A source does not apply where it is named (an op that is not earlier, a batch tensor
    ///         of the distance computation).
    error InvalidSource(uint8 kind, uint256 index);

    // ------------------------------------------------------------------ the pool's challenges

    /// @notice No challenge has this id.
    error UnknownChallenge(ChallengeId challengeId);

    /// @notice The challenge is not in a state that allows this call.
    error WrongChallengeState(ChallengeId challengeId, ChallengeState state);

    /// @notice The task's history holds no report to challenge.
    error NoReport(TaskId taskId);

    /// @notice A report position (or a segment) out of range: `count` is how many there are.
    error InvalidPosition(uint256 position, uint256 count);

    /// @notice The solver's answer states a distance above the task's τ.
    error DistanceAboveThreshold(Binary32 distance, Binary32 threshold);

    /// @notice The task has open challenges; this call waits until they have ended.
    error ChallengesOpen(TaskId taskId);

    /// @notice The challenge's game has not ended yet.
    error GameNotResolved(GameId gameId);

    /// @notice The current report rests on a fault record (`reportFault`): it names no trace to play a
    ///         game on; whoever disputes it publishes the segment's start state (`publishState`).
    error FaultReport(TaskId taskId);

    /// @notice The current report is not a fault report (nothing to publish against).
    error NotFaultReport(TaskId taskId);

    /// @notice The current fault report was already voided by a published state.
    error AlreadyVoided(TaskId taskId);

    /// @notice A published state is empty, or tensor `index`'s data is not `4 · numel` bytes.
    error InvalidState(uint256 index);
}
