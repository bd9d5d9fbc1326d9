// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {RecordClaim, EntryProof, ConstantsProof, SourceProof} from "../interfaces/IPinpointGame.sol";
import {Errors} from "../lib/Errors.sol";
import {Sha256Tree} from "../lib/Sha256Tree.sol";
import {Root, SourceKind} from "../lib/Types.sol";
import {Game} from "./PinpointGameBase.sol";
import {ProgramFormat, EntryLayout, RecordLayout} from "./ProgramFormat.sol";

/// @notice Where a disputed input (or state tensor) comes from, and whether the accused's differs.
struct SourceVerdict {
    uint16 slot;
    SourceKind kind;
    uint32 index;
    bytes32 truth;
    bool bad;
}

/// @title ProgramChecks
/// @notice What the pinpoint game's proofs claim about a task's program (docs/dispute.md,
///         "Program"), checked against a game's commitments: the disputed op's entry, whether a
///         record's op code, attributes and output shape are the entry's, and where an input comes
///         from. Every answer follows from the game's roots and the proof alone.
library ProgramChecks {
    /// @notice The program entry of the game's disputed op, proved against the program; also returns
    ///         the entry's sha256 (which the game keeps: later proofs show the entry without a proof).
    function proveEntry(Game storage g, EntryProof calldata e) internal view returns (EntryLayout memory, bytes32 digest) {
        checkHeader(g, e.programHeader);
        bool distance = g.step == g.stepCount;
        digest = sha256(e.entry);
        Sha256Tree.verify(
            digest,
            g.op,
            e.proof,
            Sha256Tree.depth(distance ? g.distanceOps : g.stepOps),
            ProgramFormat.template(e.programHeader, distance)
        );
        return (ProgramFormat.entry(e.entry), digest);
    }

    /// @notice The program entry of the game's disputed op, as proved when the first record was
    ///         revealed (`entry` hashes to the kept digest; it comes without a Merkle proof). The
    ///         program header is checked where it is read.
    function knownEntry(Game storage g, EntryProof calldata e) internal view returns (EntryLayout memory) {
        if (e.proof.length != 0) revert Errors.InvalidMerkleProof();
        bytes32 given = sha256(e.entry);
        if (given != g.scratch) revert Errors.ProgramMismatch(g.scratch, given);
        return ProgramFormat.entry(e.entry);
    }

    /// @notice Reverts with `ProgramMismatch` unless `header` is the game's program header.
    function checkHeader(Game storage g, bytes calldata header) internal view {
        bytes32 program = Root.unwrap(g.program);
        bytes32 given = sha256(header);
        if (given != program) revert Errors.ProgramMismatch(program, given);
    }

    /// @notice Whether the accused party's record differs in structure (op code, attributes, input
    ///         count, output shape) from what the program prescribes (`nodes`: the record hashes).
    function programVerdict(
        Game storage g,
        uint256 accused,
        RecordClaim calldata record,
        EntryProof calldata e,
        ConstantsProof calldata k
    ) internal view returns (bool bad) {
        RecordLayout memory r = ProgramFormat.checkRecord(record, g.nodes[accused], accused);
        EntryLayout memory l = knownEntry(g, e);
        if (ProgramFormat.usesScalars(e.entry, l)) proveConstants(g, e.programHeader, k);
        bytes memory prefix = ProgramFormat.expectedPrefix(e.entry, l, k.constants);
        bad = ProgramFormat.structure(record, r) != keccak256(abi.encodePacked(prefix, e.entry[l.headerAt:]));
    }

    /// @notice Where the disputed input (`tensor` false: `nodes` are the record hashes) or state
    ///         tensor (`tensor` true: `nodes` are the parties' tensor roots) comes from, and whether
    ///         the accused party's root differs from it.
    function sourceVerdict(Game storage g, SourceProof calldata s, bool tensor)
        internal
        view
        returns (SourceVerdict memory v)
    {
        EntryLayout memory l = knownEntry(g, s.entry);
        uint256 accused = uint8(s.accused);
        bytes32 root;
        uint256 slot;
        if (tensor) {
            slot = g.element;
            root = g.nodes[accused];
        } else {
            slot = s.slot;
            root = _inputOf(s.accusedRecord, g.nodes[accused], accused, slot);
        }
        (SourceKind kind, uint256 index) = ProgramFormat.source(s.entry.entry, l, slot);
        v.slot = uint16(slot);
        v.kind = kind;
        v.index = uint32(index);
        v.truth = _sourceRoot(g, kind, index, s);
        v.bad = root != v.truth;
    }

    /// @notice Proves the constants of the game's disputed step (a training step).
    function proveConstants(Game storage g, bytes calldata programHeader, ConstantsProof calldata k) internal view {
        if (g.step >= g.stepCount) revert Errors.InvalidSource(uint8(SourceKind.Batch), g.step);
        checkHeader(g, programHeader);
        Sha256Tree.verify(
            sha256(k.constants),
            uint256(g.firstStep) + g.step,
            k.proof,
            Sha256Tree.depth(ProgramFormat.facts(programHeader).steps),
            ProgramFormat.constantsRoot(programHeader)
        );
    }

    function _inputOf(bytes calldata record, bytes32 leaf, uint256 party, uint256 slot) private view returns (bytes32) {
        if (sha256(record) != leaf) revert Errors.NotCommitted(uint8(party));
        return ProgramFormat.input(record, ProgramFormat.record(record), slot);
    }

    /// The root a source of the program names, proved from the game's commitments.
    function _sourceRoot(Game storage g, SourceKind kind, uint256 index, SourceProof calldata s)
        private
        view
        returns (bytes32)
    {
        if (kind == SourceKind.Op) {
            if (index >= g.op) revert Errors.InvalidSource(uint8(kind), index);
            _checkInTrace(g, sha256(s.sourceRecord), index, g.step, s);
            return ProgramFormat.output(s.sourceRecord);
        }
        if (kind == SourceKind.Dataset) {
            checkHeader(g, s.entry.programHeader);
            return ProgramFormat.datasetRoot(s.entry.programHeader, index);
        }
        if (kind == SourceKind.Batch) {
            proveConstants(g, s.entry.programHeader, s.constants);
            return ProgramFormat.batchRoot(s.constants.constants, index);
        }
        bytes32 state;
        if (kind == SourceKind.Start || (kind == SourceKind.State && g.step == 0)) {
            state = Root.unwrap(g.startState);
        } else if (kind == SourceKind.Claimed) {
            state = Root.unwrap(g.claimedState);
        } else {
            // The state a step starts from is the output of the previous step's STATE record.
            bytes32 record = sha256(ProgramFormat.stateRecord(s.stateRoot));
            _checkInTrace(g, record, g.stepOps - 1, g.step - 1, s);
            state = s.stateRoot;
        }
        Sha256Tree.verify(s.root, index, s.tensorProof, Sha256Tree.depth(g.stateTensors), state);
        return s.root;
    }

    /// Checks that `leaf` is record `index` of step `step` in the trace of party `s.via`.
    function _checkInTrace(Game storage g, bytes32 leaf, uint256 index, uint256 step, SourceProof calldata s)
        private
        view
    {
        uint256 levels = Sha256Tree.depth(step < g.stepCount ? g.stepOps : g.distanceOps);
        if (s.stepProof.length != levels || index >> levels != 0) revert Errors.InvalidMerkleProof();
        bytes32 stepRoot = Sha256Tree.climb(leaf, index, s.stepProof);
        Sha256Tree.verify(
            stepRoot,
            step,
            s.traceProof,
            Sha256Tree.depth(uint256(g.stepCount) + 1),
            Root.unwrap(g.traces[uint8(s.via)])
        );
    }
}
