// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJackpot} from "../interfaces/IJackpot.sol";
import {IPinpointGame} from "../interfaces/IPinpointGame.sol";
import {TaskPoolBase} from "./TaskPoolBase.sol";
import {Sample} from "../lib/Sample.sol";
import {TaskId, Root, Randomness, Record, Params, Task, Folded} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title What the calls that dispute a report read from a task's history
/// @notice A task's roots and randomness are not stored: they are in its folded events, which a caller
///         passes as `Folded[]` and the pool checks against the task record (docs/contracts.md, "Task
///         record"). The challenges half and the fault reports (the settlement half) read them alike.
abstract contract TaskPoolHistory is TaskPoolBase {
    /// @dev What a challenge reads from a task's history: the committed roots, the randomness, and where
    ///      the current report and its trace roots are (`rootsWord`: the word of `roots`' data holding
    ///      the roots array's offset).
    struct Committed {
        Root program;
        Root checkpoints;
        Randomness randomness;
        uint256 report;
        uint256 roots;
        uint256 rootsWord;
    }

    /// @param params The deployment parameters, the pool's own.
    /// @param jackpot_ The pool's jackpot.
    /// @param game_ The pool's pinpoint game.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_) TaskPoolBase(params, jackpot_, game_) {}

    /// @notice Reads a task's history: it must rebuild the task's record. The roots a report challenge
    ///         disputes are the last report's, or the true ones a forced verifier revealed after it.
    function _committed(Task storage t, TaskId taskId, Folded[] calldata history)
        internal
        view
        returns (Committed memory c)
    {
        Record record = Record.wrap(0);
        bool reported = false;
        for (uint256 i = 0; i < history.length; ++i) {
            Folded calldata e = history[i];
            bytes32 topic = e.topic0;
            record = _chain(record, topic, taskId, e.party, e.data);
            // TaskSubmitted data: (mode, bounty, fee, specHash, programRoot, …); ProofCommitted: (cid
            // offset, checkpointRoot, …); RandomnessDrawn: (randomness, …); VerificationReported: (…, roots
            // offset in word 3, …); VerificationRevealed: (secret, forced, roots offset, deadline).
            if (topic == TaskSubmitted.selector) {
                c.program = Root.wrap(_word(e.data, 4));
            } else if (topic == ProofCommitted.selector) {
                c.checkpoints = Root.wrap(_word(e.data, 1));
            } else if (topic == RandomnessDrawn.selector) {
                c.randomness = Randomness.wrap(_word(e.data, 0));
            } else if (topic == VerificationReported.selector) {
                (c.report, c.roots, c.rootsWord, reported) = (i, i, 3, true);
            } else if (topic == VerificationRevealed.selector && _word(e.data, 1) != 0) {
                (c.roots, c.rootsWord) = (i, 2);
            }
        }
        if (Record.unwrap(record) != Record.unwrap(t.record)) revert Errors.RecordMismatch(taskId);
        if (!reported) revert Errors.NoReport(taskId);
    }

    /// @notice The segment at `position` of the current report and the trace root reported for it.
    function _reported(Task storage t, Committed memory c, Folded[] calldata history, uint32 position)
        internal
        view
        returns (uint32 segment, Root root)
    {
        (uint256 count, bytes32 value) = _element(history[c.roots].data, c.rootsWord, position);
        if (position >= count) revert Errors.InvalidPosition(position, count);
        root = Root.wrap(value);
        uint256 sampled = _sampleCount(t.segments, t.sampledSegments);
        if (position < sampled) {
            segment = Sample.segmentAt(Randomness.unwrap(c.randomness), t.segments, t.sampledSegments, position);
        } else {
            // VerificationReported data: word 1 is the offset of the extra segments.
            (, bytes32 extra) = _element(history[c.report].data, 1, position - sampled);
            segment = uint32(uint256(extra));
        }
    }

    /// @notice The length of the array whose offset is word `index` of ABI-encoded data, and its element
    ///         `at` (zero when out of range).
    function _element(bytes calldata data, uint256 index, uint256 at)
        internal
        pure
        returns (uint256 length, bytes32 value)
    {
        uint256 offset = uint256(_word(data, index));
        length = uint256(bytes32(data[offset:offset + 32]));
        if (at < length) value = bytes32(data[offset + 32 * (at + 1):offset + 32 * (at + 2)]);
    }
}
