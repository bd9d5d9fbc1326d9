// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GameParams, RecordClaim, EntryProof, ConstantsProof, SourceProof} from "../interfaces/IPinpointGame.sol";
import {Binary32, GameId, Party, Phase, Reason, Ruling} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {PinpointGameBase, Game} from "./PinpointGameBase.sol";
import {Dissection} from "./Dissection.sol";
import {ProgramChecks, SourceVerdict} from "./ProgramChecks.sol";

/// @title PinpointEndgame
/// @notice The end of a pinpoint game: the disputed output's leaf, the bisection of a reduction's
///         partial results, the one step, and the proofs against the program that decide a game.
///         `PinpointGame` runs this code by delegatecall on its own storage (the NatSpec of each
///         function is in `IPinpointGame`); called directly, every function reverts.
contract PinpointEndgame is PinpointGameBase {
    /// This contract's own address: a call that does not come by delegatecall sees it as `this`.
    address private immutable self;

    /// @param params The deployment parameters of the game that deploys this contract.
    constructor(GameParams memory params) PinpointGameBase(params) {
        self = address(this);
    }

    modifier delegated() {
        if (address(this) == self) revert Errors.NotDelegated();
        _;
    }

    // --- the disputed element ---------------------------------------------------------------

    /// @notice See `IPinpointGame.revealLeaf`.
    function revealLeaf(GameId gameId, bytes calldata leaf, bytes calldata opponentLeaf) external payable delegated {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Leaf);
        uint256 p = _party(g, gameId);
        _checkLeaf(g, leaf, p);
        bool second = _move(g, gameId, p);
        emit LeafRevealed(gameId, Party(p), g.round, g.index, leaf);
        if (!second) {
            if (opponentLeaf.length != 0) revert Errors.OpponentMove(gameId);
            return;
        }
        _checkLeaf(g, opponentLeaf, 1 - p);
        uint256 w = _firstDifference(leaf, opponentLeaf);
        (Binary32 mine, Binary32 theirs) = (_value(leaf, w), _value(opponentLeaf, w));
        (g.value0, g.value1) = p == DEFENDER ? (mine, theirs) : (theirs, mine);
        g.element = uint64(uint256(g.index) * Sha256Tree.LEAF_VALUES + w);
        g.lo = 0;
        g.hi = g.terms;
        g.accLo = Binary32.wrap(0);
        emit ElementFound(gameId, g.element, g.value0, g.value1, g.terms);
        bool direct = g.terms <= oneStepContract.maxTerms(g.opCode);
        _enter(g, gameId, direct ? Phase.OneStep : Phase.Terms, g.element);
    }

    /// A leaf must hash to the party's node and hold zero bytes past the tensor's last element.
    function _checkLeaf(Game storage g, bytes calldata leaf, uint256 p) private view {
        if (leaf.length != Sha256Tree.LEAF_BYTES || sha256(leaf) != g.nodes[p]) revert Errors.NotCommitted(uint8(p));
        uint256 first = uint256(g.index) * Sha256Tree.LEAF_VALUES;
        uint256 count = g.numel;
        if (first + Sha256Tree.LEAF_VALUES <= count) return;
        uint256 at = count > first ? (count - first) * 4 : 0;
        for (; at < Sha256Tree.LEAF_BYTES && at % 32 != 0; ++at) {
            if (leaf[at] != 0) revert Errors.NonZeroPadding();
        }
        for (; at < Sha256Tree.LEAF_BYTES; at += 32) {
            if (bytes32(leaf[at:at + 32]) != 0) revert Errors.NonZeroPadding();
        }
    }

    function _firstDifference(bytes calldata a, bytes calldata b) private pure returns (uint256) {
        for (uint256 at; at < Sha256Tree.LEAF_BYTES; at += 32) {
            if (bytes32(a[at:at + 32]) != bytes32(b[at:at + 32])) {
                for (uint256 w = at;; w += 4) {
                    if (bytes4(a[w:w + 4]) != bytes4(b[w:w + 4])) return w / 4;
                }
            }
        }
        revert Errors.NothingProven();
    }

    /// The binary32 bit pattern of value `w` of a leaf (values are little-endian).
    function _value(bytes calldata leaf, uint256 w) private pure returns (Binary32) {
        uint256 at = 4 * w;
        return Binary32.wrap(
            uint32(uint8(leaf[at])) | (uint32(uint8(leaf[at + 1])) << 8) | (uint32(uint8(leaf[at + 2])) << 16)
                | (uint32(uint8(leaf[at + 3])) << 24)
        );
    }

    // --- the partial results of a reduction -------------------------------------------------

    /// @notice See `IPinpointGame.bisectTerms`.
    function bisectTerms(GameId gameId, Binary32[] calldata values, Binary32[] calldata opponentValues)
        external
        payable
        delegated
    {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Terms);
        uint256 p = _party(g, gameId);
        uint256 lo = g.lo;
        uint256 hi = g.hi;
        uint256 count = Dissection.count(lo, hi, dissectionBits);
        if (values.length != count) revert Errors.WrongNodeCount(count, values.length);
        bool second = _move(g, gameId, p);
        emit TermsPosted(gameId, Party(p), g.round, uint64(lo), uint64(hi), values);
        if (!second) {
            if (opponentValues.length != 0) revert Errors.OpponentMove(gameId);
            g.scratch = keccak256(abi.encodePacked(values));
            return;
        }
        if (keccak256(abi.encodePacked(opponentValues)) != g.scratch) revert Errors.WrongTerms();
        uint256 i;
        while (i < count && Binary32.unwrap(values[i]) == Binary32.unwrap(opponentValues[i])) ++i;
        if (i > 0) {
            g.lo = uint64(Dissection.point(lo, hi, count, i));
            g.accLo = values[i - 1];
        }
        if (i < count) {
            g.hi = uint64(Dissection.point(lo, hi, count, i + 1));
            (g.value0, g.value1) = p == DEFENDER ? (values[i], opponentValues[i]) : (opponentValues[i], values[i]);
        }
        emit TermsNarrowed(gameId, g.lo, g.hi, g.accLo, g.value0, g.value1);
        if (g.hi - g.lo <= oneStepContract.maxTerms(g.opCode)) _enter(g, gameId, Phase.OneStep, g.element);
        else _startRound(g);
    }

    // --- rulings by proof -------------------------------------------------------------------

    /// @notice See `IPinpointGame.oneStep`.
    function oneStep(
        GameId gameId,
        bytes calldata prefix,
        bytes calldata header,
        bytes32[] calldata inputs,
        bytes calldata witness
    ) external delegated {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.OneStep);
        _requireInTime(g, gameId);
        bytes32 op = keccak256(abi.encodePacked(keccak256(prefix), keccak256(header), keccak256(abi.encodePacked(inputs))));
        if (op != g.agreed) revert Errors.NotTheDisputedOp();
        Binary32 value = oneStepContract.evaluate(prefix, inputs, header, g.element, g.lo, g.hi, g.accLo, witness);
        emit OneStepEvaluated(gameId, msg.sender, value, keccak256(witness));
        uint32 bits = Binary32.unwrap(value);
        Ruling ruling;
        if (bits == Binary32.unwrap(g.value0)) ruling = Ruling.DefenderWins;
        else if (bits == Binary32.unwrap(g.value1)) ruling = Ruling.ChallengerWins;
        else ruling = Ruling.BothLose;
        _resolve(g, gameId, ruling, Reason.OneStep);
    }

    /// @notice See `IPinpointGame.proveProgram`.
    function proveProgram(
        GameId gameId,
        RecordClaim calldata defenderRecord,
        RecordClaim calldata challengerRecord,
        EntryProof calldata entry,
        ConstantsProof calldata constants
    ) external delegated {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Program);
        _requireInTime(g, gameId);
        (bool defenderBad, bool challengerBad) =
            ProgramChecks.programVerdict(g, defenderRecord, challengerRecord, entry, constants);
        if (!defenderBad && !challengerBad) revert Errors.NothingProven();
        emit ProgramProved(gameId, msg.sender, entry.entry, constants.constants);
        _resolve(g, gameId, _loser(defenderBad, challengerBad), Reason.Program);
    }

    /// @notice See `IPinpointGame.proveSource`.
    function proveSource(GameId gameId, SourceProof calldata proof) external delegated {
        Game storage g = _game(gameId);
        Phase phase = g.phase;
        if (phase != Phase.Input && phase != Phase.Tensor) revert Errors.WrongPhase(gameId, phase);
        _requireInTime(g, gameId);
        SourceVerdict memory v = ProgramChecks.sourceVerdict(g, proof, phase == Phase.Tensor);
        if (!v.defenderBad && !v.challengerBad) revert Errors.NothingProven();
        emit SourceProved(gameId, msg.sender, v.slot, v.kind, v.index, v.truth);
        _resolve(g, gameId, _loser(v.defenderBad, v.challengerBad), Reason.Source);
    }
}
