// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title Sample: the segments a task's randomness selects, as the agents compute them
/// @notice For S segments and s random ones, the sample is every segment when S ≤ s + 2; otherwise the
///         first, the last, and s distinct middle segments (1 … S − 2) drawn by a partial Fisher–Yates
///         shuffle of pool[i] = i + 1 (for i in 0 … s − 1: r = i + below(m − i), swap pool[i], pool[r],
///         m = S − 2), all in increasing order. The draws read the stream whose block j is
///         sha256("veritrain/segments/2" ‖ R ‖ u64be(j)), four big-endian 64-bit words per block;
///         below(n) takes the next word x, discards it while x ≥ 2^64 − (2^64 mod n), and gives x mod n
///         (agents/learning/selection.py and prng.py define the same).
library Sample {
    bytes internal constant DOMAIN = "veritrain/segments/2";

    /// @dev A stream read word by word.
    struct Stream {
        bytes32 randomness;
        uint64 block_;
        uint8 word;
        bytes32 current;
    }

    /// @notice The segment at `position` of the sample (increasing order) of a task with `segments`
    ///         segments and `sampled` random ones, for randomness `randomness`.
    /// @dev The caller checks `position < min(segments, sampled + 2)`.
    function segmentAt(bytes32 randomness, uint32 segments, uint16 sampled, uint256 position)
        internal
        pure
        returns (uint32)
    {
        if (uint256(segments) <= uint256(sampled) + 2) return uint32(position);
        if (position == 0) return 0;
        if (position == uint256(sampled) + 1) return segments - 1;
        uint32[] memory drawn = draws(randomness, segments, sampled);
        return drawn[position - 1];
    }

    /// @notice The s middle segments drawn, in increasing order (S > s + 2).
    function draws(bytes32 randomness, uint32 segments, uint16 sampled) internal pure returns (uint32[] memory out) {
        uint256 m = uint256(segments) - 2;
        // The shuffle touches at most 2s positions of the pool: keep those, sparse.
        uint256[] memory keys = new uint256[](2 * uint256(sampled));
        uint256[] memory values = new uint256[](2 * uint256(sampled));
        uint256 used = 0;
        Stream memory stream = Stream(randomness, 0, 4, bytes32(0));
        out = new uint32[](sampled);
        for (uint256 i = 0; i < sampled; ++i) {
            uint256 r = i + _below(stream, m - i);
            uint256 vi;
            uint256 vr;
            (vi, used) = _slot(keys, values, used, i);
            (vr, used) = _slot(keys, values, used, r);
            // swap pool[i], pool[r]; pool[i] is final from here on.
            _set(keys, values, used, i, vr);
            _set(keys, values, used, r, vi);
            out[i] = uint32(vr);
        }
        // Insertion sort: s is small.
        for (uint256 i = 1; i < out.length; ++i) {
            uint32 v = out[i];
            uint256 j = i;
            while (j > 0 && out[j - 1] > v) {
                out[j] = out[j - 1];
                --j;
            }
            out[j] = v;
        }
    }

    /// @notice pool[index] (its slot added if new, holding index + 1), and the slots used.
    function _slot(uint256[] memory keys, uint256[] memory values, uint256 used, uint256 index)
        private
        pure
        returns (uint256 value, uint256)
    {
        for (uint256 k = 0; k < used; ++k) {
            if (keys[k] == index) return (values[k], used);
        }
        keys[used] = index;
        values[used] = index + 1;
        return (index + 1, used + 1);
    }

    function _set(uint256[] memory keys, uint256[] memory values, uint256 used, uint256 index, uint256 value)
        private
        pure
    {
        for (uint256 k = 0; k < used; ++k) {
            if (keys[k] == index) {
                values[k] = value;
                return;
            }
        }
    }

    /// @notice An unbiased integer in [0, n), 1 ≤ n < 2^64.
    function _below(Stream memory stream, uint256 n) private pure returns (uint256) {
        uint256 limit = (1 << 64) - ((1 << 64) % n);
        while (true) {
            uint256 x = _next(stream);
            if (x < limit) return x % n;
        }
    }

    function _next(Stream memory stream) private pure returns (uint256 x) {
        if (stream.word == 4) {
            stream.current = sha256(abi.encodePacked(DOMAIN, stream.randomness, stream.block_));
            stream.block_ += 1;
            stream.word = 0;
        }
        x = uint64(uint256(stream.current) >> (192 - 64 * uint256(stream.word)));
        stream.word += 1;
    }
}
