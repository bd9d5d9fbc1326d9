// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32, Root} from "../lib/Types.sol";
import {TensorProof} from "../arbiter/TensorProofs.sol";

// The most terms one reduction step adds (`Query.termTo - Query.termFrom`).
uint256 constant ONE_STEP_MAX_TERMS = 8;

/// @notice Which value of an op's output a one step computes.
/// @dev Reductions (sum, amax, matmul_nt's dot product, col2im and scatter_add accumulation)
///      compute an element as a fold over its terms: `partial(0)` is the start value (+0 for
///      sums, -inf for amax), `partial(t + 1) = partial(t) ⊕ term(t)`, and the element is
///      `partial(terms)`. A query asks for `partial(termTo)` from an agreed `partial(termFrom)`,
///      at most `maxTerms()` terms apart. Every other op has no terms: `termFrom = termTo = 0`.
struct Query {
    /// Flat (row-major) index of the disputed output element.
    uint256 element;
    /// The partial result both parties agree on is the one after this many terms.
    uint256 termFrom;
    /// The disputed value is the partial result after this many terms; `termTo` equal to the
    /// element's term count (`Ruling.terms`) means the element itself.
    uint256 termTo;
    /// `partial(termFrom)`, which the parties agree on; ignored when `termFrom` is 0.
    Binary32 agreed;
}

/// @notice What one party states about the queried value.
/// @dev `proof` proves an element claim against `output`: its header must be the op's output
///      shape and its one leaf must hold `value` at the element's position. A claim whose proof
///      has an empty header is taken as stated: a partial result (unproved by nature, settled
///      by the bisection that produced it) or an element the game had proved earlier with
///      `elementOf`.
struct Claim {
    /// The party's output root: the last field of its op record.
    Root output;
    /// The value the party claims for the query (the element, or the partial result).
    Binary32 value;
    /// The element's leaf against `output`, or an empty proof (see above).
    TensorProof proof;
}

/// @notice The chain's answer to a query and its verdict on the two claims.
struct Ruling {
    /// False when the op is not defined on these inputs (shapes that do not fit, an axis out of
    /// range, an index that is not a whole number in range): no claim can then be correct.
    bool defined;
    /// The value the chain computed (the element, or the partial result after `termTo` terms).
    Binary32 value;
    /// The element's number of terms (0 for ops that are not reductions).
    uint256 terms;
    /// The header (`u64be(numel) || u32be(ndim) || u64be(dim)...`) of the op's output shape.
    bytes outputHeader;
    /// `adjudicateState` only: the state root of the given tensor roots (zero otherwise).
    Root stateRoot;
    /// Per claim: whether it is correct (its value equals `value` bit for bit, its proved header,
    /// if any, equals `outputHeader`; for `STATE`, its output equals `stateRoot`).
    bool[2] correct;
    /// Per claim: whether its value was proved against its output root in this call.
    bool[2] proven;
    /// Per claim: sha256 of the record with the claim's output root (its leaf in the step tree).
    bytes32[2] records;
}

/// @title The one-step adjudicator of the binary32 arbiter
/// @notice The last move of the pinpoint game (PROTOCOL.md §5): given one op record of a
///         trace (without its output root), proofs of the input values it reads against the
///         record's input roots, and two parties' claims, the chain computes the disputed
///         element (or partial result of a long reduction) with its binary32 library and says
///         which claim is right. Every function is a `view`: the game applies the ruling.
/// @dev The record prefix is `u16be(op) u8(n) attributes u16be(m) m·input root` (docs/exact.md,
///      "Traces"); `inputs[i]` proves values of the tensor with root `inputs` number i of the
///      record, in record order. A `STATE` record (`0x0040 00 0000`) lists no inputs: its
///      output is the state root over the state's tensor roots, judged by `adjudicateState`.
///      Gas does not grow with tensor sizes beyond the Merkle paths' depth: a reduction step
///      adds at most `maxTerms()` terms. docs/arbiter.md documents the interface and the gas.
interface IOneStep {
    /// @notice Computes the queried value and rules on both claims.
    /// @param record The op record without its output root.
    /// @param query The element and, for reductions, the term range.
    /// @param inputs One proof per input of the record, with the leaves the query reads.
    /// @param claims The two parties' claims (defender first by convention; the ruling keeps
    ///        the order).
    /// @return ruling The computed value and the verdict on each claim. Reverts on a proof
    ///         that does not hold (`InvalidProof`), a leaf the computation needs but was not
    ///         given (`MissingLeaf`), a malformed record or query, or an element claim whose
    ///         proved value differs from its stated value (`ClaimMismatch`); a `STATE` record
    ///         is `NoElements` (see `adjudicateState`).
    function adjudicate(
        bytes calldata record,
        Query calldata query,
        TensorProof[] calldata inputs,
        Claim[2] calldata claims
    ) external view returns (Ruling memory ruling);

    /// @notice The one step of a `STATE` record: its output is the state root over the new
    ///         state's tensor roots in name order (PROTOCOL.md §4). The game establishes those
    ///         roots (each the output of an agreed earlier record of the step, in the order the
    ///         task's program gives); the chain hashes them and compares.
    /// @param tensors The state's tensor roots in name order.
    /// @param outputs The two parties' output roots of the `STATE` record.
    /// @return ruling `defined` true, `stateRoot` the Merkle root over `tensors`, `correct[i]`
    ///         whether `outputs[i]` equals it, `records[i]` the hash of the record
    ///         `0x0040 00 0000 || outputs[i]`; the element fields are zero.
    function adjudicateState(Root[] calldata tensors, Root[2] calldata outputs)
        external
        view
        returns (Ruling memory ruling);

    /// @notice The queried value alone (`adjudicate` without claims).
    /// @param record The op record without its output root.
    /// @param query The element and, for reductions, the term range.
    /// @param inputs One proof per input of the record, with the leaves the query reads.
    /// @return defined Whether the op is defined on these inputs.
    /// @return value The element, or the partial result after `query.termTo` terms.
    /// @return terms The element's number of terms (0 for ops that are not reductions).
    function compute(bytes calldata record, Query calldata query, TensorProof[] calldata inputs)
        external
        view
        returns (bool defined, Binary32 value, uint256 terms);

    /// @notice The op's output shape and an element's number of terms, from the inputs' shapes
    ///         alone (proofs without leaves suffice): what the game needs before bisecting a
    ///         reduction.
    /// @param record The op record without its output root.
    /// @param inputs One proof per input of the record (header and Merkle root; leaves unused).
    /// @param element A flat index of the output.
    /// @return defined Whether the op is defined on inputs of these shapes.
    /// @return outputHeader The header of the output shape.
    /// @return terms The element's number of terms (0 for ops that are not reductions).
    function outline(bytes calldata record, TensorProof[] calldata inputs, uint256 element)
        external
        view
        returns (bool defined, bytes memory outputHeader, uint256 terms);

    /// @notice Proves one element of a committed tensor: the header and Merkle root hash to
    ///         `tensor`, and the proof's leaf holding the element hashes up to the Merkle root.
    /// @param tensor The tensor root.
    /// @param element A flat index below the tensor's element count.
    /// @param proof The tensor's header and Merkle root and the leaf holding the element.
    /// @return value The element.
    /// @return header The tensor's header (its shape).
    function elementOf(Root tensor, uint256 element, TensorProof calldata proof)
        external
        view
        returns (Binary32 value, bytes memory header);

    /// @notice sha256 of an op record: `record` followed by `output`.
    /// @param record The op record without its output root.
    /// @param output An output root.
    /// @return The record's hash, its leaf in its step's Merkle tree.
    function recordHash(bytes calldata record, Root output) external pure returns (bytes32);

    /// @notice The most terms one reduction step adds (`query.termTo - query.termFrom`).
    /// @return The bound.
    function maxTerms() external pure returns (uint256);
}
