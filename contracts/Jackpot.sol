// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJackpot} from "./interfaces/IJackpot.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Errors} from "./lib/Errors.sol";

/// @title Jackpot
/// @notice The treasury that pays whistleblowers (PROTOCOL.md §1.8). Task pools sweep protocol fees and
///         slashed shares into it; only the arbitration contract, named once by the governor, can award
///         from it, and every award is pulled by its recipient.
/// @dev Until an arbitration contract is named the reserve only grows. ETH forced in without `fund()`
///      (a self-destruct) simply joins the reserve, which is the balance less what is owed.
contract Jackpot is IJackpot, ReentrancyGuardTransient {
    /// @inheritdoc IJackpot
    address public immutable governor;
    /// @inheritdoc IJackpot
    address public arbitration;
    /// @inheritdoc IJackpot
    uint256 public owedTotal;
    /// @inheritdoc IJackpot
    mapping(address account => uint256 amount) public owed;

    /// @param governor_ The account that may name the arbitration contract.
    constructor(address governor_) {
        if (governor_ == address(0)) revert Errors.ZeroAddress();
        governor = governor_;
    }

    /// @inheritdoc IJackpot
    function fund() external payable {
        if (msg.value == 0) revert Errors.ZeroAmount();
        emit Funded(msg.sender, msg.value);
    }

    /// @inheritdoc IJackpot
    function setArbitration(address arbitration_) external {
        if (msg.sender != governor) revert Errors.NotGovernor(msg.sender);
        if (arbitration_ == address(0)) revert Errors.ZeroAddress();
        if (arbitration != address(0)) revert Errors.ArbitrationAlreadySet(arbitration);
        arbitration = arbitration_;
        emit ArbitrationSet(arbitration_);
    }

    /// @inheritdoc IJackpot
    function award(address recipient, uint256 amount, bytes32 reason) external {
        // While no arbitration contract is named, `arbitration` is zero and no sender matches it.
        if (msg.sender != arbitration) revert Errors.NotArbitration(msg.sender);
        if (recipient == address(0)) revert Errors.ZeroAddress();
        if (amount == 0) revert Errors.ZeroAmount();
        uint256 available = reserve();
        if (amount > available) revert Errors.InsufficientReserve(amount, available);
        owed[recipient] += amount;
        owedTotal += amount;
        emit Awarded(recipient, amount, reason);
    }

    /// @inheritdoc IJackpot
    function withdraw() external nonReentrant {
        uint256 amount = owed[msg.sender];
        if (amount == 0) revert Errors.NothingToWithdraw(msg.sender);
        owed[msg.sender] = 0;
        owedTotal -= amount;
        emit Withdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert Errors.TransferFailed(msg.sender, amount);
    }

    /// @inheritdoc IJackpot
    function reserve() public view returns (uint256) {
        return address(this).balance - owedTotal;
    }
}
