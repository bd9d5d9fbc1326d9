// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPoolChallenges} from "../interfaces/ITaskPool.sol";
import {IJackpot} from "../interfaces/IJackpot.sol";
import {IPinpointGame, GameSpec} from "../interfaces/IPinpointGame.sol";
import {TaskPoolBase} from "./TaskPoolBase.sol";
import {Sample} from "../lib/Sample.sol";
import {
    TaskId,
    Root,
    Randomness,
    Record,
    Binary32,
    Timestamp,
    Status,
    Params,
    Task,
    Flag,
    ChallengeId,
    Claim,
    ChallengeState,
    Challenge,
    Folded,
    Opening,
    GameId,
    Ruling
} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title TaskPoolChallenges: anyone disputes a report or a proof in a pinpoint game the pool opens
/// @notice Runs only by delegatecall from the settlement half (itself run by the pool), on the pool's
///         storage: everyone calls these at the pool's address (docs/contracts.md, "Challenges").
///         Called at its own address it reads its own, empty storage and holds no money.
contract TaskPoolChallenges is TaskPoolBase, ITaskPoolChallenges {
    uint32 internal constant BINARY32_SIGN = 0x80000000;

    /// @dev What a challenge reads from a task's history: the committed roots, the randomness, and where
    ///      the current report and its trace roots are (`rootsWord`: the word of `roots`' data holding
    ///      the roots array's offset).
    struct Committed {
        Root program;
        Root checkpoints;
        Randomness randomness;
        uint256 report;
        uint256 roots;
        uint256 rootsWord;
    }

    /// @param params The deployment parameters, the pool's own.
    /// @param jackpot_ The pool's jackpot.
    /// @param game_ The pinpoint game challenges are played in.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_) TaskPoolBase(params, jackpot_, game_) {}

    /// @inheritdoc ITaskPoolChallenges
    function challengeReport(
        TaskId taskId,
        uint32 position,
        Root challengerTrace,
        Folded[] calldata history,
        Opening calldata opening
    ) external payable nonReentrant returns (ChallengeId challengeId) {
        Task storage t = _inTime(taskId, Status.ChallengeWindow);
        uint256 bond = _bond();
        if (msg.value != bond) revert Errors.WrongValue(bond, msg.value);
        if (Root.unwrap(challengerTrace) == 0) revert Errors.EmptyCommitment();
        Committed memory c = _committed(t, taskId, history);
        (uint32 segment, Root defended) = _reported(t, c, history, position);
        GameId gameId = _open(c, segment, opening, defended, challengerTrace, t.verifier, msg.sender, bond);
        challengeId = _store(taskId, gameId, Claim.Report, ChallengeState.Playing, segment, position, challengerTrace);
        _opened(t, taskId);
        emit ChallengeOpened(
            taskId,
            challengeId,
            msg.sender,
            Claim.Report,
            segment,
            position,
            defended,
            challengerTrace,
            gameId,
            Timestamp.wrap(0)
        );
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeProof(TaskId taskId, uint32 segment, Root challengerTrace)
        external
        payable
        nonReentrant
        returns (ChallengeId challengeId)
    {
        Task storage t = _inTime(taskId, Status.ChallengeWindow);
        if (msg.sender == t.solver) revert Errors.NotAuthorized(taskId, msg.sender);
        uint256 bond = _bond();
        if (msg.value != bond) revert Errors.WrongValue(bond, msg.value);
        if (Root.unwrap(challengerTrace) == 0) revert Errors.EmptyCommitment();
        if (segment >= t.segments) revert Errors.InvalidPosition(segment, t.segments);
        Timestamp deadline = _after(_verifyWindow);
        challengeId =
            _store(taskId, GameId.wrap(0), Claim.Proof, ChallengeState.Answering, segment, 0, challengerTrace);
        _challenges[challengeId].deadline = deadline;
        _deposits += bond;
        _opened(t, taskId);
        emit ChallengeOpened(
            taskId,
            challengeId,
            msg.sender,
            Claim.Proof,
            segment,
            0,
            Root.wrap(0),
            challengerTrace,
            GameId.wrap(0),
            deadline
        );
    }

    /// @inheritdoc ITaskPoolChallenges
    function answerChallenge(
        ChallengeId challengeId,
        Root solverTrace,
        Binary32 distance,
        Folded[] calldata history,
        Opening calldata opening
    ) external nonReentrant returns (GameId gameId) {
        Challenge storage c = _challenge(challengeId);
        if (c.state != ChallengeState.Answering) revert Errors.WrongChallengeState(challengeId, c.state);
        TaskId taskId = c.taskId;
        if (block.timestamp > Timestamp.unwrap(c.deadline)) revert Errors.DeadlinePassed(taskId, c.deadline);
        Task storage t = _tasks[taskId];
        if (msg.sender != t.solver) revert Errors.NotAuthorized(taskId, msg.sender);
        uint32 d = Binary32.unwrap(distance);
        if (d & BINARY32_SIGN != 0 || d > Binary32.unwrap(t.threshold)) {
            revert Errors.DistanceAboveThreshold(distance, t.threshold);
        }
        if (Root.unwrap(solverTrace) == 0) revert Errors.EmptyCommitment();
        Committed memory h = _committed(t, taskId, history);
        uint256 bond = _bond();
        _deposits -= bond;
        gameId = _open(h, c.segment, opening, solverTrace, c.challengerTrace, msg.sender, c.challenger, bond);
        c.game = gameId;
        c.state = ChallengeState.Playing;
        emit ChallengeAnswered(taskId, challengeId, msg.sender, solverTrace, distance, gameId);
    }

    /// @inheritdoc ITaskPoolChallenges
    function resolve(ChallengeId challengeId) external nonReentrant {
        Challenge storage c = _challenge(challengeId);
        TaskId taskId = c.taskId;
        Ruling ruling = Ruling.None;
        bool upheld;
        if (c.state == ChallengeState.Answering) {
            // The solver did not stand behind its proof: it fails; the deposit goes back.
            if (block.timestamp <= Timestamp.unwrap(c.deadline)) {
                revert Errors.DeadlineNotReached(taskId, c.deadline);
            }
            uint256 bond = _bond();
            _deposits -= bond;
            _credit(c.challenger, bond);
            upheld = true;
        } else if (c.state == ChallengeState.Playing) {
            ruling = _game.game(c.game).ruling;
            if (ruling == Ruling.None) revert Errors.GameNotResolved(c.game);
            upheld = ruling != Ruling.DefenderWins;
        } else {
            revert Errors.WrongChallengeState(challengeId, c.state);
        }
        ChallengeState state = upheld ? ChallengeState.Upheld : ChallengeState.Rejected;
        c.state = state;
        Task storage t = _tasks[taskId];
        if (upheld) {
            // Both lost: the claim lost too, but nobody won what the loser forfeits.
            address winner = ruling == Ruling.BothLose ? address(0) : c.challenger;
            if (c.claim == Claim.Report) {
                t.flags |= Flag.DEFEATED;
                _catches[taskId].push(Catch(winner, c.position));
            } else {
                t.flags |= Flag.PROOF_FAILED;
                if (winner != address(0) && _proofWinner[taskId] == address(0)) _proofWinner[taskId] = winner;
            }
        }
        emit ChallengeResolved(taskId, challengeId, c.challenger, c.claim, state, ruling);
        uint256 open = _openChallenges[taskId] - 1;
        _openChallenges[taskId] = open;
        if (open == 0) {
            t.disputes = 0;
            _afterDisputes(t, taskId);
        }
    }

    /// @inheritdoc ITaskPoolChallenges
    function withdrawCredit() external nonReentrant returns (uint256 amount) {
        amount = _credits[msg.sender];
        if (amount == 0) revert Errors.NothingToWithdraw(msg.sender);
        _credits[msg.sender] = 0;
        _creditTotal -= amount;
        emit CreditWithdrawn(msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @inheritdoc ITaskPoolChallenges
    function challenge(ChallengeId challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeBond() external view returns (uint256) {
        return _bond();
    }

    /// @inheritdoc ITaskPoolChallenges
    function credit(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @inheritdoc ITaskPoolChallenges
    function challengeFunds() external view returns (uint256 credits, uint256 deposits) {
        return (_creditTotal, _deposits);
    }

    /// @inheritdoc ITaskPoolChallenges
    function game() external view returns (address) {
        return address(_game);
    }

    /// @inheritdoc ITaskPoolChallenges
    function nextChallengeId() external view returns (ChallengeId) {
        return ChallengeId.wrap(_lastChallengeId + 1);
    }

    // ------------------------------------------------------------------ internals

    function _bond() private view returns (uint256) {
        return _game.requiredBond();
    }

    function _challenge(ChallengeId challengeId) private view returns (Challenge storage c) {
        c = _challenges[challengeId];
        if (c.claim == Claim.None) revert Errors.UnknownChallenge(challengeId);
    }

    function _store(
        TaskId taskId,
        GameId gameId,
        Claim claim,
        ChallengeState state,
        uint32 segment,
        uint32 position,
        Root challengerTrace
    ) private returns (ChallengeId challengeId) {
        uint64 id = _lastChallengeId + 1;
        _lastChallengeId = id;
        challengeId = ChallengeId.wrap(id);
        _challenges[challengeId] = Challenge({
            taskId: taskId,
            game: gameId,
            claim: claim,
            state: state,
            segment: segment,
            position: position,
            deadline: Timestamp.wrap(0),
            challenger: msg.sender,
            challengerTrace: challengerTrace
        });
    }

    /// @notice Counts an open challenge: settlement, withdrawals and the reveal wait for it.
    function _opened(Task storage t, TaskId taskId) private {
        _openChallenges[taskId] += 1;
        t.disputes = 1;
    }

    /// @notice Opens the game over `segment` on the task's committed program and checkpoint roots.
    function _open(
        Committed memory c,
        uint32 segment,
        Opening calldata opening,
        Root defenderTrace,
        Root challengerTrace,
        address defender,
        address challenger,
        uint256 bond
    ) private returns (GameId) {
        GameSpec memory spec = GameSpec({
            program: c.program,
            checkpoints: c.checkpoints,
            segment: segment,
            startState: opening.startState,
            claimedState: opening.claimedState,
            defenderTrace: defenderTrace,
            challengerTrace: challengerTrace
        });
        return _game.create{value: bond}(
            spec, opening.programHeader, opening.startProof, opening.claimedProof, defender, challenger
        );
    }

    /// @notice Reads a task's history: it must rebuild the task's record. The roots a report challenge
    ///         disputes are the last report's, or the true ones a forced verifier revealed after it.
    function _committed(Task storage t, TaskId taskId, Folded[] calldata history)
        private
        view
        returns (Committed memory c)
    {
        Record record = Record.wrap(0);
        bool reported = false;
        for (uint256 i = 0; i < history.length; ++i) {
            Folded calldata e = history[i];
            bytes32 topic = e.topic0;
            record = _chain(record, topic, taskId, e.party, e.data);
            // TaskSubmitted data: (mode, bounty, fee, specHash, programRoot, …); ProofCommitted: (cid
            // offset, checkpointRoot, …); RandomnessDrawn: (randomness, …); VerificationReported: (…, roots
            // offset in word 3, …); VerificationRevealed: (secret, forced, roots offset, deadline).
            if (topic == TaskSubmitted.selector) {
                c.program = Root.wrap(_word(e.data, 4));
            } else if (topic == ProofCommitted.selector) {
                c.checkpoints = Root.wrap(_word(e.data, 1));
            } else if (topic == RandomnessDrawn.selector) {
                c.randomness = Randomness.wrap(_word(e.data, 0));
            } else if (topic == VerificationReported.selector) {
                (c.report, c.roots, c.rootsWord, reported) = (i, i, 3, true);
            } else if (topic == VerificationRevealed.selector && _word(e.data, 1) != 0) {
                (c.roots, c.rootsWord) = (i, 2);
            }
        }
        if (Record.unwrap(record) != Record.unwrap(t.record)) revert Errors.RecordMismatch(taskId);
        if (!reported) revert Errors.NoReport(taskId);
    }

    /// @notice The segment at `position` of the current report and the trace root reported for it.
    function _reported(Task storage t, Committed memory c, Folded[] calldata history, uint32 position)
        private
        view
        returns (uint32 segment, Root root)
    {
        (uint256 count, bytes32 value) = _element(history[c.roots].data, c.rootsWord, position);
        if (position >= count) revert Errors.InvalidPosition(position, count);
        root = Root.wrap(value);
        uint256 sampled = _sampleCount(t.segments, t.sampledSegments);
        if (position < sampled) {
            segment = Sample.segmentAt(Randomness.unwrap(c.randomness), t.segments, t.sampledSegments, position);
        } else {
            // VerificationReported data: word 1 is the offset of the extra segments.
            (, bytes32 extra) = _element(history[c.report].data, 1, position - sampled);
            segment = uint32(uint256(extra));
        }
    }

    /// @notice The length of the array whose offset is word `index` of ABI-encoded data, and its element
    ///         `at` (zero when out of range).
    function _element(bytes calldata data, uint256 index, uint256 at)
        private
        pure
        returns (uint256 length, bytes32 value)
    {
        uint256 offset = uint256(_word(data, index));
        length = uint256(bytes32(data[offset:offset + 32]));
        if (at < length) value = bytes32(data[offset + 32 * (at + 1):offset + 32 * (at + 2)]);
    }
}
