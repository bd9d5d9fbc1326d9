// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Dissection
/// @notice The evenly spaced points at which a `Terms` round of the pinpoint game posts partial
///         results: at most 2^bits − 1 points strictly inside the interval (lo, hi).
library Dissection {
    /// @notice How many points a round posts inside (lo, hi) (hi − lo ≥ 2).
    function count(uint256 lo, uint256 hi, uint256 bits) internal pure returns (uint256) {
        uint256 most = (uint256(1) << bits) - 1;
        uint256 inside = hi - lo - 1;
        return inside < most ? inside : most;
    }

    /// @notice Point `k` (1-based) of `points` evenly spaced points strictly inside (lo, hi).
    function point(uint256 lo, uint256 hi, uint256 points, uint256 k) internal pure returns (uint256) {
        return lo + ((hi - lo) * k) / (points + 1);
    }
}
