// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Proxy} from "@openzeppelin/contracts/proxy/Proxy.sol";

/// @title PoolProxy: how a half of the task pool passes the selectors it lacks to the next half
/// @notice OpenZeppelin's `Proxy`: its payable fallback runs `_implementation()` by delegatecall on
///         this contract's storage with the call's data and value, and returns or reverts with exactly
///         what that returned. `TaskPool` passes on to the settlement half, the settlement half to the
///         challenges half, the challenges half to the fault reports' half, which has no fallback: a
///         selector no half implements (or a plain transfer) is refused.
abstract contract PoolProxy is Proxy {
    /// @dev `Proxy._delegate`, marked memory-safe: it writes memory only from offset 0 and never gives
    ///      control back to Solidity code. OpenZeppelin's own block is unmarked, which turns off the IR
    ///      optimizer's memory moves for the whole contract (the pool's code grew by 1.8 KB, to 480
    ///      bytes under the 24 KB limit, and its happy path by 6,000 gas).
    function _delegate(address implementation) internal override {
        assembly ("memory-safe") {
            calldatacopy(0, 0, calldatasize())
            let ok := delegatecall(gas(), implementation, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }
}
