// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOneStep} from "../../../contracts/interfaces/IOneStep.sol";
import {Binary32} from "../../../contracts/lib/Types.sol";

/// @title AnswerTable
/// @notice A stand-in for the one step in the game's tests: it answers each question with the value
///         the test registered for it (computed off chain by the exact kernels), and says so when it
///         has none. It checks no witness; the tests of the one step itself are elsewhere.
contract AnswerTable is IOneStep {
    error NoAnswer(bytes32 question);

    mapping(bytes32 question => uint256 answer) public answers;
    mapping(uint16 op => uint256 terms) public termsOf;
    uint256 public defaultTerms = 1;

    /// @notice Registers the value `evaluate` gives for `question` (see `questionOf`).
    function answer(bytes32 question, Binary32 value) external {
        answers[question] = (uint256(1) << 32) | Binary32.unwrap(value);
    }

    /// @notice Sets `maxTerms` for every op without a value of its own.
    function setDefaultTerms(uint256 terms) external {
        defaultTerms = terms;
    }

    /// @notice The key of one question to the one step.
    function questionOf(
        bytes calldata prefix,
        bytes32[] calldata inputs,
        bytes calldata outputHeader,
        uint256 element,
        uint256 termStart,
        uint256 termEnd,
        Binary32 accIn
    ) public pure returns (bytes32) {
        return keccak256(abi.encode(prefix, inputs, outputHeader, element, termStart, termEnd, accIn));
    }

    /// @inheritdoc IOneStep
    function maxTerms(uint16 op) external view returns (uint256) {
        uint256 terms = termsOf[op];
        return terms == 0 ? defaultTerms : terms;
    }

    /// @inheritdoc IOneStep
    function evaluate(
        bytes calldata prefix,
        bytes32[] calldata inputs,
        bytes calldata outputHeader,
        uint256 element,
        uint256 termStart,
        uint256 termEnd,
        Binary32 accIn,
        bytes calldata
    ) external view returns (Binary32) {
        Binary32 acc = termStart == 0 ? Binary32.wrap(0) : accIn;
        bytes32 question = questionOf(prefix, inputs, outputHeader, element, termStart, termEnd, acc);
        uint256 stored = answers[question];
        if (stored == 0) revert NoAnswer(question);
        return Binary32.wrap(uint32(stored));
    }
}
