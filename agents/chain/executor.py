"""The transaction executor: turns intents into signed, journaled, broadcast transactions.

One executor per key; it owns that key's nonce counter, so everything an agent
sends goes through it in one sequence. The write order (journal, then
broadcast) is described in :mod:`agents.chain.journal`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes

from agents.chain.abi import ContractInterface, RevertDecoder
from agents.chain.client import ChainClient, Receipt
from agents.chain.errors import (
    ChainError,
    InsufficientFundsError,
    RevertedError,
    RpcError,
    RpcUnavailableError,
)
from agents.chain.journal import IN_FLIGHT, JournalEntry, TransactionJournal
from agents.node import failpoints
from agents.node.database import transaction

log = logging.getLogger(__name__)

# Broadcast answers that mean "the node already has this very transaction".
_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "already exists")
_NONCE_TOO_LOW = ("nonce too low", "nonce is too low", "invalid nonce")
_NO_FUNDS = ("insufficient funds", "insufficient balance")
# Refusals a higher fee may cure: a replacement not far enough above the transaction the node
# holds, a full pool's lowest price, a base fee above the max fee (every client's words).
_PRICE_REFUSALS = ("underpriced", "fee", "price", "too low", "full")
GWEI = 10**9


def bumped(fee: int) -> int:
    """The least fee a replacement may offer for one that offered ``fee``: more than 10 %
    above it (geth and anvil refuse a replacement raising either fee by less than 10 %)."""
    return fee * 11 // 10 + 1


@dataclass(frozen=True)
class Intent:
    """A transaction an agent has decided to send.

    ``key`` names the decision (for example ``claim/7``); the journal refuses a
    second transaction for the same key.
    """

    key: str
    contract: str
    function: str
    args: tuple[Any, ...] = ()
    value: int = 0
    task_id: int | None = None
    # The block whose event prompted the decision, for reaction-time figures.
    trigger_block: int | None = None
    # Tried again after every rejection (estimation reverted, node refused it), after the
    # backoff but with no limit on attempts, for as long as the decision asks for it: for a
    # call whose decision judges each failure itself (agents.roles.reverts).
    persistent: bool = False


@dataclass(frozen=True)
class FeePolicy:
    """How gas limits and fees are chosen, and when a pending transaction's are raised.

    A sent transaction still pending ``bump_after`` seconds after it was sent (or last
    replaced) whose max fee is below the next block's base fee plus the node's suggested tip
    is replaced: its intent signed again at its nonce with both fees raised by more than
    10 % (and to the base fee × ``base_fee_multiplier`` + tip), never above
    ``max_fee_per_gas``, and its tip never above ``bump_limit`` × the tip of the row's first
    transaction (a bump that would go above either is refused, logged at error level).

    The base fee and the suggested tip are the node's word. A transaction pays the chain's
    own base fee whatever max fee it offers, but all of its tip: ``bump_limit`` bounds what a
    node lying about either (a base fee that keeps rising, a huge tip) can make a transaction
    pay by fee bumps, to the base fee plus that many times its first tip, while an honest
    rise gets about 24 bumps (each raises the tip 10 %) and the max fee follows the base fee.
    A suggested tip above the limit is not taken: the bump raises the tip by the least a node
    accepts, so that one jump (a lie or a spike) does not spend the room at once and leave the
    max fee unable to follow the base fee.
    """

    gas_margin: float = 1.25  # gas limit = estimate × margin (estimates can be tight)
    base_fee_multiplier: int = 2  # max fee = base fee × this + tip: survives a few full blocks
    max_fee_per_gas: int | None = None  # hard cap in wei; None: no cap
    priority_fee: int | None = None  # tip in wei; None: ask the node
    bump_after: float | None = 30.0  # seconds; None: fees never raised
    # A replacement's tip at most this × the row's first tip (a first tip under 1 gwei counts
    # as 1 gwei: a tip of 0, as some chains take, would allow next to no bump); None: no limit.
    bump_limit: float | None = 10.0


@dataclass(frozen=True)
class RejectionPolicy:
    """How an intent that never reached the chain (estimation reverted) is retried."""

    attempts: int = 5
    delay: float = 2.0  # seconds before the next try, doubled per failed try
    max_delay: float = 64.0  # the longest wait (a persistent intent is tried on and on)


@dataclass(frozen=True)
class DropPolicy:
    """When a sent transaction that shows no receipt is given up, and when one the node keeps
    calling pending is looked at again.

    A node's word that a transaction is unknown, or that its nonce is used, is not final:
    behind an endpoint that spreads calls over several nodes, one may have mined it while
    another has not seen it yet. A row is judged ``dropped`` only after the account's mined
    nonce has passed its own, with no receipt of it, for ``grace`` seconds of checks; while
    the account's nonce has not passed it, it is never given up. A transaction the node calls
    pending for longer than ``grace`` after it was sent is broadcast again (the same bytes: one
    nonce cannot be spent twice) and judged the same way. The time the nonce was first seen
    passed is journaled, so a restart does not start the grace again.

    A ``dropped`` row's receipt is still looked for during ``recheck`` seconds after it was
    judged so: the node whose nonce passed it may have been on a branch the chain left, and
    the transaction mined after all; the row then takes that outcome.
    """

    grace: float = 60.0
    recheck: float = 600.0


@dataclass
class ExecutorObserver:
    """Callbacks for logs and metrics; each gets the journal entry it is about."""

    sent: Callable[[JournalEntry], None] = field(default=lambda e: None)
    confirmed: Callable[[JournalEntry], None] = field(default=lambda e: None)
    failed: Callable[[JournalEntry], None] = field(default=lambda e: None)
    # A fee bump's replacement journaled (the entry holds it), before its broadcast.
    replaced: Callable[[JournalEntry], None] = field(default=lambda e: None)


class TransactionExecutor:
    """Signs with a local key, journals, broadcasts, and follows transactions to their receipts.

    ``clock`` gives every time the executor stamps and compares (a rejection's
    ``retry_after``, a send, a fee bump, a refusal, a nonce seen passed): the wall clock in
    seconds since the epoch by default. They are journaled and compared again after a restart,
    even on another boot, so a replacement clock must count the same seconds (tests give one
    that they move by hand).
    """

    def __init__(
        self,
        client: ChainClient,
        account: LocalAccount,
        journal: TransactionJournal,
        contracts: Mapping[str, ContractInterface],
        *,
        fees: FeePolicy | None = None,
        rejections: RejectionPolicy | None = None,
        drops: DropPolicy | None = None,
        observer: ExecutorObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.account = account
        self.address: str = account.address
        self.journal = journal
        self.contracts = dict(contracts)
        self.decoder = RevertDecoder(self.contracts.values())
        self.fees = fees or FeePolicy()
        self.rejections = rejections or RejectionPolicy()
        self.drops = drops or DropPolicy()
        self.observer = observer or ExecutorObserver()
        self._clock = clock
        # Intent → when a transaction the node calls pending was last sent again as overdue
        # (a restart sends it again at its first look past DropPolicy.grace after its send).
        self._looked: dict[str, float] = {}
        # Intent → when the cap (FeePolicy.max_fee_per_gas) or the bump limit
        # (FeePolicy.bump_limit) last refused its fee bump (said once; looked at again once
        # per FeePolicy.bump_after).
        self._capped: dict[str, float] = {}

    def in_flight(self) -> bool:
        """Whether a journaled transaction is signed or sent and not yet final."""
        return bool(self.journal.by_status(IN_FLIGHT))

    # -- deciding whether an intent may go out ----------------------------------------------

    def may_submit(self, intent: Intent) -> bool:
        """False if the intent is in flight or done, or was rejected and must still wait: until
        its ``retry_after``, or, where that lies further ahead than
        ``RejectionPolicy.max_delay`` (stamped before the clock was set back), not at all."""
        entry = self.journal.get(intent.key)
        if entry is None:
            return True
        if entry.status != "rejected":
            return False
        if not intent.persistent and entry.attempts >= self.rejections.attempts:
            return False
        # No backoff is longer than max_delay: a clock stepped back (NTP, a restart on another
        # boot) must not hold a reveal back by the size of the step. Nothing is on chain.
        wait = entry.retry_after - self._clock()
        return wait <= 0 or wait > self.rejections.max_delay

    # -- sending ----------------------------------------------------------------------------

    def submit(self, intent: Intent, *, strict: bool = False) -> JournalEntry | None:
        """Journal, sign and broadcast ``intent`` unless its key was already used.

        Returns the journal entry (``None`` if the intent may not go out now).
        With ``strict``, a revert at gas estimation or missing funds raise
        (:class:`RevertedError`, :class:`InsufficientFundsError`) instead of being
        journaled for a later retry: that is what a command line wants.
        """
        if not self.may_submit(intent):
            return None
        contract = self._contract(intent.contract)
        data = contract.encode_call(intent.function, intent.args)
        description = contract.describe_call(intent.function, intent.args)
        tx: dict[str, Any] = {
            "from": self.address,
            "to": contract.address,
            "data": "0x" + data.hex(),
            "value": hex(intent.value),
        }
        try:
            gas = int(self.client.estimate_gas(tx) * self.fees.gas_margin)
        except RpcError as exc:
            problem = self._estimation_problem(exc, intent)
            if strict:
                raise problem from exc
            return self._reject(
                intent.key, intent, contract.address, description, data, str(problem)
            )
        max_fee, tip = self._fees()
        needed = intent.value + gas * max_fee
        balance = self.client.balance(self.address)
        if balance < needed:
            problem = InsufficientFundsError(
                f"account {self.address} holds {balance} wei; {description} needs up to "
                f"{needed} wei (value {intent.value} + gas {gas} × {max_fee})"
            )
            if strict:
                raise problem
            return self._reject(
                intent.key, intent, contract.address, description, data, str(problem)
            )

        chain_nonce = self.client.nonce(self.address, "pending")
        with transaction(self.journal.conn):
            nonce = max(self.journal.next_nonce(self.address), chain_nonce)
            signed = self.account.sign_transaction(
                {
                    "type": 2,
                    "chainId": self.client.chain_id(),
                    "nonce": nonce,
                    "to": contract.address,
                    "value": intent.value,
                    "data": data,
                    "gas": gas,
                    "maxFeePerGas": max_fee,
                    "maxPriorityFeePerGas": tip,
                }
            )
            entry = self.journal.record_signed(
                intent=intent.key,
                task_id=intent.task_id,
                sender=self.address,
                target=contract.address,
                description=description,
                data=data,
                value=intent.value,
                nonce=nonce,
                raw_tx=bytes(signed.raw_transaction),
                tx_hash="0x" + bytes(signed.hash).hex(),
                trigger_block=intent.trigger_block,
            )
        failpoints.hit("tx-signed", intent.key)
        entry = self._broadcast(entry)
        failpoints.hit("tx-sent", intent.key)
        return entry

    def _contract(self, name: str) -> ContractInterface:
        try:
            return self.contracts[name]
        except KeyError:
            raise ChainError(f"no contract {name!r} in the deployment") from None

    def _estimation_problem(self, exc: RpcError, intent: Intent) -> ChainError:
        text = exc.rpc_message.lower()
        if any(s in text for s in _NO_FUNDS):
            return InsufficientFundsError(
                f"account {self.address} cannot pay for {intent.contract}.{intent.function}: "
                f"{exc.rpc_message}"
            )
        if exc.data is not None or "revert" in text:
            return RevertedError(
                f"{intent.contract}.{intent.function}", self.decoder.decode(exc.data), exc.data
            )
        return exc

    def _reject(
        self,
        key: str,
        origin: Intent | JournalEntry,
        target: str,
        description: str,
        data: bytes,
        error: str,
        release: int | None = None,
    ) -> JournalEntry:
        self._forget(key)
        previous = self.journal.get(key)
        attempts = previous.attempts if previous is not None else 0
        entry = self.journal.record_rejection(
            intent=key,
            task_id=origin.task_id,
            sender=self.address,
            target=target,
            description=description,
            data=data,
            value=origin.value,
            error=error,
            retry_delay=min(
                self.rejections.delay * 2 ** min(attempts, 32), self.rejections.max_delay
            ),
            at=self._clock(),
            trigger_block=origin.trigger_block,
            release=release,
        )
        log.info("intent %s not sent: %s", key, error)
        self.observer.failed(entry)
        return entry

    def _fees(self) -> tuple[int, int]:
        block = self.client.block("latest")
        tip = (
            self.fees.priority_fee
            if self.fees.priority_fee is not None
            else self.client.max_priority_fee()
        )
        if block.base_fee is None:  # a pre-London chain: legacy pricing folded into max fee
            price = self.client.gas_price()
            return price, price
        max_fee = block.base_fee * self.fees.base_fee_multiplier + tip
        if self.fees.max_fee_per_gas is not None:
            max_fee = min(max_fee, self.fees.max_fee_per_gas)
            tip = min(tip, max_fee)
        return max_fee, tip

    def _broadcast(self, entry: JournalEntry, *, judge: bool = False) -> JournalEntry:
        """Send ``entry``'s signed bytes; with ``judge``, a send the node accepts (or already
        holds) is judged against the account's nonce too (``_unmined``)."""
        assert entry.raw_tx is not None and entry.nonce is not None
        try:
            self.client.send_raw(entry.raw_tx)
        except RpcUnavailableError:
            # Still journaled as signed: reconcile() broadcasts the same bytes later.
            raise
        except RpcError as exc:
            text = exc.rpc_message.lower()
            if any(s in text for s in _ALREADY_KNOWN):
                pass
            elif any(s in text for s in _NONCE_TOO_LOW):
                # Our very transaction may be the one that used the nonce, its receipt not
                # shown yet: anvil raises the sender's nonce before the block's receipts can
                # be read (a send whose answer was lost, tried again, meets that moment), and
                # behind an endpoint of several nodes the one that refused it may have mined
                # it while the one asked next has not seen it. Whether a node knows the
                # transaction is not final either way: its receipt, the account's nonce and
                # time are.
                return self._unmined(entry)
            elif entry.tx_hash is not None and self.client.transaction_known(entry.tx_hash):
                # The node holds these very bytes (pending or mined) and words its refusal
                # of them in its own way (Nethermind: "AlreadyKnown", "OldNonce"): followed
                # as sent, its nonce not given to another transaction.
                pass
            elif self.journal.next_nonce(self.address) != entry.nonce + 1 or self.journal.replaced(
                entry.intent
            ):
                # A later nonce was handed out meanwhile (a sent row the node forgot, refused
                # when broadcast again: a full pool, a base fee above its cap). Judged
                # rejected, its nonce would stay unused for good and every later transaction
                # of the key would wait behind the gap: the same bytes go out again at the
                # next reconcile, until a node takes them. A fee bump's replacement is never
                # rejected either: the transaction it replaces may still be pending, and
                # mined (its nonce given to another intent, that one would fail).
                # Journaled: a restart neither starts the wait before it is outbid again nor
                # outbids one refused for want of funds (``_underpriced``).
                if self.journal.record_refusal(entry.intent, self._clock(), exc.rpc_message):
                    log.warning(
                        "node refused %s (nonce %s, later nonces handed out or an earlier "
                        "transaction at its nonce): sent again later: %s",
                        entry.description,
                        entry.nonce,
                        exc.rpc_message,
                    )
                return entry
            else:
                return self._reject(
                    entry.intent,
                    entry,
                    entry.target,
                    entry.description,
                    entry.data,
                    f"node refused the transaction: {exc.rpc_message}",
                    release=entry.nonce,
                )
        accepted = self._broadcast_accepted(entry)
        return self._unmined(accepted) if judge else accepted

    def _broadcast_accepted(self, entry: JournalEntry) -> JournalEntry:
        first = entry.status == "signed" and entry.sent_at is None
        entry = self.journal.update(
            entry.intent, status="sent", sent_at=entry.sent_at or self._clock()
        )
        if first:
            log.info("sent %s nonce %s hash %s", entry.description, entry.nonce, entry.tx_hash)
            self.observer.sent(entry)
        return entry

    def _unmined(self, entry: JournalEntry) -> JournalEntry:
        """Judge a sent transaction by its receipt, or, while none shows, by ``DropPolicy``:
        followed as sent while the account's mined nonce has not passed its own, or passed it
        less than ``grace`` seconds ago as first seen (journaled); ``dropped`` after that."""
        entry, receipt = self._receipt(entry)
        if receipt is not None:
            return self._record_receipt(
                entry, receipt.status, receipt.block_number, receipt.gas_used
            )
        assert entry.nonce is not None
        if self.client.nonce(self.address, "latest") <= entry.nonce:
            self.journal.clear_unaccounted(entry.intent)
            return self._broadcast_accepted(entry)
        now = self._clock()
        since = self.journal.unaccounted(entry.intent, now)
        if now - since < self.drops.grace:
            return self._broadcast_accepted(entry)
        self._forget(entry.intent)
        entry = self.journal.record_dropped(
            entry.intent,
            f"nonce {entry.nonce} used by another transaction of this account: no receipt "
            f"of this one {self.drops.grace:.0f} s after (is another process using this key?)",
            now,
        )
        log.warning("transaction %s dropped: %s", entry.tx_hash, entry.error)
        self.observer.failed(entry)
        return entry

    # -- following in-flight transactions ---------------------------------------------------

    def reconcile(self, recheck_from: int | None = None) -> list[JournalEntry]:
        """Bring every in-flight journal row up to date; returns the rows that became final.

        A row still ``signed`` is broadcast (same bytes); a ``sent`` row the node no
        longer knows (its mempool was lost), or has called pending for longer than
        ``DropPolicy.grace``, is broadcast again; receipts are recorded. A row is judged
        ``dropped`` only as ``DropPolicy`` says, and one whose transaction shows mined within
        ``DropPolicy.recheck`` after that takes that outcome (returned with the others).
        With ``recheck_from``, rows mined in that block or later whose receipt has vanished
        (a reorg dropped their block) go back to ``sent`` and are followed again.
        """
        finished: list[JournalEntry] = []
        if recheck_from is not None:
            for entry in self.journal.recent_final(recheck_from):
                assert entry.tx_hash is not None
                if self.client.receipt(entry.tx_hash) is None:
                    log.warning("%s: its block was reorged away; following it again", entry.intent)
                    self.journal.update(entry.intent, status="sent", block_number=None)
        for entry in self.journal.dropped_since(self._clock() - self.drops.recheck):
            entry, receipt = self._receipt(entry)
            if receipt is not None:
                log.warning(
                    "%s: judged dropped, but its transaction %s shows mined in block %s",
                    entry.intent,
                    entry.tx_hash,
                    receipt.block_number,
                )
                finished.append(
                    self._record_receipt(
                        entry, receipt.status, receipt.block_number, receipt.gas_used
                    )
                )
        market = _Market(self.client, self.fees)
        for entry in self.journal.by_status(("signed", "sent")):
            entry, receipt = self._receipt(entry)
            if receipt is not None:
                finished.append(
                    self._record_receipt(
                        entry, receipt.status, receipt.block_number, receipt.gas_used
                    )
                )
                continue
            assert entry.tx_hash is not None
            if self._underpriced(entry, market):
                updated = self._replace(entry, market)
            elif entry.status == "signed" or not self.client.transaction_known(entry.tx_hash):
                updated = self._broadcast(entry)
            elif self._overdue(entry):
                # Pending by the node's word for long: its word is not taken for ever (a
                # broken node, one that lost it): the same bytes go out again and the
                # account's nonce is read, once per grace.
                self._looked[entry.intent] = self._clock()
                updated = self._broadcast(entry, judge=True)
            else:
                continue
            if updated.final or updated.status == "rejected":
                finished.append(updated)
        return finished

    def _receipt(self, entry: JournalEntry) -> tuple[JournalEntry, Receipt | None]:
        """The receipt of ``entry``'s transaction or of one a fee bump replaced (the row then
        takes that one's hash: it is the one that spent the nonce); ``None`` if none shows."""
        assert entry.tx_hash is not None
        receipt = self.client.receipt(entry.tx_hash)
        if receipt is not None:
            return entry, receipt
        for earlier in reversed(self.journal.replaced(entry.intent)):
            receipt = self.client.receipt(earlier.tx_hash)
            if receipt is not None:
                log.info("%s: mined as its earlier transaction %s", entry.intent, earlier.tx_hash)
                return self.journal.adopt(entry.intent, earlier.tx_hash), receipt
        return entry, None

    # -- fee bumps --------------------------------------------------------------------------

    def _underpriced(self, entry: JournalEntry, market: _Market) -> bool:
        """Whether ``entry``, sent and unmined for ``FeePolicy.bump_after`` seconds since it
        was sent or last replaced, offers a max fee below the next block's base fee plus the
        node's suggested tip (or a tip below that suggestion), its nonce not yet passed. A
        transaction still ``signed`` ``bump_after`` seconds after it was journaled as a
        replacement, or after a node first refused it while it kept its nonce (a later nonce
        handed out: the base fee outgrew it before any node took it), is outbid in turn,
        whatever the base fee, unless the node's last refusal of it was one no higher fee cures
        (no funds for its gas at its max fee: each bump would raise the tip by another 10 %,
        paid once a node takes one); one never refused so is left to its broadcast (refused at
        the last nonce handed out, it is rejected and signed anew with fresh fees). Every time
        and refusal this judges by is journaled: a restart waits no longer."""
        bump_after = self.fees.bump_after
        if bump_after is None or entry.raw_tx is None or entry.status not in IN_FLIGHT:
            return False
        now = self._clock()
        capped = self._capped.get(entry.intent)
        if capped is not None and now - capped < bump_after:
            return False
        replaced = self.journal.replaced(entry.intent)
        refusal = self.journal.refusal(entry.intent) if entry.status == "signed" else None
        if replaced:
            since: float | None = max(r.replaced_at for r in replaced)
        elif entry.status == "signed":
            since = refusal.since if refusal is not None else None
        else:
            since = entry.sent_at
        # A time ahead of the clock was stamped before it was set back: outbid now (at its own
        # nonce, within the cap and the bump limit) rather than wait out the step.
        if since is None or 0 <= now - since < bump_after:
            return False
        if entry.status == "signed" and not _cured_by_fees(refusal.words if refusal else None):
            return False
        base, tip = market.base_fee(), market.tip()
        if base is None:  # a pre-London chain: no base fee to outbid
            return False
        offered = offer_of(entry.raw_tx)
        if entry.status == "sent" and offered.max_fee >= base + tip and offered.tip >= tip:
            return False
        assert entry.nonce is not None
        return self.client.nonce(self.address, "latest") <= entry.nonce

    def _replace(self, entry: JournalEntry, market: _Market) -> JournalEntry:
        """Sign ``entry``'s intent again at its nonce with raised fees, journal the new
        transaction (the old one kept as replaced) and broadcast it; a bump above
        ``FeePolicy.max_fee_per_gas`` is refused (logged once, at error level, unless the
        transaction can be mined as it is: it offers more than the base fee), and so is one
        whose tip would pass ``FeePolicy.bump_limit`` (logged once, at error level); where the
        node suggests a tip above that limit, the tip rises by the least step only."""
        assert entry.raw_tx is not None and entry.nonce is not None
        base = market.base_fee()
        assert base is not None
        old = offer_of(entry.raw_tx)
        tip = max(bumped(old.tip), market.tip())
        if self.fees.bump_limit is not None:
            first_tip = self._first_tip(entry, old)
            most = int(self.fees.bump_limit * max(first_tip, GWEI))
            if bumped(old.tip) > most:
                return self._bump_past_limit(entry, old, first_tip, base, market.tip())
            if tip > most:  # the suggestion past the limit: the least raise, room kept
                tip = bumped(old.tip)
        max_fee = max(bumped(old.max_fee), base * self.fees.base_fee_multiplier + tip)
        cap = self.fees.max_fee_per_gas
        if cap is not None and max_fee > cap:
            max_fee, tip = cap, min(tip, cap)
            if max_fee < bumped(old.max_fee) or tip < bumped(old.tip) or max_fee < base:
                first = entry.intent not in self._capped
                self._capped[entry.intent] = self._clock()
                if first and old.max_fee >= base:
                    # It can be mined as it is (with less tip than the node suggests): no
                    # replacement under the cap would offer more.
                    log.info(
                        "fee bump of %s (nonce %s) not made: it offers %.3f gwei, the most "
                        "chain.max_fee_gwei allows of a replacement, above the next base fee "
                        "%.3f gwei",
                        entry.description,
                        entry.nonce,
                        old.max_fee / GWEI,
                        base / GWEI,
                    )
                elif first:
                    log.error(
                        "fee bump of %s (nonce %s, hash %s) refused: the next base fee is "
                        "%.3f gwei and a replacement must offer more than %.3f gwei (max fee) "
                        "and %.3f gwei (tip), above the cap chain.max_fee_gwei %.3f gwei; it "
                        "and every later transaction of this key wait until the base fee falls",
                        entry.description,
                        entry.nonce,
                        entry.tx_hash,
                        base / GWEI,
                        max(bumped(old.max_fee), base) / GWEI,
                        bumped(old.tip) / GWEI,
                        cap / GWEI,
                    )
                return entry
        self._capped.pop(entry.intent, None)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": old.chain_id,
            "nonce": entry.nonce,
            "to": entry.target,
            "value": entry.value,
            "data": entry.data,
            "gas": old.gas,
            "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip,
        }
        signed = self.account.sign_transaction(tx)
        previous = entry.tx_hash
        entry = self.journal.record_replacement(
            entry.intent,
            raw_tx=bytes(signed.raw_transaction),
            tx_hash="0x" + bytes(signed.hash).hex(),
            at=self._clock(),
        )
        log.warning(
            "fee bump of %s (nonce %s): %s replaced by %s, max fee %.3f → %.3f gwei, tip %.3f "
            "→ %.3f gwei (next base fee %.3f gwei)",
            entry.description,
            entry.nonce,
            previous,
            entry.tx_hash,
            old.max_fee / GWEI,
            max_fee / GWEI,
            old.tip / GWEI,
            tip / GWEI,
            base / GWEI,
        )
        self.observer.replaced(entry)
        failpoints.hit("tx-replaced", entry.intent)
        return self._broadcast(entry)

    def _first_tip(self, entry: JournalEntry, old: Offer) -> int:
        """The tip of ``entry``'s first transaction (``old`` is its own offer): the lowest of
        its transactions' (bumps only raise it), journaled, so a restart keeps the limit."""
        earlier = (offer_of(r.raw_tx).tip for r in self.journal.replaced(entry.intent))
        return min([old.tip, *earlier])

    def _bump_past_limit(
        self, entry: JournalEntry, old: Offer, first_tip: int, base: int, suggested: int
    ) -> JournalEntry:
        """A bump not made: its tip would pass ``FeePolicy.bump_limit``; said once (looked at
        again once per ``FeePolicy.bump_after``)."""
        first = entry.intent not in self._capped
        self._capped[entry.intent] = self._clock()
        if first:
            log.error(
                "fee bump of %s (nonce %s, hash %s) refused: a replacement must offer a tip "
                "above %.3f gwei, past the bump limit of %g × its first transaction's tip "
                "(%.3f gwei); the node answers a next base fee of %.3f gwei and a tip of %.3f "
                "gwei (is it lying?); the transaction waits as it is (its max fee %.3f gwei)",
                entry.description,
                entry.nonce,
                entry.tx_hash,
                bumped(old.tip) / GWEI,
                self.fees.bump_limit,
                first_tip / GWEI,
                base / GWEI,
                suggested / GWEI,
                old.max_fee / GWEI,
            )
        return entry

    def _overdue(self, entry: JournalEntry) -> bool:
        """Whether ``entry``, pending by the node's word, was sent (or last looked at as
        overdue) ``DropPolicy.grace`` seconds ago or longer."""
        last = max(entry.sent_at or 0.0, self._looked.get(entry.intent, 0.0))
        return self._clock() - last >= self.drops.grace

    def _forget(self, intent: str) -> None:
        self._looked.pop(intent, None)
        self._capped.pop(intent, None)

    def _record_receipt(
        self, entry: JournalEntry, status: int, block: int, gas_used: int
    ) -> JournalEntry:
        self._forget(entry.intent)
        self.journal.clear_unaccounted(entry.intent)
        self.journal.clear_refused(entry.intent)
        if status == 1:
            entry = self.journal.update(
                entry.intent, status="mined", block_number=block, gas_used=gas_used
            )
            log.info("mined %s in block %s", entry.description, block)
            self.observer.confirmed(entry)
            return entry
        reason = self._revert_reason(entry, block)
        entry = self.journal.update(
            entry.intent, status="reverted", block_number=block, gas_used=gas_used, error=reason
        )
        log.warning("reverted %s in block %s: %s", entry.description, block, reason)
        self.observer.failed(entry)
        return entry

    def _revert_reason(self, entry: JournalEntry, block: int) -> str:
        """The decoded reason of a mined revert (receipts carry no revert data).

        The node's call tracer gives the exact output where the debug namespace is
        open (anvil, most private nodes); otherwise the call is replayed on the state
        before the block and, if that succeeds, on the state after it (a transaction
        earlier in the same block may have changed what the call sees).
        """
        assert entry.tx_hash is not None
        try:
            trace = self.client.rpc.request(
                "debug_traceTransaction", [entry.tx_hash, {"tracer": "callTracer"}]
            )
            output = trace.get("output") if isinstance(trace, dict) else None
            if isinstance(output, str) and len(output) >= 10:
                return self.decoder.decode(output)
        except (RpcError, RpcUnavailableError):
            pass
        for state in (max(0, block - 1), block):
            try:
                self.client.call(entry.target, entry.data, sender=entry.sender, block=state)
            except RpcError as exc:
                return self.decoder.decode(exc.data)
            except RpcUnavailableError:
                return "reverted (reason unavailable: RPC unreachable)"
        return "reverted (the call succeeds when replayed: out of gas, or state changed in-block)"

    def wait(self, key: str, *, timeout: float = 120.0, poll: float = 0.2) -> JournalEntry:
        """Follow the transaction of ``key`` until it is final; raises on timeout or revert."""
        deadline = self._clock() + timeout
        while True:
            entry = self.journal.get(key)
            if entry is None:
                raise ChainError(f"no transaction was journaled for {key}")
            if entry.status == "mined":
                return entry
            if entry.status == "reverted":
                raise RevertedError(entry.description, entry.error or "unknown reason")
            if entry.status in ("rejected", "dropped"):
                raise ChainError(f"{entry.description} was not mined: {entry.error}")
            if self._clock() > deadline:
                raise ChainError(
                    f"{entry.description} (hash {entry.tx_hash}) not mined after {timeout:.0f} s"
                )
            self.reconcile()
            entry = self.journal.get(key)
            if entry is not None and entry.in_flight:
                time.sleep(poll)

    def send_and_wait(self, intent: Intent, *, timeout: float = 120.0) -> JournalEntry:
        """Submit ``intent`` strictly (errors raised at once) and wait for it to be mined."""
        entry = self.submit(intent, strict=True)
        if entry is None:
            existing = self.journal.get(intent.key)
            if existing is None or existing.status == "rejected":
                raise ChainError(
                    f"{intent.key}: not sent ({existing.error if existing else 'unknown'})"
                )
        return self.wait(intent.key, timeout=timeout)

    def call(self, contract: str, function: str, args: Sequence[Any] = ()) -> Any:
        """A read-only call of ``contract.function(args)``, revert reasons decoded."""
        iface = self._contract(contract)
        try:
            return self.client.read(iface, function, args, sender=self.address)
        except RpcError as exc:
            raise RevertedError(
                f"{contract}.{function}", self.decoder.decode(exc.data), exc.data
            ) from exc


def _cured_by_fees(refusal: str | None) -> bool:
    """Whether a node's refusal of a transaction (``None``: not seen) may be cured by higher
    fees."""
    if refusal is None:
        return True
    text = refusal.lower()
    return not any(s in text for s in _NO_FUNDS) and any(s in text for s in _PRICE_REFUSALS)


class Offer(NamedTuple):
    """What a signed transaction offers, and the fields a replacement keeps."""

    max_fee: int
    tip: int
    gas: int
    chain_id: int


def offer_of(raw_tx: bytes) -> Offer:
    fields = TypedTransaction.from_bytes(HexBytes(raw_tx)).as_dict()
    return Offer(
        int(fields["maxFeePerGas"]),
        int(fields["maxPriorityFeePerGas"]),
        int(fields["gas"]),
        int(fields["chainId"]),
    )


class _Market:
    """The next base fee and the tip a replacement offers, asked of the node once per
    reconcile, only if a transaction is looked at for a fee bump."""

    def __init__(self, client: ChainClient, fees: FeePolicy) -> None:
        self._client = client
        self._fees = fees
        self._base: tuple[int | None] | None = None
        self._tip: int | None = None

    def base_fee(self) -> int | None:
        if self._base is None:
            self._base = (self._client.next_base_fee(),)
        return self._base[0]

    def tip(self) -> int:
        if self._tip is None:
            fixed = self._fees.priority_fee
            self._tip = fixed if fixed is not None else self._client.max_priority_fee()
        return self._tip
