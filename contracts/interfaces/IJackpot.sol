// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title The jackpot treasury
/// @notice Receives protocol fees and slashed shares; pays rewards only when the arbitration
///         contract fixed at deployment awards them (each award at most a third of the reserve),
///         and recipients pull their awards.
interface IJackpot {
    /// @notice The arbitration contract was fixed at deployment (zero: the jackpot never pays out).
    event ArbitrationFixed(address indexed arbitration);
    /// @notice ETH was added to the reserve.
    event Funded(address indexed from, uint256 amount);
    /// @notice The arbitration contract awarded `amount` from the reserve to `recipient`.
    event Awarded(address indexed recipient, uint256 amount, bytes32 indexed reason);
    /// @notice `recipient` withdrew its awards.
    event Withdrawn(address indexed recipient, uint256 amount);

    /// @notice Adds the ETH sent to the reserve.
    /// @dev Reverts with `ZeroAmount` when nothing is sent.
    function fund() external payable;

    /// @notice Awards `amount` from the reserve to `recipient`, who withdraws it with `withdraw()`.
    /// @dev Only the arbitration contract; reverts with `NotArbitration`, `ZeroAddress`, `ZeroAmount`
    ///      or `AwardAboveCap` (more than `awardCap()`).
    /// @param recipient Who receives the award.
    /// @param amount The award in wei.
    /// @param reason An identifier the arbitration contract chooses (for example a dispute id).
    function award(address recipient, uint256 amount, bytes32 reason) external;

    /// @notice Sends the caller everything awarded to it.
    /// @dev Reverts with `NothingToWithdraw` or `TransferFailed`.
    function withdraw() external;

    /// @notice The only account that may award from the reserve, fixed at deployment (zero: nobody).
    function arbitration() external view returns (address);

    /// @notice What `account` may withdraw, in wei.
    function owed(address account) external view returns (uint256);

    /// @notice The sum of all awards not yet withdrawn, in wei.
    function owedTotal() external view returns (uint256);

    /// @notice The ETH available for future awards: the balance less what is owed.
    function reserve() external view returns (uint256);

    /// @notice The largest award possible now: a third of the reserve, rounded down.
    function awardCap() external view returns (uint256);
}
