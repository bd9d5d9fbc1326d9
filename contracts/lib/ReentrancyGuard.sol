// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Errors} from "./Errors.sol";

/// @title A reentrancy lock in transient storage (EIP-1153)
/// @notice Guards the functions that send ETH. The lock lives for one transaction only, so it
///         costs 200 gas instead of two storage writes.
abstract contract ReentrancyGuard {
    /// @dev keccak256("veritrain.ReentrancyGuard.lock") - 1: a slot no Solidity variable occupies.
    bytes32 private constant LOCK_SLOT = 0xeee5c7ea9279424a35f0713de1e0ad890bc7df1d935b0ade7f7f8d930a30fbf8;

    modifier nonReentrant() {
        bool locked;
        assembly ("memory-safe") {
            locked := tload(LOCK_SLOT)
        }
        if (locked) revert Errors.Reentrancy();
        assembly ("memory-safe") {
            tstore(LOCK_SLOT, 1)
        }
        _;
        assembly ("memory-safe") {
            tstore(LOCK_SLOT, 0)
        }
    }
}
