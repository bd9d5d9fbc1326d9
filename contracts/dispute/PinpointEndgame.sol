// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {
    GameParams, RecordClaim, EntryProof, ConstantsProof, SourceProof, ChunkProof
} from "../interfaces/IPinpointGame.sol";
import {Binary32, GameId, Party, Phase, Reason, Ruling} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {PinpointGameBase, Game} from "./PinpointGameBase.sol";
import {Dissection} from "./Dissection.sol";
import {ProgramChecks, SourceVerdict} from "./ProgramChecks.sol";
import {OneStepQuery, OneStepTensorProof} from "./OneStepCall.sol";

/// @title PinpointEndgame
/// @notice The end of a pinpoint game: the disputed output's leaf, the bisection of a reduction's
///         partial results, the one step, and the proofs against the program that decide a game.
///         `PinpointGame` runs this code by delegatecall on its own storage (the NatSpec of each
///         function is in `IPinpointGame`); called directly, every function reverts.
/// @dev Its functions are payable because a delegatecall keeps the game call's value; called
///      directly they revert, so no ether can reach this contract.
// slither-disable-next-line locked-ether
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
    function revealLeaf(GameId gameId, bytes calldata leaf, ChunkProof calldata theirs)
        external
        payable
        delegated
    {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Leaf);
        uint256 p = _party(g, gameId);
        if (leaf.length != Sha256Tree.LEAF_BYTES || sha256(leaf) != g.nodes[p]) revert Errors.NotCommitted(uint8(p));
        bool second = _move(g, gameId, p);
        emit LeafRevealed(gameId, Party(p), g.round, g.index, leaf);
        if (!second) {
            if (theirs.proof.length != 0) revert Errors.OpponentMove(gameId);
            // The op's entry (its reduction length) was proved with the first record.
            g.scratch = _chunkRoot(leaf);
            return;
        }
        uint256 chunk = theirs.chunk;
        if (theirs.proof.length != 5 || chunk >= 32 || _climb(theirs.value, chunk, theirs.proof) != g.scratch) {
            revert Errors.NotCommitted(uint8(1 - p));
        }
        bytes32 own = bytes32(leaf[32 * chunk:32 * chunk + 32]);
        uint256 w = _firstWord(own, theirs.value);
        (Binary32 mine, Binary32 other) = (_value(own, w), _value(theirs.value, w));
        (Binary32 v0, Binary32 v1) = p == DEFENDER ? (mine, other) : (other, mine);
        uint256 element = uint256(g.index) * Sha256Tree.LEAF_VALUES + chunk * 8 + w;
        emit ElementFound(gameId, uint64(element), v0, v1, g.terms);
        if (element >= g.numel) {
            // Past the last element a leaf holds zero bytes: whoever's are not loses.
            return _resolve(
                g, gameId, _loser(Binary32.unwrap(v0) != 0, Binary32.unwrap(v1) != 0), Reason.Padding
            );
        }
        g.value0 = v0;
        g.value1 = v1;
        g.element = uint64(element);
        g.lo = 0;
        g.hi = g.terms;
        g.accLo = Binary32.wrap(0);
        _enter(g, gameId, g.terms <= g.stretch ? Phase.OneStep : Phase.Terms, uint64(element));
    }

    /// The root of the keccak tree over a leaf's 32 chunks of 32 bytes.
    function _chunkRoot(bytes calldata leaf) private pure returns (bytes32 root) {
        assembly ("memory-safe") {
            // Reduce the 32 chunks in place in free memory: level by level, pairs of words.
            let at := mload(0x40)
            calldatacopy(at, leaf.offset, 1024)
            for { let n := 16 } gt(n, 0) { n := shr(1, n) } {
                for { let i := 0 } lt(i, n) { i := add(i, 1) } {
                    mstore(add(at, shl(5, i)), keccak256(add(at, shl(6, i)), 64))
                }
            }
            root := mload(at)
        }
    }

    function _climb(bytes32 node, uint256 index, bytes32[] calldata siblings) private pure returns (bytes32) {
        for (uint256 i; i < siblings.length; ++i) {
            node = (index & 1) == 1 ? _keccakPair(siblings[i], node) : _keccakPair(node, siblings[i]);
            index >>= 1;
        }
        return node;
    }

    function _keccakPair(bytes32 left, bytes32 right) private pure returns (bytes32 out) {
        assembly ("memory-safe") {
            mstore(0x00, left)
            mstore(0x20, right)
            out := keccak256(0x00, 0x40)
        }
    }

    /// The first of the eight 4-byte values in which two chunks differ.
    function _firstWord(bytes32 a, bytes32 b) private pure returns (uint256 w) {
        if (a == b) revert Errors.NothingProven();
        while (bytes4(a << (32 * w)) == bytes4(b << (32 * w))) ++w;
    }

    /// The binary32 bit pattern of value `w` of a chunk (values are little-endian).
    function _value(bytes32 chunk, uint256 w) private pure returns (Binary32) {
        uint32 bytesBig = uint32(bytes4(chunk << (32 * w)));
        uint32 bits = (bytesBig >> 24) | ((bytesBig >> 8) & 0xff00) | ((bytesBig << 8) & 0xff0000) | (bytesBig << 24);
        return Binary32.wrap(bits);
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
        if (g.hi - g.lo <= g.stretch) _enter(g, gameId, Phase.OneStep, g.element);
        else _startRound(g);
    }

    // --- rulings by proof -------------------------------------------------------------------

    /// @notice See `IPinpointGame.oneStep`.
    function oneStep(GameId gameId, bytes calldata record, OneStepTensorProof[] calldata inputs) external delegated {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.OneStep);
        _requireInTime(g, gameId);
        if (keccak256(record) != g.agreed) revert Errors.NotTheDisputedOp();
        OneStepQuery memory query = OneStepQuery(g.element, g.lo, g.hi, g.accLo);
        // The term count is the program's; the one step reverts on a range beyond the element's.
        // slither-disable-next-line unused-return
        (bool defined, Binary32 value,) = oneStepContract.compute(record, query, inputs);
        emit OneStepEvaluated(gameId, msg.sender, defined, value);
        uint32 bits = Binary32.unwrap(value);
        Ruling ruling = Ruling.BothLose;
        if (defined && bits == Binary32.unwrap(g.value0)) ruling = Ruling.DefenderWins;
        else if (defined && bits == Binary32.unwrap(g.value1)) ruling = Ruling.ChallengerWins;
        _resolve(g, gameId, ruling, Reason.OneStep);
    }

    /// @notice See `IPinpointGame.proveProgram`.
    function proveProgram(
        GameId gameId,
        Party accused,
        RecordClaim calldata record,
        EntryProof calldata entry,
        ConstantsProof calldata constants
    ) external delegated {
        Game storage g = _game(gameId);
        _requirePhase(g, gameId, Phase.Program);
        _requireInTime(g, gameId);
        if (!ProgramChecks.programVerdict(g, uint8(accused), record, entry, constants)) revert Errors.NothingProven();
        emit ProgramProved(gameId, msg.sender, accused, entry.entry, constants.constants);
        _resolve(g, gameId, _loser(accused == Party.Defender, accused == Party.Challenger), Reason.Program);
    }

    /// @notice See `IPinpointGame.proveSource`.
    function proveSource(GameId gameId, SourceProof calldata proof) external delegated {
        Game storage g = _game(gameId);
        Phase phase = g.phase;
        if (phase != Phase.Input && phase != Phase.Tensor) revert Errors.WrongPhase(gameId, phase);
        _requireInTime(g, gameId);
        SourceVerdict memory v = ProgramChecks.sourceVerdict(g, proof, phase == Phase.Tensor);
        if (!v.bad) revert Errors.NothingProven();
        Party accused = proof.accused;
        emit SourceProved(gameId, msg.sender, accused, v.slot, v.kind, v.index, v.truth);
        _resolve(g, gameId, _loser(accused == Party.Defender, accused == Party.Challenger), Reason.Source);
    }
}
