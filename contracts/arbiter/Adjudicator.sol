// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32, Root} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";
import {IOneStep, Query, Claim, Ruling, ONE_STEP_MAX_TERMS} from "../interfaces/IOneStep.sol";
import {OpCode} from "./OpCode.sol";
import {OpRecord, OpRecords} from "./OpRecords.sol";
import {Shape, TensorProof, TensorProofs} from "./TensorProofs.sol";
import {Shapes} from "./Shapes.sol";

/// @title Adjudicator
/// @notice What every one-step adjudicator shares: parsing the record, checking the input
///         proofs, the query bounds, the claims and the ruling. A concrete adjudicator
///         implements three hooks for the ops it knows: the output shape, an element's term
///         count, and the queried value.
/// @dev Stateless; every entry point is a `view`.
abstract contract Adjudicator is IOneStep {
    using TensorProofs for TensorProof;

    uint256 internal constant MAX_TERMS = ONE_STEP_MAX_TERMS;
    /// @notice A `STATE` record without its output: op 0x0040, no attributes, no inputs.
    bytes5 internal constant STATE_RECORD = 0x0040000000;

    /// @notice The inputs of one query, parsed and checked.
    struct Context {
        OpRecord record;
        Shape[] shapes;
        uint256[] outDims;
    }

    /// @inheritdoc IOneStep
    function adjudicate(
        bytes calldata record,
        Query calldata query,
        TensorProof[] calldata inputs,
        Claim[2] calldata claims
    ) external view returns (Ruling memory ruling) {
        ruling.records[0] = OpRecords.hashWith(record, claims[0].output);
        ruling.records[1] = OpRecords.hashWith(record, claims[1].output);
        (bool defined, Context memory context) = _prepare(record, inputs);
        if (!defined) return ruling;
        ruling.outputHeader = TensorProofs.encodeHeader(context.outDims);
        (defined, ruling.value, ruling.terms) = _query(context, inputs, query);
        ruling.defined = defined;
        if (!defined) return ruling;
        for (uint256 i; i < 2; ++i) {
            (ruling.correct[i], ruling.proven[i]) = _judge(claims[i], i, query, ruling);
        }
    }

    /// @inheritdoc IOneStep
    function adjudicateState(Root[] calldata tensors, Root[2] calldata outputs)
        external
        view
        returns (Ruling memory ruling)
    {
        uint256 roots;
        assembly ("memory-safe") {
            roots := tensors.offset
        }
        ruling.defined = true;
        ruling.stateRoot = Root.wrap(TensorProofs.merkleRoot(roots, tensors.length));
        for (uint256 i; i < 2; ++i) {
            ruling.records[i] = sha256(abi.encodePacked(STATE_RECORD, outputs[i]));
            ruling.correct[i] = Root.unwrap(outputs[i]) == Root.unwrap(ruling.stateRoot);
        }
    }

    /// @inheritdoc IOneStep
    function compute(bytes calldata record, Query calldata query, TensorProof[] calldata inputs)
        external
        view
        returns (bool defined, Binary32 value, uint256 terms)
    {
        Context memory context;
        (defined, context) = _prepare(record, inputs);
        if (!defined) return (false, value, 0);
        return _query(context, inputs, query);
    }

    /// @inheritdoc IOneStep
    function outline(bytes calldata record, TensorProof[] calldata inputs, uint256 element)
        external
        view
        returns (bool defined, bytes memory outputHeader, uint256 terms)
    {
        Context memory context;
        (defined, context) = _prepare(record, inputs);
        if (!defined) return (false, outputHeader, 0);
        outputHeader = TensorProofs.encodeHeader(context.outDims);
        if (element >= Shapes.numel(context.outDims)) revert Errors.ElementOutOfRange(element);
        terms = _terms(context, element);
    }

    /// @inheritdoc IOneStep
    function elementOf(Root tensor, uint256 element, TensorProof calldata proof)
        external
        view
        returns (Binary32 value, bytes memory header)
    {
        (bool wellFormed, Shape memory shape) = proof.check(tensor);
        if (!wellFormed || element >= shape.numel) revert Errors.ElementOutOfRange(element);
        return (proof.valueAt(element), proof.header);
    }

    /// @inheritdoc IOneStep
    function recordHash(bytes calldata record, Root output) external pure returns (bytes32) {
        return OpRecords.hashWith(record, output);
    }

    /// @inheritdoc IOneStep
    function maxTerms() external pure returns (uint256) {
        return MAX_TERMS;
    }

    // --- hooks --------------------------------------------------------------------------------

    /// @dev The output shape of the record's op on inputs of `context.shapes`, or `defined`
    ///      false when the op is not defined on them (or is not one this adjudicator knows).
    function _outputShape(Context memory context) internal pure virtual returns (bool defined, uint256[] memory dims);

    /// @dev The number of terms of output element `element` (0 for ops that are not reductions).
    function _terms(Context memory context, uint256 element) internal pure virtual returns (uint256);

    /// @dev The queried value (bounds already checked); `defined` false when the element is
    ///      not defined (an index that is not a whole number in range).
    function _value(Context memory context, TensorProof[] calldata inputs, Query calldata query)
        internal
        pure
        virtual
        returns (bool defined, Binary32 value);

    // --- internals ----------------------------------------------------------------------------

    function _prepare(bytes calldata record, TensorProof[] calldata inputs)
        private
        view
        returns (bool defined, Context memory context)
    {
        context.record = OpRecords.parse(record);
        if (context.record.op == OpCode.STATE) revert Errors.NoElements(context.record.op);
        uint256 count = context.record.inputs.length;
        if (inputs.length != count) revert Errors.WrongInputCount(count, inputs.length);
        context.shapes = new Shape[](count);
        defined = true;
        for (uint256 i; i < count; ++i) {
            (bool wellFormed, Shape memory shape) = inputs[i].check(context.record.inputs[i]);
            context.shapes[i] = shape;
            defined = defined && wellFormed;
        }
        if (defined) (defined, context.outDims) = _outputShape(context);
    }

    function _query(Context memory context, TensorProof[] calldata inputs, Query calldata query)
        private
        pure
        returns (bool defined, Binary32 value, uint256 terms)
    {
        if (query.element >= Shapes.numel(context.outDims)) revert Errors.ElementOutOfRange(query.element);
        terms = _terms(context, query.element);
        if (query.termFrom > query.termTo || query.termTo > terms || query.termTo - query.termFrom > MAX_TERMS) {
            revert Errors.TermsOutOfRange(query.termFrom, query.termTo, terms);
        }
        (defined, value) = _value(context, inputs, query);
    }

    /// @dev Whether `claim` is correct and whether its value was proved here.
    function _judge(Claim calldata claim, uint256 index, Query calldata query, Ruling memory ruling)
        private
        view
        returns (bool correct, bool proven)
    {
        bool matches = Binary32.unwrap(claim.value) == Binary32.unwrap(ruling.value);
        if (claim.proof.header.length == 0) return (matches, false);
        // A proof: the claim must be about the element itself, and its root is opened.
        if (query.termTo != ruling.terms) revert Errors.TermsOutOfRange(query.termFrom, query.termTo, ruling.terms);
        if (keccak256(claim.proof.header) != keccak256(ruling.outputHeader)) {
            // The header is the root's: an output of another shape is wrong whatever it holds.
            if (sha256(bytes.concat(claim.proof.header, claim.proof.merkleRoot)) != Root.unwrap(claim.output)) {
                revert Errors.InvalidProof(Root.unwrap(claim.output), "header and Merkle root");
            }
            return (false, true);
        }
        (bool wellFormed, Shape memory shape) = claim.proof.check(claim.output);
        if (!wellFormed || query.element >= shape.numel) revert Errors.ElementOutOfRange(query.element);
        Binary32 proved = claim.proof.valueAt(query.element);
        if (Binary32.unwrap(proved) != Binary32.unwrap(claim.value)) revert Errors.ClaimMismatch(index);
        return (matches, true);
    }
}
