// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TaskId, Hash, Root, Folded, StateTensor} from "../lib/Types.sol";

/// @title The task pool's fault reports: a Fail that rests on a proof nobody can read
/// @notice A verifier that cannot read, parse or check a proof commits to a fault record
///         (docs/proof.md, "The fault record") instead of a trace, with `reportFault`: a Fail whose
///         every sampled position carries `+inf` and the record's commitment. A fault report names no
///         trace, so no pinpoint game is played on it (`challengeReport` and `disproveReport` refuse
///         it with `FaultReport`). Whoever disputes it shows that the proof's data exists: it
///         publishes, as calldata, the start state of a sampled segment, which the pool hashes to
///         the solver's committed checkpoint root (`publishState`). That cannot tell a proof nobody
///         served from a verifier that did not look, so it voids the report without slashing: the
///         verifier is credited its stake (no fee), the task is verified again with the same
///         randomness; in the task's last verification round the fault report is voided the same way
///         and the task settles Unverified (bounty back to the submitter, stake back to the solver,
///         nobody paid a fee or a slash): neither a verifier that fault-reports a readable proof
///         nor a solver that publishes against an honest fault report gains anything by it
///         (docs/threat-model.md, "Proofs nobody can read").
interface ITaskPoolFaults {
    /// @notice The verifier reported a Fail that rests on the fault record whose commitment is
    ///         `faultRoot` (with it, `VerificationReported` states `+inf` and `faultRoot` at every
    ///         sampled position).
    event FaultReported(TaskId indexed taskId, address indexed verifier, Root faultRoot);

    /// @notice `publisher` published the start state of sampled `segment` (the call's calldata), whose
    ///         state root `stateRoot` is checkpoint `segment` of the committed checkpoint root: the
    ///         fault report of `verifier` is void and it was credited `refunded`, its stake.
    ///         `lastRound`: the task had no verification round left and settles Unverified
    ///         (`TaskSettled` follows once no challenge is open); otherwise it is verified again
    ///         (`VerificationReopened`). Either way a challenge of the proof that was upheld fails the
    ///         task instead (`ProofFailed`).
    event StatePublished(
        TaskId indexed taskId,
        address indexed publisher,
        address indexed verifier,
        uint32 segment,
        Root stateRoot,
        uint256 refunded,
        bool lastRound
    );

    /// @notice Reports a Fail that rests on a fault record, in the verification window (the verifier,
    ///         once the randomness is drawn), like `reportVerification` with every sampled distance
    ///         `+inf`, no extra segments and `faultRoot` as every trace root (the same
    ///         `VerificationReported` event, folded into the record), and marks the report as a fault
    ///         report. A forced verifier reports another root than its record's commitment and seals
    ///         the true ones, as with any report.
    /// @dev Reverts with `WrongStatus`, `DeadlinePassed`, `NotAuthorized`, `RandomnessPending` or
    ///      `EmptyCommitment`.
    /// @param taskId The task.
    /// @param faultRoot sha256 of the fault record (docs/proof.md).
    /// @param sealedTraceRoots keccak256(abi.encode(secret, keccak256(abi.encode(trueTraceRoots)))).
    function reportFault(TaskId taskId, Root faultRoot, Hash sealedTraceRoots) external;

    /// @notice Answers a fault report, in its challenge window, by publishing the start state of the
    ///         segment at `position` of the sample: its tensors in state order (docs/commitments.md),
    ///         which the pool hashes to a state root and checks, with `proof`, as checkpoint `segment`
    ///         of the solver's committed checkpoint root. The report is void; its verifier is credited
    ///         its stake, not its fee; the task is verified again, or settles Unverified after
    ///         `maxVerificationRounds` claims. Anyone may call it once per report.
    /// @dev Reverts with `WrongStatus`, `DeadlinePassed`, `NotFaultReport`, `AlreadyVoided`,
    ///      `RecordMismatch`, `NoReport`, `InvalidPosition`, `InvalidState`, `MalformedHeader` or
    ///      `InvalidCheckpoint`.
    /// @param taskId The task.
    /// @param position A position of the report (the sample, in increasing segment order).
    /// @param history The task's folded events from `TaskSubmitted`, as logged.
    /// @param state The segment's start state, tensor by tensor in name order.
    /// @param proof The state root's siblings in the committed checkpoint tree, lowest first.
    function publishState(
        TaskId taskId,
        uint32 position,
        Folded[] calldata history,
        StateTensor[] calldata state,
        bytes32[] calldata proof
    ) external;

    /// @notice Whether the task's current report is a fault report (published against or not).
    function faultReport(TaskId taskId) external view returns (bool);
}
