// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Probe
/// @notice A small contract the chain-access tests drive: events, payable calls and every
///         kind of revert (custom error, string, panic) the executor must decode.
contract Probe {
    error TooSmall(uint256 given, uint256 minimum);
    error AlreadyDone(uint256 id, address by);

    event Poked(uint256 indexed id, address indexed by, string note, uint256 value);
    event Done(uint256 indexed id, bytes32 tag);

    uint256 public pokes;
    mapping(uint256 => address) public doneBy;

    /// @notice Count a poke and log it.
    function poke(uint256 id, string calldata note) external payable {
        pokes += 1;
        emit Poked(id, msg.sender, note, msg.value);
    }

    /// @notice Revert with a custom error unless `given >= minimum`.
    function atLeast(uint256 given, uint256 minimum) external {
        if (given < minimum) revert TooSmall(given, minimum);
        pokes += 1;
    }

    /// @notice Mark `id` done once; a second call reverts with a custom error.
    function once(uint256 id, bytes32 tag) external {
        if (doneBy[id] != address(0)) revert AlreadyDone(id, doneBy[id]);
        doneBy[id] = msg.sender;
        emit Done(id, tag);
    }

    /// @notice Revert with a plain string.
    function failWithString() external pure {
        revert("plain reason");
    }

    /// @notice Revert with a panic (division by zero).
    function divide(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }
}
