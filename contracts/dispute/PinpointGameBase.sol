// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IPinpointGameEvents, GameParams, ClaimRecord} from "../interfaces/IPinpointGame.sol";
import {IOneStepCompute} from "./OneStepCall.sol";
import {IJackpot} from "../interfaces/IJackpot.sol";
import {Binary32, Duration, GameId, Phase, Reason, Root, Ruling, Timestamp} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @notice Everything the game contract stores for one game. Moves touch slot 0 (the round) and,
///         depending on the level, slot 3 (the position), slot 4 (the disputed element) and the
///         parties' nodes; everything a move writes was written at creation, so no move pays for
///         a new slot.
struct Game {
    // slot 0: the round, the clocks, the bonded moves
    Phase phase;
    Ruling ruling;
    Reason reason;
    uint8 height;
    uint8 moved;
    bool stateTree;
    uint16 opCode;
    uint16 round;
    /// Whether the game's bonds have been paid out (after its end).
    bool paid;
    Duration left0;
    Timestamp since0;
    Duration left1;
    Timestamp since1;
    /// Bonded moves of each party (the challenger's count includes the creation's bond).
    uint8 moves0;
    uint8 moves1;
    // slot 1
    address defender;
    uint32 firstStep;
    uint32 stepCount;
    uint32 stepOps;
    // slot 2
    address challenger;
    uint32 distanceOps;
    uint32 stateTensors;
    // slot 3: where the game stands
    uint32 step;
    uint32 op;
    uint64 index;
    uint32 numel;
    /// Reduction terms per element of the disputed op (known once the first leaf is revealed).
    uint32 terms;
    /// The longest stretch of terms the one step computes for the op.
    uint32 stretch;
    Binary32 value1;
    // slot 4: the disputed element and its partial results
    uint64 element;
    uint64 lo;
    uint64 hi;
    Binary32 accLo;
    Binary32 value0;
    // slot 5
    address creator;
    // commitments
    Root program;
    Root startState;
    Root claimedState;
    Root[2] traces;
    bytes32[2] nodes;
    /// keccak of the disputed record without its output root (the op the one step computes).
    bytes32 agreed;
    /// Per level: the sha256 of the disputed op's program entry (from the first `Record` move to
    ///  the first `Leaf` move), the root of the keccak tree over the first revealed leaf's chunks
    ///  (`Leaf`), keccak of the partial results the first mover of a `Terms` round posted.
    bytes32 scratch;
    bytes32 claim;
}

/// @title PinpointGameBase
/// @notice The storage, parameters and bookkeeping (rounds, clocks, bonds, rulings) shared by the two
///         halves of the pinpoint game's code: `PinpointGame`, which holds the storage and the money,
///         and `PinpointEndgame`, which it runs by delegatecall (one contract would exceed the
///         24,576-byte code limit). Neither half declares storage of its own.
abstract contract PinpointGameBase is IPinpointGameEvents {
    uint256 internal constant DEFENDER = 0;
    uint256 internal constant CHALLENGER = 1;

    /// @notice The one-step contract that computes a disputed element.
    IOneStepCompute public immutable oneStepContract;
    /// @notice The jackpot that receives the bonds of games both parties lose.
    IJackpot public immutable jackpot;
    /// @notice Time on each party's chess clock at the start of a game, in seconds.
    Duration public immutable clock;
    /// @notice A party whose turn starts with less time gets this much, in seconds.
    Duration public immutable extension;
    /// @notice Wei per gas a bond is priced at.
    uint256 public immutable bondGasPrice;
    /// @notice Gas of the most expensive answer to a move.
    uint256 public immutable answerGas;
    /// @notice A dissection reveals 2^dissectionBits nodes.
    uint8 public immutable dissectionBits;

    // Written by `PinpointGame.create`; the endgame half, which slither analyses apart, only shares
    // the layout.
    // slither-disable-next-line constable-states
    uint64 internal nextId = 1;
    mapping(GameId => Game) internal games;
    mapping(bytes32 claim => ClaimRecord) internal claims;

    /// @param params The deployment parameters (see `GameParams`).
    constructor(GameParams memory params) {
        if (params.oneStep == address(0) || params.jackpot == address(0)) revert Errors.ZeroAddress();
        if (Duration.unwrap(params.extension) == 0) revert Errors.InvalidParameter("extension");
        if (Duration.unwrap(params.clock) < Duration.unwrap(params.extension)) {
            revert Errors.InvalidParameter("clock");
        }
        if (params.bondGasPrice == 0) revert Errors.InvalidParameter("bondGasPrice");
        if (params.answerGas == 0) revert Errors.InvalidParameter("answerGas");
        if (params.dissectionBits == 0 || params.dissectionBits > 5) revert Errors.InvalidParameter("dissectionBits");
        oneStepContract = IOneStepCompute(params.oneStep);
        jackpot = IJackpot(params.jackpot);
        clock = params.clock;
        extension = params.extension;
        bondGasPrice = params.bondGasPrice;
        answerGas = params.answerGas;
        dissectionBits = params.dissectionBits;
    }

    /// The bond every bonded move (and the creation) carries, in wei.
    function _requiredBond() internal view returns (uint256) {
        return bondGasPrice * answerGas;
    }

    function _game(GameId gameId) internal view returns (Game storage g) {
        g = games[gameId];
        if (g.phase == Phase.None) revert Errors.UnknownGame(gameId);
    }

    function _requirePhase(Game storage g, GameId gameId, Phase phase) internal view {
        if (g.phase != phase) revert Errors.WrongPhase(gameId, g.phase);
    }

    function _party(Game storage g, GameId gameId) internal view returns (uint256) {
        if (msg.sender == g.defender) return DEFENDER;
        if (msg.sender == g.challenger) return CHALLENGER;
        revert Errors.NotAParty(gameId, msg.sender);
    }

    /// Starts a round in which both parties owe a move; a clock below the extension is topped up.
    function _startRound(Game storage g) internal {
        Timestamp now_ = Timestamp.wrap(uint40(block.timestamp));
        Duration least = extension;
        g.moved = 0;
        g.round += 1;
        if (Duration.unwrap(g.left0) < Duration.unwrap(least)) g.left0 = least;
        if (Duration.unwrap(g.left1) < Duration.unwrap(least)) g.left1 = least;
        g.since0 = now_;
        g.since1 = now_;
    }

    /// Moves the game to a phase in which both parties owe a move (or a proof).
    function _enter(Game storage g, GameId gameId, Phase phase, uint64 at) internal {
        g.phase = phase;
        emit LevelEntered(gameId, phase, at, 0);
        _startRound(g);
    }

    /// Records party `p`'s move of this round: stops its clock, takes its bond. Returns whether the
    /// opponent has moved too (the round is complete).
    function _move(Game storage g, GameId gameId, uint256 p) internal returns (bool) {
        uint8 bit = uint8(1 << p);
        if (g.moved & bit != 0) revert Errors.AlreadyMoved(gameId, uint8(p));
        uint256 bond = _requiredBond();
        if (msg.value != bond) revert Errors.WrongValue(bond, msg.value);
        (uint256 left, uint256 since) = _clockOf(g, p);
        uint256 elapsed = block.timestamp - since;
        if (elapsed > left) revert Errors.ClockExpired(gameId, uint8(p));
        Duration rest = Duration.wrap(uint32(left - elapsed));
        if (p == DEFENDER) {
            g.left0 = rest;
            g.since0 = Timestamp.wrap(0);
            g.moves0 += 1;
        } else {
            g.left1 = rest;
            g.since1 = Timestamp.wrap(0);
            g.moves1 += 1;
        }
        g.moved |= bit;
        return g.moved == 3;
    }

    function _clockOf(Game storage g, uint256 p) internal view returns (uint256 left, uint256 since) {
        return p == DEFENDER
            ? (Duration.unwrap(g.left0), Timestamp.unwrap(g.since0))
            : (Duration.unwrap(g.left1), Timestamp.unwrap(g.since1));
    }

    function _expired(Game storage g, uint256 p) internal view returns (bool) {
        (uint256 left, uint256 since) = _clockOf(g, p);
        return since != 0 && block.timestamp > since + left;
    }

    /// A proof that decides a game counts only while no party that owes a move has run out of time.
    function _requireInTime(Game storage g, GameId gameId) internal view {
        if (_expired(g, DEFENDER)) revert Errors.ClockExpired(gameId, uint8(DEFENDER));
        if (_expired(g, CHALLENGER)) revert Errors.ClockExpired(gameId, uint8(CHALLENGER));
    }

    function _loser(bool defenderBad, bool challengerBad) internal pure returns (Ruling) {
        if (defenderBad && challengerBad) return Ruling.BothLose;
        return defenderBad ? Ruling.ChallengerWins : Ruling.DefenderWins;
    }

    /// The bonds a game holds: every bonded move of both parties (and the creation's).
    function _bonds(Game storage g) internal view returns (uint256) {
        return (uint256(g.moves0) + g.moves1) * _requiredBond();
    }

    /// Ends the game. Its bonds go to the winner, or to the jackpot if both lost, when pulled.
    function _resolve(Game storage g, GameId gameId, Ruling ruling, Reason reason) internal {
        g.phase = Phase.Resolved;
        g.ruling = ruling;
        g.reason = reason;
        g.since0 = Timestamp.wrap(0);
        g.since1 = Timestamp.wrap(0);
        ClaimRecord storage claim = claims[g.claim];
        claim.open -= 1;
        if (ruling == Ruling.DefenderWins) claim.defended += 1;
        else claim.lost += 1;
        emit GameResolved(gameId, ruling, reason, _bonds(g));
    }
}
