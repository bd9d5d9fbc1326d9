"""Signed transactions read offline: who sent what to which contract, from the raw bytes alone.

A pinpoint game's transcript carries every move as the signed transaction its party broadcast.
``read_signed(raw)`` decodes one (legacy, EIP-2930 or EIP-1559), recovers the sender from its
signature and gives its hash, so an auditor with no chain knows that the move's arguments are
the ones its party signed: an edited argument no longer matches its transaction, and an edited
transaction no longer recovers to its party.
"""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from agents.audit.errors import AuditInputError


@dataclass(frozen=True)
class SignedCall:
    """One signed transaction: its hash, sender, chain, recipient, value and calldata."""

    tx_hash: str
    sender: str
    chain_id: int | None
    to: str | None
    value: int
    data: bytes


def _int(item: bytes) -> int:
    return int.from_bytes(item, "big") if item else 0


def read_signed(raw: bytes, what: str = "transaction") -> SignedCall:
    """The transaction ``raw`` (as ``eth_getRawTransactionByHash`` gives it), its sender
    recovered; ``AuditInputError`` naming ``what`` if the bytes are not a signed transaction."""
    try:
        if not raw:
            raise ValueError("no bytes")
        if raw[0] >= 0xC0:
            fields = rlp.decode(raw)
            if len(fields) != 9:
                raise ValueError(f"a legacy transaction has 9 fields, not {len(fields)}")
            v = _int(fields[6])
            chain_id = (v - 35) // 2 if v >= 35 else None
            to, value, data = fields[3], fields[4], fields[5]
        elif raw[0] in (1, 2):
            fields = rlp.decode(raw[1:])
            expected = 11 if raw[0] == 1 else 12
            if len(fields) != expected:
                raise ValueError(f"a type {raw[0]} transaction has {expected} fields")
            chain_id = _int(fields[0])
            offset = 4 if raw[0] == 1 else 5
            to, value, data = fields[offset], fields[offset + 1], fields[offset + 2]
        else:
            raise ValueError(f"unknown transaction type {raw[0]}")
        sender = Account.recover_transaction(raw)
    except Exception as exc:  # rlp and eth_account raise many kinds for bad bytes
        raise AuditInputError(f"{what} is not a signed transaction: {exc}") from None
    return SignedCall(
        tx_hash="0x" + keccak(raw).hex(),
        sender=to_checksum_address(sender),
        chain_id=chain_id,
        to=to_checksum_address(to) if to else None,
        value=_int(value),
        data=bytes(data),
    )
