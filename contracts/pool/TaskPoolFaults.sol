// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITaskPoolFaults} from "../interfaces/ITaskPoolFaults.sol";
import {IJackpot} from "../interfaces/IJackpot.sol";
import {IPinpointGame} from "../interfaces/IPinpointGame.sol";
import {TaskPoolHistory} from "./TaskPoolHistory.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {
    TaskId,
    Hash,
    Root,
    Binary32,
    Timestamp,
    Status,
    Outcome,
    Verdict,
    Params,
    Task,
    Flag,
    Folded,
    StateTensor
} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";

/// @title TaskPoolFaults: reports that rest on a fault record, and the published state that voids one
/// @notice The pool's third half: the challenges half creates it and runs it by delegatecall, on the
///         pool's storage, for every selector it lacks (pool → settlement → challenges → this); see
///         `ITaskPoolFaults` and docs/contracts.md, "Fault reports". Called at its own address it
///         reads its own, empty storage and holds no money.
contract TaskPoolFaults is TaskPoolHistory, ITaskPoolFaults {
    /// @param params The deployment parameters, the pool's own.
    /// @param jackpot_ The pool's jackpot.
    /// @param game_ The pool's pinpoint game.
    constructor(Params memory params, IJackpot jackpot_, IPinpointGame game_)
        TaskPoolHistory(params, jackpot_, game_)
    {}

    /// @inheritdoc ITaskPoolFaults
    function reportFault(TaskId taskId, Root faultRoot, Hash sealedTraceRoots) external {
        Task storage t = _inTime(taskId, Status.Verifying);
        if (msg.sender != t.verifier) revert Errors.NotAuthorized(taskId, msg.sender);
        if (t.flags & Flag.RANDOMNESS == 0) revert Errors.RandomnessPending(taskId);
        if (Root.unwrap(faultRoot) == 0 || Hash.unwrap(sealedTraceRoots) == 0) revert Errors.EmptyCommitment();
        uint256 count = _sampleCount(t.segments, t.sampledSegments);
        Binary32[] memory distances = new Binary32[](count);
        Root[] memory roots = new Root[](count);
        for (uint256 i = 0; i < count; ++i) {
            distances[i] = Binary32.wrap(BINARY32_INFINITY);
            roots[i] = faultRoot;
        }
        Timestamp deadline = _after(_challengeWindow);
        t.outcome = Outcome.Failed;
        t.status = Status.ChallengeWindow;
        t.deadline = deadline;
        _faultRound[taskId] = t.rounds;
        // The same event and encoding as `reportVerification`'s, so the record and every reader of
        // reports are unchanged.
        _record(
            t,
            VerificationReported.selector,
            taskId,
            msg.sender,
            abi.encode(
                distances, new uint32[](0), new Binary32[](0), roots, sealedTraceRoots, Verdict.Fail, deadline
            )
        );
        emit FaultReported(taskId, msg.sender, faultRoot);
    }

    /// @inheritdoc ITaskPoolFaults
    function publishState(
        TaskId taskId,
        uint32 position,
        Folded[] calldata history,
        StateTensor[] calldata state,
        bytes32[] calldata proof
    ) external nonReentrant {
        Task storage t = _inTime(taskId, Status.ChallengeWindow);
        uint8 rounds = t.rounds;
        if (_faultRound[taskId] != rounds) revert Errors.NotFaultReport(taskId);
        uint8 flags = t.flags;
        if (flags & Flag.DEFEATED != 0) revert Errors.AlreadyVoided(taskId);
        Committed memory c = _committed(t, taskId, history);
        (uint32 segment,) = _reported(t, c, history, position);
        bytes32 root = _stateRoot(state);
        if (
            proof.length != Sha256Tree.depth(uint256(t.segments) + 1)
                || Sha256Tree.climb(root, segment, proof) != Root.unwrap(c.checkpoints)
        ) revert Errors.InvalidCheckpoint(segment);

        // Unavailability is not a lie: the verifier gets its stake back (no fee), and the report is
        // void. Nobody can tell on chain which side lied, so with no round left the task settles
        // Unverified (`_applyDefeat`): bounty and solver stake back, nobody paid a fee or a slash.
        address verifier = t.verifier;
        uint256 refunded = flags & Flag.STAKE_TAKEN == 0 ? t.bounty * _verifierStakeBps / BPS : 0;
        bool lastRound = rounds >= _maxVerificationRounds;
        emit StatePublished(taskId, msg.sender, verifier, segment, Root.wrap(root), refunded, lastRound);
        if (refunded > 0) _credit(verifier, refunded);
        t.flags = (flags & ~Flag.FORCEABLE) | Flag.DEFEATED | Flag.STAKE_TAKEN;
        if (_openChallenges[taskId] == 0) _afterDisputes(t, taskId);
    }

    /// @inheritdoc ITaskPoolFaults
    function faultReport(TaskId taskId) external view returns (bool) {
        Task storage t = _tasks[taskId];
        // A round number, not a balance: equality is the meaning.
        // slither-disable-next-line incorrect-equality
        return t.rounds != 0 && _faultRound[taskId] == t.rounds && t.status == Status.ChallengeWindow;
    }

    // ------------------------------------------------------------------ internals

    /// @notice The state root of `state` (docs/commitments.md): the Merkle root of its tensor roots.
    function _stateRoot(StateTensor[] calldata state) private view returns (bytes32) {
        uint256 count = state.length;
        if (count == 0) revert Errors.InvalidState(0);
        bytes32[] memory level = new bytes32[](uint256(1) << Sha256Tree.depth(count));
        for (uint256 i = 0; i < level.length; ++i) {
            level[i] = i < count ? _tensorRoot(state[i], i) : Sha256Tree.ZERO_LEAF;
        }
        return _merkle(level);
    }

    /// @notice The tensor root of one published tensor: its values cut into 1024-byte leaves, the last
    ///         one padded with zero bytes, the leaf level padded with zero leaves.
    function _tensorRoot(StateTensor calldata tensor, uint256 index) private view returns (bytes32) {
        uint256 numel = Sha256Tree.numel(tensor.header);
        bytes calldata data = tensor.data;
        if (data.length != numel * 4) revert Errors.InvalidState(index);
        uint256 leaves = Sha256Tree.leafCount(numel);
        bytes32[] memory level = new bytes32[](uint256(1) << Sha256Tree.depth(leaves));
        uint256 size = Sha256Tree.LEAF_BYTES;
        for (uint256 j = 0; j < level.length; ++j) {
            uint256 start = j * size;
            if (start + size <= data.length) {
                level[j] = sha256(data[start:start + size]);
            } else if (j < leaves) {
                level[j] = sha256(bytes.concat(data[start:], new bytes(start + size - data.length)));
            } else {
                level[j] = Sha256Tree.ZERO_LEAF;
            }
        }
        return Sha256Tree.tensorRoot(tensor.header, _merkle(level));
    }

    /// @notice The root of a complete tree whose lowest level is `level` (a power of two long); the
    ///         level is overwritten.
    function _merkle(bytes32[] memory level) private view returns (bytes32) {
        for (uint256 n = level.length; n > 1; n >>= 1) {
            for (uint256 i = 0; i < n >> 1; ++i) {
                level[i] = Sha256Tree.pair(level[2 * i], level[2 * i + 1]);
            }
        }
        return level[0];
    }
}
