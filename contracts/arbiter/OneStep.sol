// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Binary32, Root} from "../lib/Types.sol";
import {Errors} from "../lib/Errors.sol";
import {IOneStep, Query, Claim, Ruling, ONE_STEP_MAX_TERMS} from "../interfaces/IOneStep.sol";
import {OpCode} from "./OpCode.sol";
import {OpRecords} from "./OpRecords.sol";
import {TensorProof} from "./TensorProofs.sol";

/// @title OneStep
/// @notice The one entry point of the one-step adjudicators (`IOneStep`): every op code of the
///         trace, routed to the adjudicator of its family (elementwise, reductions, data
///         movement with `STATE`). The families are separate contracts so that each stays
///         below the contract size limit; this one forwards the call unchanged.
/// @dev Stateless; the family addresses are fixed at deployment. Calls are forwarded with
///      `staticcall` and their return data or revert data passed back as they are.
contract OneStep is IOneStep {
    /// @notice The adjudicator of ops 0x01–0x14.
    address public immutable elementwise;
    /// @notice The adjudicator of sum, amax, matmul_nt, col2im and scatter_add.
    address public immutable reductions;
    /// @notice The adjudicator of the data-movement ops and full (and of `STATE` records).
    address public immutable movement;

    /// @param elementwise_ The `ElementwiseAdjudicator`.
    /// @param reductions_ The `ReductionAdjudicator`.
    /// @param movement_ The `MovementAdjudicator`.
    constructor(address elementwise_, address reductions_, address movement_) {
        if (elementwise_ == address(0) || reductions_ == address(0) || movement_ == address(0)) {
            revert Errors.ZeroAddress();
        }
        elementwise = elementwise_;
        reductions = reductions_;
        movement = movement_;
    }

    /// @notice The adjudicator of op code `op` (reverts with `UnknownOp` for any other code).
    /// @param op A trace op code.
    /// @return The family contract that adjudicates it.
    function adjudicatorOf(uint16 op) public view returns (address) {
        if ((op >= OpCode.ADD && op <= OpCode.LDEXP) || (op >= OpCode.NEG && op <= OpCode.LOG)) {
            return elementwise;
        }
        if (op == OpCode.SUM || op == OpCode.AMAX || op == OpCode.MATMUL_NT || op == OpCode.COL2IM
                || op == OpCode.SCATTER_ADD) {
            return reductions;
        }
        if ((op >= OpCode.TRANSPOSE && op <= OpCode.IM2COL) || op == OpCode.FULL || op == OpCode.STATE) {
            return movement;
        }
        revert Errors.UnknownOp(op);
    }

    /// @inheritdoc IOneStep
    function adjudicate(bytes calldata record, Query calldata, TensorProof[] calldata, Claim[2] calldata)
        external
        view
        returns (Ruling memory)
    {
        _forward(adjudicatorOf(OpRecords.opOf(record)));
    }

    /// @inheritdoc IOneStep
    function adjudicateState(Root[] calldata, Root[2] calldata) external view returns (Ruling memory) {
        _forward(movement);
    }

    /// @inheritdoc IOneStep
    function compute(bytes calldata record, Query calldata, TensorProof[] calldata)
        external
        view
        returns (bool, Binary32, uint256)
    {
        _forward(adjudicatorOf(OpRecords.opOf(record)));
    }

    /// @inheritdoc IOneStep
    function outline(bytes calldata record, TensorProof[] calldata, uint256)
        external
        view
        returns (bool, bytes memory, uint256)
    {
        _forward(adjudicatorOf(OpRecords.opOf(record)));
    }

    /// @inheritdoc IOneStep
    function elementOf(Root, uint256, TensorProof calldata) external view returns (Binary32, bytes memory) {
        _forward(movement);
    }

    /// @inheritdoc IOneStep
    function recordHash(bytes calldata record, Root output) external pure returns (bytes32) {
        return OpRecords.hashWith(record, output);
    }

    /// @inheritdoc IOneStep
    function maxTerms() external pure returns (uint256) {
        return ONE_STEP_MAX_TERMS;
    }

    /// @dev Passes this call's calldata to `target` and returns or reverts with its answer.
    function _forward(address target) private view {
        assembly {
            calldatacopy(0, 0, calldatasize())
            let ok := staticcall(gas(), target, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            if iszero(ok) { revert(0, returndatasize()) }
            return(0, returndatasize())
        }
    }
}
