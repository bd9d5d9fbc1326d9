// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The jackpot treasury
/// @notice Receives protocol fees and slashed shares; pays rewards only when the arbitration
///         contract awards them, and recipients pull their awards.
interface IJackpot {
    /// @notice ETH was added to the reserve.
    event Funded(address indexed from, uint256 amount);
    /// @notice The governor named the arbitration contract (once, for good).
    event ArbitrationSet(address indexed arbitration);
    /// @notice The arbitration contract awarded `amount` from the reserve to `recipient`.
    event Awarded(address indexed recipient, uint256 amount, bytes32 indexed reason);
    /// @notice `recipient` withdrew its awards.
    event Withdrawn(address indexed recipient, uint256 amount);

    /// @notice Adds the ETH sent to the reserve.
    /// @dev Reverts with `ZeroAmount` when nothing is sent.
    function fund() external payable;

    /// @notice Names the arbitration contract, the only account that may award from the reserve.
    /// @dev Only the governor, only once; reverts with `NotGovernor`, `ZeroAddress` or `ArbitrationAlreadySet`.
    /// @param arbitration_ The arbitration contract.
    function setArbitration(address arbitration_) external;

    /// @notice Awards `amount` from the reserve to `recipient`, who withdraws it with `withdraw()`.
    /// @dev Only the arbitration contract; reverts with `NotArbitration`, `ZeroAddress`, `ZeroAmount`
    ///      or `InsufficientReserve`.
    /// @param recipient Who receives the award.
    /// @param amount The award in wei.
    /// @param reason An identifier the arbitration contract chooses (for example a dispute id).
    function award(address recipient, uint256 amount, bytes32 reason) external;

    /// @notice Sends the caller everything awarded to it.
    /// @dev Reverts with `NothingToWithdraw` or `TransferFailed`.
    function withdraw() external;

    /// @notice The account allowed to set the arbitration contract.
    function governor() external view returns (address);

    /// @notice The arbitration contract, or the zero address while none is set.
    function arbitration() external view returns (address);

    /// @notice What `account` may withdraw, in wei.
    function owed(address account) external view returns (uint256);

    /// @notice The sum of all awards not yet withdrawn, in wei.
    function owedTotal() external view returns (uint256);

    /// @notice The ETH available for future awards: the balance less what is owed.
    function reserve() external view returns (uint256);
}
