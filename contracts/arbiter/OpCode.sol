// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title OpCode
/// @notice The op codes of the exact kernels' trace (docs/exact.md, "Operations"); the numbers
///         are part of the protocol and mirror `agents.exact`'s op table.
library OpCode {
    uint16 internal constant ADD = 0x01;
    uint16 internal constant SUB = 0x02;
    uint16 internal constant MUL = 0x03;
    uint16 internal constant DIV = 0x04;
    uint16 internal constant MAXIMUM = 0x05;
    uint16 internal constant MINIMUM = 0x06;
    uint16 internal constant LT = 0x07;
    uint16 internal constant LE = 0x08;
    uint16 internal constant EQ = 0x09;
    uint16 internal constant SELECT = 0x0A;
    uint16 internal constant LDEXP = 0x0B;
    uint16 internal constant NEG = 0x10;
    uint16 internal constant ABS = 0x11;
    uint16 internal constant SQRT = 0x12;
    uint16 internal constant EXP = 0x13;
    uint16 internal constant LOG = 0x14;
    uint16 internal constant SUM = 0x20;
    uint16 internal constant AMAX = 0x21;
    uint16 internal constant MATMUL_NT = 0x22;
    uint16 internal constant TRANSPOSE = 0x30;
    uint16 internal constant RESHAPE = 0x31;
    uint16 internal constant INDEX_SELECT = 0x32;
    uint16 internal constant TAKE_ALONG = 0x33;
    uint16 internal constant ONE_HOT = 0x34;
    uint16 internal constant CAUSAL_FILL = 0x35;
    uint16 internal constant IM2COL = 0x36;
    uint16 internal constant COL2IM = 0x37;
    uint16 internal constant SCATTER_ADD = 0x38;
    uint16 internal constant FULL = 0x39;
    uint16 internal constant STATE = 0x40;
}
