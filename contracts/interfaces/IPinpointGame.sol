// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32, Duration, GameId, Phase, Party, Reason, Root, Ruling, SourceKind, Timestamp} from "../lib/Types.sol";
import {OneStepTensorProof} from "../dispute/OneStepCall.sol";

/// @notice What a game disputes: one segment of a task, from an agreed start, and two traces of it.
struct GameSpec {
    /// The task's program root (docs/dispute.md, "Program").
    Root program;
    /// The Merkle root over the proof's checkpoint state roots, as committed on chain.
    Root checkpoints;
    /// The disputed segment: it runs from checkpoint `segment` to checkpoint `segment + 1`.
    uint32 segment;
    /// State root of checkpoint `segment`: where both replays start.
    Root startState;
    /// State root of checkpoint `segment + 1`: the claimed end the distance computation reads.
    Root claimedState;
    /// The trace root the defender stands behind (PROTOCOL.md §4: steps, then the distance).
    Root defenderTrace;
    /// The trace root the challenger stands behind.
    Root challengerTrace;
}

/// @notice The deployment parameters of the game contract; fixed at deployment.
struct GameParams {
    /// The one-step contract that computes a disputed element.
    address oneStep;
    /// The jackpot that receives the bonds of games both parties lose.
    address jackpot;
    /// Time on each party's chess clock at the start of a game.
    Duration clock;
    /// A party whose turn starts with less time than this gets this much (a last-second move
    /// cannot win a game).
    Duration extension;
    /// Wei per gas a bond is priced at.
    uint256 bondGasPrice;
    /// Gas of the most expensive answer to a move: each move's bond is `bondGasPrice · answerGas`.
    uint256 answerGas;
    /// A dissection reveals 2^dissectionBits nodes (1 to 5).
    uint8 dissectionBits;
}

/// @notice A party's op record as revealed: the record bytes, and the output's shape header and
///         Merkle root (their sha256 is the record's output root; empty header for a STATE record,
///         whose output is itself a Merkle root).
struct RecordClaim {
    bytes record;
    bytes header;
    bytes32 merkle;
}

/// @notice A program entry with its proof: the program header (hashing to the game's program
///         root), the entry's bytes and its Merkle proof in the step or distance template.
/// @dev `revealRecord` takes the whole proof and keeps the entry's digest; `proveProgram` and
///      `proveSource` then take the entry without a proof, and the header only where they read it
///      (the constants root, a dataset root).
struct EntryProof {
    bytes programHeader;
    bytes entry;
    bytes32[] proof;
}

/// @notice A step's constants (scalars, batch index tensor roots) with their proof in the
///         program's constants tree.
struct ConstantsProof {
    bytes constants;
    bytes32[] proof;
}

/// @notice One 32-byte chunk of the opponent's revealed leaf, with its proof in the keccak tree over
///         the leaf's 32 chunks (which the first revealer's move stored).
struct ChunkProof {
    uint8 chunk;
    bytes32 value;
    bytes32[] proof;
}

/// @notice Where the disputed input (or state tensor) comes from, proved from committed roots.
/// @dev The fields a source kind does not use stay empty. `Op`: `sourceRecord` with `stepProof`
///      (in the step's tree) and `traceProof` (the step root in a party's trace). `State`: for the
///      first step `root` with `tensorProof` against the start state; later, also `stateRoot`
///      (the previous step's end) with `stepProof` and `traceProof` of that step's STATE record.
///      `Start`, `Claimed`: `root` with `tensorProof`. `Batch`: `constants`. `Dataset`: nothing.
struct SourceProof {
    /// The party whose input (or tensor) the proof shows is not the source's: it loses.
    Party accused;
    /// The input slot of the disputed record (`Input` phase; ignored in the `Tensor` phase).
    uint16 slot;
    /// The accused party's record (`Input` phase only), to read the slot from.
    bytes accusedRecord;
    /// The op's program entry, without a Merkle proof (see `EntryProof`).
    EntryProof entry;
    /// Whose trace root the proofs of earlier records run to (the agreed prefix is in both).
    Party via;
    bytes sourceRecord;
    bytes32 stateRoot;
    bytes32 root;
    bytes32[] stepProof;
    bytes32[] traceProof;
    bytes32[] tensorProof;
    ConstantsProof constants;
}

/// @notice Everything the contract keeps about one game.
struct GameView {
    Phase phase;
    Ruling ruling;
    Reason reason;
    /// Tree levels left below the current nodes (descent phases).
    uint8 height;
    /// Bit 0: the defender has moved in this round; bit 1: the challenger.
    uint8 moved;
    /// The current round (counted from 1).
    uint16 round;
    /// Whether the bonds of the ended game have been paid out.
    bool paid;
    address defender;
    address challenger;
    address creator;
    uint32 firstStep;
    uint32 stepCount;
    uint32 stepOps;
    uint32 distanceOps;
    uint32 stateTensors;
    /// The disputed step (`stepCount`: the distance computation), once the steps are bisected.
    uint32 step;
    /// The disputed op of that step, once its ops are bisected.
    uint32 op;
    /// The op code the program prescribes for the disputed op, once the first record is revealed.
    uint16 opCode;
    /// Whether the element level descends a state's tensor roots (a STATE record).
    bool stateTree;
    /// Index of the current nodes at their depth (descents), or of the revealed leaf.
    uint64 index;
    /// Elements of the disputed op's output.
    uint64 numel;
    /// The disputed output element (or the state's tensor index).
    uint64 element;
    /// Reduction terms per output element (K), from the program (once the first leaf is revealed).
    uint64 terms;
    /// The longest stretch of terms the one step computes for the op (0 until the first leaf).
    uint64 stretch;
    /// The partial results' interval: P(lo) agreed, P(hi) disputed.
    uint64 lo;
    uint64 hi;
    Binary32 accLo;
    /// Each party's P(hi).
    Binary32[2] values;
    /// Each party's time left when its current turn started (or after its last move).
    Duration[2] left;
    /// When each party's current turn started; zero while it owes no move.
    Timestamp[2] since;
    /// Bonds each party has posted (the challenger's include the creation's).
    uint256[2] bonds;
    Root program;
    Root startState;
    Root claimedState;
    Root[2] traces;
    /// Each party's current node (descents) or revealed record hash.
    bytes32[2] nodes;
    /// The claim the defender stands behind (several games may dispute one claim).
    bytes32 claim;
}

/// @notice How the games against one claim stand.
struct ClaimRecord {
    uint32 open;
    uint32 defended;
    uint32 lost;
}

/// @title The pinpoint game's events
/// @notice Everything a game does is logged here, enough to rebuild it from logs alone (docs/dispute.md,
///         "Events"). Both halves of the game's code emit them from the game's address.
interface IPinpointGameEvents {
    /// @notice A game started.
    event GameCreated(
        GameId indexed gameId,
        address indexed defender,
        address indexed challenger,
        address creator,
        bytes32 claim,
        GameSpec spec,
        bytes programHeader,
        uint32 firstStep,
        uint32 stepCount,
        uint256 bond
    );
    /// @notice A party revealed the 2^h nodes below its current node at level `phase`, position `index`.
    event Dissected(
        GameId indexed gameId, Party indexed party, uint16 round, Phase phase, uint64 index, uint8 height, bytes32[] nodes
    );
    /// @notice Both parties revealed: the game moved to the first node where they differ.
    event Narrowed(GameId indexed gameId, Phase phase, uint64 index, uint8 height);
    /// @notice The game entered a level (`at`: the step, the op or the output's leaf count).
    event LevelEntered(GameId indexed gameId, Phase phase, uint64 at, uint8 height);
    /// @notice A party revealed its record of the disputed op.
    event RecordRevealed(GameId indexed gameId, Party indexed party, uint16 round, bytes record, bytes header, bytes32 merkle);
    /// @notice The program entry of the disputed op was proved (with the first record revealed).
    event EntryProved(GameId indexed gameId, uint32 step, uint32 op, bytes entry);
    /// @notice A party revealed its leaf `index` of the disputed output.
    event LeafRevealed(GameId indexed gameId, Party indexed party, uint16 round, uint64 index, bytes leaf);
    /// @notice The disputed element and each party's value of it.
    event ElementFound(GameId indexed gameId, uint64 element, Binary32 defenderValue, Binary32 challengerValue, uint64 terms);
    /// @notice A party posted its partial results at the interval's dissection points.
    event TermsPosted(GameId indexed gameId, Party indexed party, uint16 round, uint64 lo, uint64 hi, Binary32[] values);
    /// @notice Both posted: the interval of partial results narrowed.
    event TermsNarrowed(GameId indexed gameId, uint64 lo, uint64 hi, Binary32 accLo, Binary32 defenderValue, Binary32 challengerValue);
    /// @notice A proof that the accused party's record is not the program's decided the game.
    event ProgramProved(GameId indexed gameId, address indexed prover, Party accused, bytes entry, bytes constants);
    /// @notice A proof that the accused party's input (or state tensor) is not where the program says
    ///         it comes from (`root`) decided the game.
    event SourceProved(
        GameId indexed gameId,
        address indexed prover,
        Party accused,
        uint16 slot,
        SourceKind kind,
        uint32 index,
        bytes32 root
    );
    /// @notice The one step computed the disputed value (`defined` false: the op is not defined on
    ///         the agreed inputs, and no claim can be right). Its input leaves are in the calldata
    ///         and, being leaves of the agreed inputs, recomputable by a replay of the segment.
    event OneStepEvaluated(GameId indexed gameId, address indexed prover, bool defined, Binary32 value);
    /// @notice The game ended: its `bonds` go to the winner, or to the jackpot if both lost.
    event GameResolved(GameId indexed gameId, Ruling ruling, Reason reason, uint256 bonds);
    /// @notice Someone published the game's transcript.
    event TranscriptPosted(GameId indexed gameId, address indexed author, string cid);
    /// @notice The winner of a game took its bonds.
    event BondsWithdrawn(GameId indexed gameId, address indexed winner, uint256 amount);
    /// @notice The bonds of a game both parties lost went to the jackpot.
    event BondsSwept(GameId indexed gameId, uint256 amount);
}

/// @title The pinpoint game
/// @notice Two parties agree where a training segment starts and disagree on its trace. They bisect
///         the trace's steps, the disputed step's ops, the disputed op's output elements and, for a
///         long reduction, its partial results, each level a Merkle descent or a bisection whose
///         interval the chain keeps; the one step computes the element and rules (PROTOCOL.md §5,
///         docs/dispute.md). Chess clocks, bonds that pay the winner, pull payments.
interface IPinpointGame is IPinpointGameEvents {
    /// @notice Starts a game over segment `spec.segment`; the caller pays the challenger's first bond.
    /// @dev Checks the program header against `spec.program` and both states against
    ///      `spec.checkpoints`; the creator vouches that those two roots are the task's.
    /// @param spec What is disputed.
    /// @param programHeader The program header (sha256 = `spec.program`).
    /// @param startProof Merkle proof of `spec.startState` at index `segment` of the checkpoint tree.
    /// @param claimedProof Merkle proof of `spec.claimedState` at index `segment + 1`.
    /// @param defender The account that stands behind `spec.defenderTrace`.
    /// @param challenger The account that stands behind `spec.challengerTrace`.
    /// @return gameId The new game.
    function create(
        GameSpec calldata spec,
        bytes calldata programHeader,
        bytes32[] calldata startProof,
        bytes32[] calldata claimedProof,
        address defender,
        address challenger
    ) external payable returns (GameId gameId);

    /// @notice Reveals the nodes below the caller's current node (phases `Steps`, `Ops`, `Element`).
    /// @param gameId The game.
    /// @param nodes The caller's 2^h nodes, h = min(dissectionBits, height), left to right.
    /// @param opponentNodes The opponent's nodes of this round if it moved first, else empty.
    function dissect(GameId gameId, bytes32[] calldata nodes, bytes32[] calldata opponentNodes) external payable;

    /// @notice Reveals the caller's record of the disputed op (phase `Record`).
    /// @dev The first revealer also proves the op's program entry (its op code and reduction
    ///      length): the game keeps the entry's digest, so `proveProgram` and `proveSource` show
    ///      the entry without a Merkle proof. If both records agree in structure and not in op
    ///      code with the entry, both lose (`Reason.Program`).
    /// @param gameId The game.
    /// @param mine The caller's record, output header and output Merkle root.
    /// @param theirs The opponent's, if it revealed first this round; else empty.
    /// @param entry The op's program entry with its proof (first revealer; else empty).
    function revealRecord(
        GameId gameId,
        RecordClaim calldata mine,
        RecordClaim calldata theirs,
        EntryProof calldata entry
    ) external payable;

    /// @notice Reveals the caller's leaf of the disputed output (phase `Leaf`).
    /// @dev The second revealer names a 32-byte chunk where the two leaves differ, with the
    ///      opponent's chunk and its proof.
    /// @param gameId The game.
    /// @param leaf The caller's 1024 leaf bytes.
    /// @param theirs The opponent's differing chunk (second revealer; else empty).
    function revealLeaf(GameId gameId, bytes calldata leaf, ChunkProof calldata theirs) external payable;

    /// @notice Posts the caller's partial results at the interval's dissection points (phase `Terms`).
    /// @param gameId The game.
    /// @param values P at each point of `termPoints(gameId)`.
    /// @param opponentValues The opponent's, if it posted first this round; else empty.
    function bisectTerms(GameId gameId, Binary32[] calldata values, Binary32[] calldata opponentValues)
        external
        payable;

    /// @notice Decides a game whose records differ in op code, attributes or output shape (phase
    ///         `Program`) by showing that the accused party's record is not what the program
    ///         prescribes: it loses. Anyone may call.
    /// @param gameId The game.
    /// @param accused The party whose record is shown wrong.
    /// @param record Its revealed record.
    /// @param entry The op's program entry as proved with the first record (no Merkle proof; the
    ///        program header only when the constants are read).
    /// @param constants The step's constants (when the entry has scalar attributes).
    function proveProgram(
        GameId gameId,
        Party accused,
        RecordClaim calldata record,
        EntryProof calldata entry,
        ConstantsProof calldata constants
    ) external;

    /// @notice Decides a game whose records differ in an input (phase `Input`), or whose STATE
    ///         records differ in a tensor (phase `Tensor`), by showing that the accused party's root
    ///         is not the source's: it loses. Anyone may call.
    /// @param gameId The game.
    /// @param proof The source and its proof.
    function proveSource(GameId gameId, SourceProof calldata proof) external;

    /// @notice Computes the disputed value with the one step and decides the game (phase `OneStep`):
    ///         the party whose value matches wins; if neither does, both lose. Anyone may call.
    /// @param gameId The game.
    /// @param record The disputed record without its output root (both parties' agree).
    /// @param inputs One proof per input of the record, with the leaves the one step reads.
    function oneStep(GameId gameId, bytes calldata record, OneStepTensorProof[] calldata inputs) external;

    /// @notice Ends a game in which a party that owes a move has run out of time: it loses (both
    ///         lose if both have). Anyone may call.
    /// @param gameId The game.
    function timeout(GameId gameId) external;

    /// @notice Publishes the CID of the game's transcript (an ended game; a party or the creator).
    /// @param gameId The game.
    /// @param cid The transcript's CID.
    function postTranscript(GameId gameId, string calldata cid) external;

    /// @notice Sends the caller, in one transfer, the bonds of every listed game it won and has not
    ///         been paid for (games it did not win, or not yet ended, are skipped).
    /// @dev Reverts with `NothingToWithdraw` when that is nothing, `TransferFailed` when refused.
    /// @param gameIds The games.
    function withdraw(GameId[] calldata gameIds) external;

    /// @notice Sends the bonds of every listed game both parties lost to the jackpot. Anyone may call.
    /// @dev Reverts with `NothingToSweep` when no listed game has such bonds.
    /// @param gameIds The games.
    function sweepJackpot(GameId[] calldata gameIds) external;

    /// @notice A game.
    /// @param gameId The game.
    function game(GameId gameId) external view returns (GameView memory);

    /// @notice The bond every bonded move (and the creation) carries, in wei.
    function requiredBond() external view returns (uint256);

    /// @notice The points at which the current round of the `Terms` phase posts partial results.
    /// @param gameId The game.
    function termPoints(GameId gameId) external view returns (uint64[] memory);

    /// @notice Seconds a party has left now (0 once run out).
    /// @param gameId The game.
    /// @param party The party.
    function timeLeft(GameId gameId, Party party) external view returns (uint256);

    /// @notice How the games against claim `claim` stand.
    /// @param claim A claim key (`claimKey`).
    function claimRecord(bytes32 claim) external view returns (ClaimRecord memory);

    /// @notice The key of the claim a game disputes: games against one claim share it.
    function claimKey(address creator, Root program, Root checkpoints, uint32 segment, Root defenderTrace, address defender)
        external
        pure
        returns (bytes32);

    /// @notice Who takes a game's bonds and how much they are: the winner, the jackpot (both lost),
    ///         or nobody yet (the zero address while the game runs).
    /// @param gameId The game.
    /// @return to The recipient.
    /// @return amount The bonds, in wei.
    /// @return paid Whether they have been paid.
    function payout(GameId gameId) external view returns (address to, uint256 amount, bool paid);

    /// @notice The id the next game gets.
    function nextGameId() external view returns (uint64);
}
