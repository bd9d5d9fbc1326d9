// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IJackpot} from "./interfaces/IJackpot.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Errors} from "./lib/Errors.sol";

/// @title Jackpot
/// @notice The treasury that pays whistleblowers (PROTOCOL.md §1.8). Task pools sweep protocol fees and
///         slashed shares into it; only the arbitration contract fixed at deployment can award from it,
///         never more than a third of the reserve at once, and every award is pulled by its recipient.
/// @dev No key governs it: there is no owner and no setter. A jackpot deployed without an arbitration
///      contract (the zero address) never pays out; its reserve only grows. ETH forced in without
///      `fund()` (a self-destruct) simply joins the reserve, which is the balance less what is owed.
contract Jackpot is IJackpot, ReentrancyGuardTransient {
    /// @notice An award may take at most this fraction (1/n) of the reserve.
    uint256 public constant AWARD_CAP_DIVISOR = 3;

    /// @inheritdoc IJackpot
    address public immutable arbitration;
    /// @inheritdoc IJackpot
    uint256 public owedTotal;
    /// @inheritdoc IJackpot
    mapping(address account => uint256 amount) public owed;

    /// @param arbitration_ The only account that may award from the reserve (zero: nobody, ever).
    constructor(address arbitration_) {
        arbitration = arbitration_;
        emit ArbitrationFixed(arbitration_);
    }

    /// @inheritdoc IJackpot
    function fund() external payable {
        if (msg.value == 0) revert Errors.ZeroAmount();
        emit Funded(msg.sender, msg.value);
    }

    /// @inheritdoc IJackpot
    function award(address recipient, uint256 amount, bytes32 reason) external {
        // With no arbitration contract, `arbitration` is zero and no sender matches it.
        if (msg.sender != arbitration || msg.sender == address(0)) revert Errors.NotArbitration(msg.sender);
        if (recipient == address(0)) revert Errors.ZeroAddress();
        if (amount == 0) revert Errors.ZeroAmount();
        uint256 cap = awardCap();
        if (amount > cap) revert Errors.AwardAboveCap(amount, cap);
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

    /// @inheritdoc IJackpot
    function awardCap() public view returns (uint256) {
        return reserve() / AWARD_CAP_DIVISOR;
    }
}
