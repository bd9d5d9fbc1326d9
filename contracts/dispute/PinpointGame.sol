// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {
    IPinpointGame,
    GameSpec,
    GameParams,
    GameView,
    RecordClaim,
    EntryProof,
    ConstantsProof,
    SourceProof,
    ChunkProof,
    ClaimRecord
} from "../interfaces/IPinpointGame.sol";
import {Binary32, Duration, GameId, Phase, Party, Reason, Root, Ruling, Timestamp} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {PinpointGameBase, Game} from "./PinpointGameBase.sol";
import {PinpointEndgame} from "./PinpointEndgame.sol";
import {OneStepTensorProof} from "./OneStepCall.sol";
import {Dissection} from "./Dissection.sol";
import {ProgramFormat, ProgramFacts, RecordLayout, EntryLayout} from "./ProgramFormat.sol";
import {ProgramChecks} from "./ProgramChecks.sol";

/// @title PinpointGame
/// @notice The pinpoint game of PROTOCOL.md §5, one contract for every game (docs/dispute.md).
///
///         A game disputes one segment of a task: both parties start from a state proved against the
///         task's checkpoint root and stand behind different trace roots. Level by level the chain
///         keeps the interval both agree on and the first place they differ:
///           1. `Steps`: a descent of the trace tree (the segment's step roots, then the distance
///              computation's root) to the first step whose records differ;
///           2. `Ops`: a descent of that step's tree of op records to the first record that differs;
///              both reveal it (`Record`; the first revealer proves the op's program entry). A record that is not what the program prescribes loses
///              (`Program`), so does an input that is not where the program says it comes from
///              (`Input`); otherwise only the outputs differ:
///           3. `Element`: a descent of the output tensor's tree to a leaf, both reveal it (`Leaf`)
///              and the first differing value is the disputed element; for a long reduction the
///              running partial results are bisected (`Terms`); a STATE record's output is a state
///              root, whose tensor roots are descended instead and the differing one traced to its
///              source (`Tensor`);
///           4. `OneStep`: the one-step contract computes the element and the side that matches wins;
///              if neither matches, both lose.
///         Every descent reveals 2^dissectionBits evenly spaced nodes per move. Both parties move in
///         every round, in either order; the second to move gives back the first one's data, which
///         the chain checks against that party's commitment. Chess clocks run while a party owes a
///         move and are topped up to the extension when a turn starts. Every move carries a bond
///         priced at the most expensive answer; the winner takes both parties' bonds, the jackpot
///         takes them when both lose. Payouts are pulled.
///
///         The leaf, the partial results, the one step and the proofs against the program run in
///         `PinpointEndgame`, which this contract deploys and calls by delegatecall on its own
///         storage (one contract would exceed the code size limit).
contract PinpointGame is IPinpointGame, PinpointGameBase, ReentrancyGuardTransient {
    /// Placeholder written at creation into slots moves update later: a move then pays for a
    /// changed slot, never for a new one.
    uint64 private constant WARM = 1;

    /// @notice The code of the game's last levels, run by delegatecall.
    address public immutable endgame;

    /// @param params The deployment parameters (see `GameParams`).
    constructor(GameParams memory params) PinpointGameBase(params) {
        endgame = address(new PinpointEndgame(params));
    }

    // =========================================================================================
    // Creation
    // =========================================================================================

    /// @inheritdoc IPinpointGame
    function create(
        GameSpec calldata spec,
        bytes calldata programHeader,
        bytes32[] calldata startProof,
        bytes32[] calldata claimedProof,
        address defender,
        address challenger
    ) external payable returns (GameId gameId) {
        uint256 bond = _requiredBond();
        if (msg.value != bond) revert Errors.WrongValue(bond, msg.value);
        if (defender == address(0) || challenger == address(0)) revert Errors.ZeroAddress();
        if (defender == challenger) revert Errors.SameParty(defender);
        bytes32 defenderTrace = Root.unwrap(spec.defenderTrace);
        bytes32 challengerTrace = Root.unwrap(spec.challengerTrace);
        if (defenderTrace == 0 || challengerTrace == 0 || defenderTrace == challengerTrace) {
            revert Errors.InvalidTraces();
        }
        bytes32 given = sha256(programHeader);
        if (given != Root.unwrap(spec.program)) revert Errors.ProgramMismatch(Root.unwrap(spec.program), given);
        ProgramFacts memory f = ProgramFormat.facts(programHeader);
        uint256 firstStep = uint256(spec.segment) * f.interval;
        if (spec.segment >= f.segments || firstStep >= f.steps) revert Errors.InvalidCheckpoint(spec.segment);
        uint256 remaining = f.steps - firstStep;
        uint32 stepCount = uint32(remaining < f.interval ? remaining : f.interval);
        _checkCheckpoint(spec.checkpoints, spec.segment, spec.startState, startProof, f.segments);
        _checkCheckpoint(spec.checkpoints, spec.segment + 1, spec.claimedState, claimedProof, f.segments);

        gameId = GameId.wrap(nextId++);
        Game storage g = games[gameId];
        bytes32 claim = claimKey(msg.sender, spec.program, spec.checkpoints, spec.segment, spec.defenderTrace, defender);
        g.phase = Phase.Steps;
        g.height = uint8(Sha256Tree.depth(uint256(stepCount) + 1));
        g.defender = defender;
        g.firstStep = uint32(firstStep);
        g.stepCount = stepCount;
        g.challenger = challenger;
        g.stepOps = f.stepOps;
        g.distanceOps = f.distanceOps;
        g.creator = msg.sender;
        g.stateTensors = f.stateTensors;
        g.numel = uint32(WARM);
        g.value0 = Binary32.wrap(uint32(WARM));
        g.moves1 = 1;
        g.program = spec.program;
        g.startState = spec.startState;
        g.claimedState = spec.claimedState;
        g.traces[DEFENDER] = spec.defenderTrace;
        g.traces[CHALLENGER] = spec.challengerTrace;
        g.nodes[DEFENDER] = defenderTrace;
        g.nodes[CHALLENGER] = challengerTrace;
        g.agreed = bytes32(uint256(WARM));
        g.scratch = bytes32(uint256(WARM));
        g.claim = claim;
        g.left0 = clock;
        g.left1 = clock;
        claims[claim].open += 1;
        emit GameCreated(
            gameId, defender, challenger, msg.sender, claim, spec, programHeader, uint32(firstStep), stepCount, bond
        );
        emit LevelEntered(gameId, Phase.Steps, stepCount, g.height);
        _startRound(g);
    }

    function _checkCheckpoint(Root root, uint256 index, Root state, bytes32[] calldata proof, uint256 segments)
        private
        view
    {
        if (Root.unwrap(state) == 0) revert Errors.InvalidCheckpoint(index);
        uint256 levels = Sha256Tree.depth(segments + 1);
        if (proof.length != levels || Sha256Tree.climb(Root.unwrap(state), index, proof) != Root.unwrap(root)) {
            revert Errors.InvalidCheckpoint(index);
        }
    }

    // =========================================================================================
    // Descents: the trace's steps, a step's ops, an output's leaves or a state's tensors
    // =========================================================================================

    /// @inheritdoc IPinpointGame
    function dissect(GameId gameId, bytes32[] calldata nodes, bytes32[] calldata opponentNodes) external payable {
        Game storage g = _game(gameId);
        Phase phase = g.phase;
        if (phase != Phase.Steps && phase != Phase.Ops && phase != Phase.Element) {
            revert Errors.WrongPhase(gameId, phase);
        }
        uint256 p = _party(g, gameId);
        uint256 h = g.height < dissectionBits ? g.height : dissectionBits;
        uint256 width = uint256(1) << h;
        if (nodes.length != width) revert Errors.WrongNodeCount(width, nodes.length);
        if (Sha256Tree.subtreeRoot(nodes) != g.nodes[p]) revert Errors.NotCommitted(uint8(p));
        bool second = _move(g, gameId, p);
        emit Dissected(gameId, Party(p), g.round, phase, g.index, uint8(h), nodes);
        if (!second) {
            if (opponentNodes.length != 0) revert Errors.OpponentMove(gameId);
            return;
        }
        if (opponentNodes.length != width) revert Errors.OpponentMove(gameId);
        if (Sha256Tree.subtreeRoot(opponentNodes) != g.nodes[1 - p]) revert Errors.NotCommitted(uint8(1 - p));
        uint256 i;
        while (nodes[i] == opponentNodes[i]) ++i;
        (g.nodes[DEFENDER], g.nodes[CHALLENGER]) =
            p == DEFENDER ? (nodes[i], opponentNodes[i]) : (opponentNodes[i], nodes[i]);
        g.index = uint64((uint256(g.index) << h) | i);
        g.height -= uint8(h);
        emit Narrowed(gameId, phase, g.index, g.height);
        if (g.height == 0) _arrive(g, gameId);
        else _startRound(g);
    }

    /// The current nodes are leaves of their tree: enter the next level, or decide on padding.
    function _arrive(Game storage g, GameId gameId) private {
        Phase phase = g.phase;
        uint256 at = g.index;
        if (phase == Phase.Steps) {
            if (at > g.stepCount) return _padding(g, gameId);
            g.step = uint32(at);
            g.index = 0;
            uint256 height = Sha256Tree.depth(at < g.stepCount ? g.stepOps : g.distanceOps);
            g.height = uint8(height);
            if (height == 0) {
                g.phase = Phase.Ops;
                return _arrive(g, gameId);
            }
            return _enter(g, gameId, Phase.Ops, uint64(at));
        }
        if (phase == Phase.Ops) {
            if (at >= (g.step < g.stepCount ? g.stepOps : g.distanceOps)) return _padding(g, gameId);
            g.op = uint32(at);
            return _enter(g, gameId, Phase.Record, uint64(at));
        }
        if (g.stateTree) {
            if (at >= g.stateTensors) return _padding(g, gameId);
            g.element = uint64(at);
            return _enter(g, gameId, Phase.Tensor, uint64(at));
        }
        if (at >= Sha256Tree.leafCount(g.numel)) return _padding(g, gameId);
        _enter(g, gameId, Phase.Leaf, uint64(at));
    }

    /// A leaf past the end of its tree must be the zero leaf: whoever's is not loses.
    function _padding(Game storage g, GameId gameId) private {
        bool defenderBad = g.nodes[DEFENDER] != Sha256Tree.ZERO_LEAF;
        bool challengerBad = g.nodes[CHALLENGER] != Sha256Tree.ZERO_LEAF;
        _resolve(g, gameId, _loser(defenderBad, challengerBad), Reason.Padding);
    }

    // =========================================================================================
    // The disputed record
    // =========================================================================================

    /// @inheritdoc IPinpointGame
    function revealRecord(
        GameId gameId,
        RecordClaim calldata mine,
        RecordClaim calldata theirs,
        EntryProof calldata entry
    ) external payable {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Record);
        uint256 p = _party(g, gameId);
        RecordLayout memory lm = ProgramFormat.checkRecord(mine, g.nodes[p], p);
        bool second = _move(g, gameId, p);
        emit RecordRevealed(gameId, Party(p), g.round, mine.record, mine.header, mine.merkle);
        if (!second) {
            if (theirs.record.length != 0) revert Errors.OpponentMove(gameId);
            // The first revealer proves the op's program entry; the game keeps its digest (later
            // proofs show the entry without a Merkle proof), op code and reduction length.
            (EntryLayout memory e, bytes32 digest) = ProgramChecks.proveEntry(g, entry);
            if (e.terms > type(uint32).max) revert Errors.MalformedProgram();
            emit EntryProved(gameId, g.step, g.op, entry.entry);
            g.scratch = digest;
            g.opCode = e.op;
            g.terms = uint32(e.terms);
            return;
        }
        if (entry.entry.length != 0 || entry.proof.length != 0) revert Errors.OpponentMove(gameId);
        RecordLayout memory lt = ProgramFormat.checkRecord(theirs, g.nodes[1 - p], 1 - p);
        if (ProgramFormat.structure(mine, lm) != ProgramFormat.structure(theirs, lt)) {
            return _enter(g, gameId, Phase.Program, g.op);
        }
        bytes calldata mr = mine.record;
        bytes calldata inputs = mr[lm.prefixLength:mr.length - 32];
        if (keccak256(inputs) != keccak256(theirs.record[lt.prefixLength:theirs.record.length - 32])) {
            return _enter(g, gameId, Phase.Input, g.op);
        }
        // Same op, attributes, shape and inputs: only the outputs differ.
        if (lm.op != g.opCode) {
            // Both records agree with each other and not with the program.
            return _resolve(g, gameId, Ruling.BothLose, Reason.Program);
        }
        g.agreed = keccak256(mr[:mr.length - 32]);
        (g.nodes[DEFENDER], g.nodes[CHALLENGER]) =
            p == DEFENDER ? (mine.merkle, theirs.merkle) : (theirs.merkle, mine.merkle);
        g.index = 0;
        g.phase = Phase.Element;
        uint256 leaves;
        if (lm.op == ProgramFormat.STATE) {
            g.stateTree = true;
            leaves = g.stateTensors;
        } else {
            uint256 count = Sha256Tree.numel(mine.header);
            if (count > type(uint32).max) revert Errors.MalformedHeader();
            uint256 stretch = oneStepContract.maxTerms();
            if (stretch == 0) revert Errors.InvalidParameter("maxTerms");
            g.numel = uint32(count);
            g.stretch = uint32(stretch < type(uint32).max ? stretch : type(uint32).max);
            leaves = Sha256Tree.leafCount(count);
        }
        uint256 height = Sha256Tree.depth(leaves);
        g.height = uint8(height);
        if (height == 0) return _arrive(g, gameId);
        _enter(g, gameId, Phase.Element, uint64(leaves));
    }

    // =========================================================================================
    // The endgame (run by delegatecall)
    // =========================================================================================

    /// @inheritdoc IPinpointGame
    function revealLeaf(GameId, bytes calldata, ChunkProof calldata) external payable {
        _delegate();
    }

    /// @inheritdoc IPinpointGame
    function bisectTerms(GameId, Binary32[] calldata, Binary32[] calldata) external payable {
        _delegate();
    }

    /// @inheritdoc IPinpointGame
    function oneStep(GameId, bytes calldata, OneStepTensorProof[] calldata) external {
        _delegate();
    }

    /// @inheritdoc IPinpointGame
    function proveProgram(GameId, Party, RecordClaim calldata, EntryProof calldata, ConstantsProof calldata)
        external
    {
        _delegate();
    }

    /// @inheritdoc IPinpointGame
    function proveSource(GameId, SourceProof calldata) external {
        _delegate();
    }

    /// Runs this call's calldata in the endgame's code on this contract's storage, and returns or
    /// reverts as it does.
    function _delegate() private {
        address target = endgame;
        assembly ("memory-safe") {
            let at := mload(0x40)
            calldatacopy(at, 0, calldatasize())
            let ok := delegatecall(gas(), target, at, calldatasize(), 0, 0)
            returndatacopy(at, 0, returndatasize())
            if iszero(ok) { revert(at, returndatasize()) }
            return(at, returndatasize())
        }
    }

    // =========================================================================================
    // Clocks, money, transcripts
    // =========================================================================================

    /// @inheritdoc IPinpointGame
    function timeout(GameId gameId) external {
        Game storage g = _game(gameId);
        if (g.phase == Phase.Resolved) revert Errors.WrongPhase(gameId, g.phase);
        bool defenderOut = _expired(g, DEFENDER);
        bool challengerOut = _expired(g, CHALLENGER);
        if (!defenderOut && !challengerOut) revert Errors.ClockNotExpired(gameId);
        _resolve(g, gameId, _loser(defenderOut, challengerOut), Reason.Clock);
    }

    /// @inheritdoc IPinpointGame
    function withdraw(GameId[] calldata gameIds) external nonReentrant {
        uint256 total = 0;
        for (uint256 i; i < gameIds.length; ++i) {
            Game storage g = games[gameIds[i]];
            if (g.phase != Phase.Resolved || g.paid) continue;
            if (_winner(g) != msg.sender) continue;
            uint256 amount = _bonds(g);
            g.paid = true;
            total += amount;
            emit BondsWithdrawn(gameIds[i], msg.sender, amount);
        }
        if (total == 0) revert Errors.NothingToWithdraw(msg.sender);
        (bool ok,) = msg.sender.call{value: total}("");
        if (!ok) revert Errors.TransferFailed(msg.sender, total);
    }

    /// @inheritdoc IPinpointGame
    function sweepJackpot(GameId[] calldata gameIds) external nonReentrant {
        uint256 total = 0;
        for (uint256 i; i < gameIds.length; ++i) {
            Game storage g = games[gameIds[i]];
            if (g.phase != Phase.Resolved || g.paid || g.ruling != Ruling.BothLose) continue;
            uint256 amount = _bonds(g);
            g.paid = true;
            total += amount;
            emit BondsSwept(gameIds[i], amount);
        }
        if (total == 0) revert Errors.NothingToSweep();
        jackpot.fund{value: total}();
    }

    /// The winner of an ended game, or the zero address (both lost, or not ended).
    function _winner(Game storage g) private view returns (address) {
        if (g.ruling == Ruling.DefenderWins) return g.defender;
        if (g.ruling == Ruling.ChallengerWins) return g.challenger;
        return address(0);
    }

    /// @inheritdoc IPinpointGame
    function postTranscript(GameId gameId, string calldata cid) external {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Resolved);
        if (msg.sender != g.defender && msg.sender != g.challenger && msg.sender != g.creator) {
            revert Errors.NotAParty(gameId, msg.sender);
        }
        uint256 length = bytes(cid).length;
        if (length == 0 || length > 128) revert Errors.InvalidCid(length);
        emit TranscriptPosted(gameId, msg.sender, cid);
    }

    // =========================================================================================
    // Views
    // =========================================================================================

    /// @inheritdoc IPinpointGame
    function requiredBond() external view returns (uint256) {
        return _requiredBond();
    }

    /// @inheritdoc IPinpointGame
    function game(GameId gameId) external view returns (GameView memory v) {
        Game storage g = _game(gameId);
        v.phase = g.phase;
        v.ruling = g.ruling;
        v.reason = g.reason;
        v.height = g.height;
        v.moved = g.moved;
        v.round = g.round;
        v.paid = g.paid;
        v.defender = g.defender;
        v.challenger = g.challenger;
        v.creator = g.creator;
        v.firstStep = g.firstStep;
        v.stepCount = g.stepCount;
        v.stepOps = g.stepOps;
        v.distanceOps = g.distanceOps;
        v.stateTensors = g.stateTensors;
        v.step = g.step;
        v.op = g.op;
        v.opCode = g.opCode;
        v.stateTree = g.stateTree;
        v.index = g.index;
        v.numel = g.numel;
        v.element = g.element;
        v.terms = g.terms;
        v.stretch = g.stretch;
        v.lo = g.lo;
        v.hi = g.hi;
        v.accLo = g.accLo;
        v.values = [g.value0, g.value1];
        v.left = [g.left0, g.left1];
        v.since = [g.since0, g.since1];
        uint256 bond = _requiredBond();
        v.bonds = [g.moves0 * bond, g.moves1 * bond];
        v.program = g.program;
        v.startState = g.startState;
        v.claimedState = g.claimedState;
        v.traces = g.traces;
        v.nodes = g.nodes;
        v.claim = g.claim;
    }

    /// @inheritdoc IPinpointGame
    function termPoints(GameId gameId) external view returns (uint64[] memory points) {
        Game storage g = _game(gameId);
        if (g.phase != Phase.Terms) return points;
        uint256 count = Dissection.count(g.lo, g.hi, dissectionBits);
        points = new uint64[](count);
        for (uint256 k = 1; k <= count; ++k) {
            points[k - 1] = uint64(Dissection.point(g.lo, g.hi, count, k));
        }
    }

    /// @inheritdoc IPinpointGame
    function timeLeft(GameId gameId, Party party) external view returns (uint256) {
        Game storage g = _game(gameId);
        (uint256 left, uint256 since) = _clockOf(g, uint8(party));
        if (since == 0) return left;
        uint256 elapsed = block.timestamp - since;
        return elapsed >= left ? 0 : left - elapsed;
    }

    /// @inheritdoc IPinpointGame
    function claimRecord(bytes32 claim) external view returns (ClaimRecord memory) {
        return claims[claim];
    }

    /// @inheritdoc IPinpointGame
    function claimKey(address creator, Root program, Root checkpoints, uint32 segment, Root defenderTrace, address defender)
        public
        pure
        returns (bytes32)
    {
        return keccak256(abi.encode(creator, program, checkpoints, segment, defenderTrace, defender));
    }

    /// @inheritdoc IPinpointGame
    function payout(GameId gameId) external view returns (address to, uint256 amount, bool paid) {
        Game storage g = _game(gameId);
        if (g.phase == Phase.Resolved) {
            to = g.ruling == Ruling.BothLose ? address(jackpot) : _winner(g);
        }
        return (to, _bonds(g), g.paid);
    }

    /// @inheritdoc IPinpointGame
    function nextGameId() external view returns (uint64) {
        return nextId;
    }
}
