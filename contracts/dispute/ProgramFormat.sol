// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {RecordClaim} from "../interfaces/IPinpointGame.sol";
import {Errors} from "../lib/Errors.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {SourceKind} from "../lib/Types.sol";

/// @notice The facts of a program header the game keeps (docs/dispute.md, "Program").
struct ProgramFacts {
    uint32 steps;
    uint32 interval;
    uint32 segments;
    uint32 stateTensors;
    uint32 stepOps;
    uint32 distanceOps;
}

/// @notice Where a program entry's parts lie in its bytes.
struct EntryLayout {
    uint16 op;
    /// Offset of the first attribute; the attributes end at `sourcesAt - 2`.
    uint256 attributesAt;
    uint256 attributeCount;
    /// Offset of the first source (5 bytes each: u8 kind ‖ u32 index).
    uint256 sourcesAt;
    uint256 sourceCount;
    uint64 terms;
    /// Offset of the output's shape header (to the end of the entry).
    uint256 headerAt;
}

/// @notice Where an op record's parts lie in its bytes.
struct RecordLayout {
    uint16 op;
    /// Length of the prefix: op code, attributes, input count.
    uint256 prefixLength;
    uint256 inputCount;
}

/// @title ProgramFormat
/// @notice Reads the byte formats the game checks: op records (docs/exact.md, "Traces"), the program
///         header, program entries and a step's constants (docs/dispute.md, "Program"). All integers
///         are big-endian. Every reader reverts on bytes that are not of its format.
library ProgramFormat {
    /// @notice The op code of the record that closes a training step (its output is the state root).
    uint16 internal constant STATE = 0x40;

    bytes8 internal constant MAGIC = "VTPROG01";
    uint256 internal constant HEADER_FIXED = 170;

    // Offsets in the program header.
    uint256 private constant STEP_TEMPLATE_AT = 41;
    uint256 private constant DISTANCE_TEMPLATE_AT = 73;
    uint256 private constant CONSTANTS_AT = 105;
    uint256 private constant DATASETS_AT = 170;

    bytes1 private constant INTEGER = "i";
    bytes1 private constant FLOAT = "f";
    bytes1 private constant SCALAR = "s";

    // --- program header ---------------------------------------------------------------------

    /// @notice The counts of a program header; reverts with `MalformedProgram` unless well formed.
    function facts(bytes calldata header) internal pure returns (ProgramFacts memory f) {
        if (header.length < HEADER_FIXED || bytes8(header[0:8]) != MAGIC) revert Errors.MalformedProgram();
        uint256 datasets = uint8(header[169]);
        if (header.length != HEADER_FIXED + 32 * datasets) revert Errors.MalformedProgram();
        f.steps = uint32(bytes4(header[8:12]));
        f.interval = uint32(bytes4(header[12:16]));
        f.segments = uint32(bytes4(header[16:20]));
        f.stateTensors = uint32(bytes4(header[29:33]));
        f.stepOps = uint32(bytes4(header[33:37]));
        f.distanceOps = uint32(bytes4(header[37:41]));
        if (f.interval == 0 || f.stateTensors == 0 || f.stepOps == 0 || f.distanceOps == 0) {
            revert Errors.MalformedProgram();
        }
    }

    /// @notice The root of the step template (`distance` false) or of the distance template.
    function template(bytes calldata header, bool distance) internal pure returns (bytes32) {
        uint256 at = distance ? DISTANCE_TEMPLATE_AT : STEP_TEMPLATE_AT;
        return bytes32(header[at:at + 32]);
    }

    /// @notice The root over the constants of every step.
    function constantsRoot(bytes calldata header) internal pure returns (bytes32) {
        return bytes32(header[CONSTANTS_AT:CONSTANTS_AT + 32]);
    }

    /// @notice The tensor root of dataset tensor `index`.
    function datasetRoot(bytes calldata header, uint256 index) internal pure returns (bytes32) {
        if (index >= uint8(header[169])) revert Errors.InvalidSource(uint8(SourceKind.Dataset), index);
        uint256 at = DATASETS_AT + 32 * index;
        return bytes32(header[at:at + 32]);
    }

    // --- program entries ----------------------------------------------------------------------

    /// @notice The layout of a program entry; reverts with `MalformedProgram` unless well formed.
    function entry(bytes calldata e) internal pure returns (EntryLayout memory l) {
        if (e.length < 3) revert Errors.MalformedProgram();
        l.op = uint16(bytes2(e[0:2]));
        l.attributeCount = uint8(e[2]);
        uint256 at = 3;
        l.attributesAt = at;
        for (uint256 i; i < l.attributeCount; ++i) {
            if (at >= e.length) revert Errors.MalformedProgram();
            bytes1 tag = e[at];
            if (tag == INTEGER) at += 9;
            else if (tag == FLOAT || tag == SCALAR) at += 5;
            else revert Errors.MalformedProgram();
        }
        if (at + 2 > e.length) revert Errors.MalformedProgram();
        l.sourceCount = uint16(bytes2(e[at:at + 2]));
        l.sourcesAt = at + 2;
        at = l.sourcesAt + 5 * l.sourceCount;
        if (at + 8 > e.length) revert Errors.MalformedProgram();
        l.terms = uint64(bytes8(e[at:at + 8]));
        l.headerAt = at + 8;
    }

    /// @notice Source `slot` of an entry: its kind and index.
    function source(bytes calldata e, EntryLayout memory l, uint256 slot)
        internal
        pure
        returns (SourceKind kind, uint256 index)
    {
        if (slot >= l.sourceCount) revert Errors.MalformedProgram();
        uint256 at = l.sourcesAt + 5 * slot;
        uint8 raw = uint8(e[at]);
        if (raw > uint8(SourceKind.Claimed)) revert Errors.MalformedProgram();
        kind = SourceKind(raw);
        index = uint32(bytes4(e[at + 1:at + 5]));
    }

    /// @notice Whether the entry has attributes that are scalars of the step (learning rate, ...).
    function usesScalars(bytes calldata e, EntryLayout memory l) internal pure returns (bool) {
        uint256 at = l.attributesAt;
        for (uint256 i; i < l.attributeCount; ++i) {
            bytes1 tag = e[at];
            if (tag == SCALAR) return true;
            at += tag == INTEGER ? 9 : 5;
        }
        return false;
    }

    /// @notice The record prefix (op code, attributes, input count) the entry prescribes, with the
    ///         step's scalars in place of the entry's scalar attributes.
    function expectedPrefix(bytes calldata e, EntryLayout memory l, bytes calldata constants)
        internal
        pure
        returns (bytes memory prefix)
    {
        uint256 inputs = l.op == STATE ? 0 : l.sourceCount;
        bytes calldata attributes = e[l.attributesAt:l.sourcesAt - 2];
        prefix = abi.encodePacked(e[0:3], attributes, uint16(inputs));
        uint256 at = l.attributesAt;
        for (uint256 i; i < l.attributeCount; ++i) {
            bytes1 tag = e[at];
            if (tag == SCALAR) {
                uint32 bits = scalar(constants, uint32(bytes4(e[at + 1:at + 5])));
                prefix[at] = FLOAT;
                for (uint256 b; b < 4; ++b) {
                    prefix[at + 1 + b] = bytes1(uint8(bits >> (24 - 8 * b)));
                }
            }
            at += tag == INTEGER ? 9 : 5;
        }
    }

    // --- a step's constants -------------------------------------------------------------------

    /// @notice Scalar `index` of a step's constants (u8 count ‖ count × u32 ‖ u8 count ‖ count × root).
    function scalar(bytes calldata constants, uint256 index) internal pure returns (uint32) {
        if (constants.length == 0 || index >= uint8(constants[0])) revert Errors.MalformedProgram();
        uint256 at = 1 + 4 * index;
        return uint32(bytes4(constants[at:at + 4]));
    }

    /// @notice Batch index tensor `index` of a step's constants.
    function batchRoot(bytes calldata constants, uint256 index) internal pure returns (bytes32) {
        if (constants.length == 0) revert Errors.MalformedProgram();
        uint256 at = 1 + 4 * uint256(uint8(constants[0]));
        if (at >= constants.length) revert Errors.MalformedProgram();
        uint256 count = uint8(constants[at]);
        if (constants.length != at + 1 + 32 * count) revert Errors.MalformedProgram();
        if (index >= count) revert Errors.InvalidSource(uint8(SourceKind.Batch), index);
        uint256 start = at + 1 + 32 * index;
        return bytes32(constants[start:start + 32]);
    }

    // --- op records ---------------------------------------------------------------------------

    /// @notice The layout of an op record; reverts with `MalformedRecord` unless it is one.
    function record(bytes calldata r) internal pure returns (RecordLayout memory l) {
        if (r.length < 37) revert Errors.MalformedRecord();
        l.op = uint16(bytes2(r[0:2]));
        uint256 count = uint8(r[2]);
        uint256 at = 3;
        for (uint256 i; i < count; ++i) {
            if (at >= r.length) revert Errors.MalformedRecord();
            bytes1 tag = r[at];
            if (tag == INTEGER) at += 9;
            else if (tag == FLOAT) at += 5;
            else revert Errors.MalformedRecord();
        }
        if (at + 2 > r.length) revert Errors.MalformedRecord();
        l.inputCount = uint16(bytes2(r[at:at + 2]));
        l.prefixLength = at + 2;
        if (r.length != l.prefixLength + 32 * l.inputCount + 32) revert Errors.MalformedRecord();
    }

    /// @notice Input `slot` of a record.
    function input(bytes calldata r, RecordLayout memory l, uint256 slot) internal pure returns (bytes32) {
        if (slot >= l.inputCount) revert Errors.MalformedRecord();
        uint256 at = l.prefixLength + 32 * slot;
        return bytes32(r[at:at + 32]);
    }

    /// @notice The output root of a record (its last 32 bytes).
    function output(bytes calldata r) internal pure returns (bytes32) {
        if (r.length < 32) revert Errors.MalformedRecord();
        return bytes32(r[r.length - 32:]);
    }

    /// @notice Checks a revealed record against the party's committed record hash `leaf` and its
    ///         output against the revealed header and Merkle root; returns its layout. Reverts with
    ///         `NotCommitted(party)` or `MalformedRecord`.
    function checkRecord(RecordClaim calldata c, bytes32 leaf, uint256 party)
        internal
        view
        returns (RecordLayout memory l)
    {
        if (sha256(c.record) != leaf) revert Errors.NotCommitted(uint8(party));
        l = record(c.record);
        bytes32 out = output(c.record);
        if (l.op == STATE) {
            if (l.inputCount != 0 || c.header.length != 0 || c.merkle != out) revert Errors.MalformedRecord();
        } else {
            // The header must be well formed; its element count is not needed here.
            // slither-disable-next-line unused-return
            Sha256Tree.numel(c.header);
            if (Sha256Tree.tensorRoot(c.header, c.merkle) != out) revert Errors.NotCommitted(uint8(party));
        }
    }

    /// @notice keccak of a record's structure: its prefix (op code, attributes, input count) and
    ///         its output's shape header.
    function structure(RecordClaim calldata c, RecordLayout memory l) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(c.record[:l.prefixLength], c.header));
    }

    /// @notice The bytes of the STATE record whose output is `stateRoot`.
    function stateRecord(bytes32 stateRoot) internal pure returns (bytes memory) {
        return abi.encodePacked(STATE, uint8(0), uint16(0), stateRoot);
    }
}
