// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32, Root} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @notice One attribute of an op record: an integer (`"i" || i64be`) or a binary32 constant
///         (`"f" || u32be`, its bit pattern in `value`).
struct Attribute {
    bool isFloat;
    int256 value;
}

/// @notice An op record without its output root (docs/exact.md, "Traces"), parsed.
struct OpRecord {
    uint16 op;
    Attribute[] attributes;
    Root[] inputs;
}

/// @title OpRecords
/// @notice Parsing op records and hashing them with an output root.
/// @dev A one step is given the record's bytes up to (not including) the output root: both
///      parties' records of the disputed op share them and differ in the output root only.
library OpRecords {
    /// @notice Parses `u16be(op) u8(n) attributes u16be(m) m·root`; reverts with
    ///         `MalformedRecord` on anything else (unknown tags, wrong length).
    function parse(bytes calldata prefix) internal pure returns (OpRecord memory record) {
        if (prefix.length < 3) revert Errors.MalformedRecord();
        record.op = uint16(bytes2(prefix[0:2]));
        uint256 count = uint8(prefix[2]);
        record.attributes = new Attribute[](count);
        uint256 at = 3;
        for (uint256 i; i < count; ++i) {
            if (prefix.length < at + 1) revert Errors.MalformedRecord();
            bytes1 tag = prefix[at];
            if (tag == "i") {
                if (prefix.length < at + 9) revert Errors.MalformedRecord();
                record.attributes[i] = Attribute(false, int64(uint64(bytes8(prefix[at + 1:at + 9]))));
                at += 9;
            } else if (tag == "f") {
                if (prefix.length < at + 5) revert Errors.MalformedRecord();
                record.attributes[i] = Attribute(true, int256(uint256(uint32(bytes4(prefix[at + 1:at + 5])))));
                at += 5;
            } else {
                revert Errors.MalformedRecord();
            }
        }
        if (prefix.length < at + 2) revert Errors.MalformedRecord();
        uint256 inputs = uint16(bytes2(prefix[at:at + 2]));
        at += 2;
        if (prefix.length != at + 32 * inputs) revert Errors.MalformedRecord();
        record.inputs = new Root[](inputs);
        for (uint256 i; i < inputs; ++i) {
            record.inputs[i] = Root.wrap(bytes32(prefix[at + 32 * i:at + 32 * i + 32]));
        }
    }

    /// @notice The op code of a record prefix (its first two bytes); 0 when it is too short.
    function opOf(bytes calldata prefix) internal pure returns (uint16) {
        return prefix.length < 2 ? 0 : uint16(bytes2(prefix[0:2]));
    }

    /// @notice sha256 of the whole record: the prefix followed by `output`. This is the leaf
    ///         of the record in its step's Merkle tree.
    function hashWith(bytes calldata prefix, Root output) internal pure returns (bytes32) {
        return sha256(bytes.concat(prefix, Root.unwrap(output)));
    }

    /// @notice Whether attribute `i` exists and is an integer.
    function isInteger(OpRecord memory record, uint256 i) internal pure returns (bool) {
        return i < record.attributes.length && !record.attributes[i].isFloat;
    }

    /// @notice Whether attribute `i` exists and is a binary32 constant.
    function isFloat(OpRecord memory record, uint256 i) internal pure returns (bool) {
        return i < record.attributes.length && record.attributes[i].isFloat;
    }

    /// @notice Attribute `i` as an integer (0 when it is absent or a float).
    function integerAt(OpRecord memory record, uint256 i) internal pure returns (int256) {
        return isInteger(record, i) ? record.attributes[i].value : int256(0);
    }

    /// @notice Attribute `i` as a binary32 constant (+0 when it is absent or an integer).
    function floatAt(OpRecord memory record, uint256 i) internal pure returns (Binary32) {
        // A float attribute holds a u32 bit pattern.
        return Binary32.wrap(isFloat(record, i) ? uint32(uint256(record.attributes[i].value)) : 0);
    }
}
