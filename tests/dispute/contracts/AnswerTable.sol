// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOneStepCompute, OneStepQuery, OneStepTensorProof} from "../../../contracts/dispute/OneStepCall.sol";
import {Binary32} from "../../../contracts/lib/Types.sol";

/// @title AnswerTable
/// @notice A stand-in for the one step in the game's tests: it answers each question with the value
///         the test registered for it (computed off chain by the exact kernels), and says so when it
///         has none. It reads no proofs; the one step itself is tested with the arbiter.
contract AnswerTable is IOneStepCompute {
    error NoAnswer(bytes32 question);

    mapping(bytes32 question => uint256 answer) public answers;
    uint256 public stretch = 1;

    /// @notice Registers the value `compute` gives for `question` (see `questionOf`).
    function answer(bytes32 question, Binary32 value, bool defined) external {
        answers[question] = (uint256(defined ? 2 : 1) << 32) | Binary32.unwrap(value);
    }

    /// @notice Sets `maxTerms`.
    function setMaxTerms(uint256 terms) external {
        stretch = terms;
    }

    /// @notice The key of one question to the one step.
    function questionOf(bytes calldata record, uint256 element, uint256 termFrom, uint256 termTo, Binary32 agreed)
        public
        pure
        returns (bytes32)
    {
        Binary32 acc = termFrom == 0 ? Binary32.wrap(0) : agreed;
        return keccak256(abi.encode(record, element, termFrom, termTo, acc));
    }

    /// @inheritdoc IOneStepCompute
    function maxTerms() external view returns (uint256) {
        return stretch;
    }

    /// @inheritdoc IOneStepCompute
    function compute(bytes calldata record, OneStepQuery calldata query, OneStepTensorProof[] calldata)
        external
        view
        returns (bool defined, Binary32 value, uint256 terms)
    {
        bytes32 question = questionOf(record, query.element, query.termFrom, query.termTo, query.agreed);
        uint256 stored = answers[question];
        if (stored == 0) revert NoAnswer(question);
        return (stored >> 32 == 2, Binary32.wrap(uint32(stored)), 0);
    }
}
