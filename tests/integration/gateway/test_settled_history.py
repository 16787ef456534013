"""`AuthorizeNetGateway`'s settled-history look-ups over real HTTP against the simulator, its clock in hand.

Each test serves its own simulator with a `ManualClock` set near the real time (the cards stay
valid and the searches end at the real now), and settles batches at the moments it chooses.
"""

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest

from payment_service.domain.money import Money
from payment_service.domain.payments import ChargeOutcomeKind, ChargeRequest
from payment_service.domain.transactions import GatewayTransactionStatus
from payment_service.gateway.client import AuthorizeNetGateway
from tests.integration.gateway.test_gateway_against_simulator import (
    charge_request,
    gateway_settings,
    open_gateway,
    unique,
)
from tests.support.simulator import ManualClock, SimulatorHandle, run_simulator

START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=50)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def clocked_simulator(clock: ManualClock) -> Iterator[SimulatorHandle]:
    # Not named `simulator`: that is the module-wide one of tests/integration/conftest.py.
    with run_simulator(clock=clock) as handle:
        yield handle


@pytest.fixture
async def gateway(clocked_simulator: SimulatorHandle) -> AsyncIterator[AuthorizeNetGateway]:
    async with open_gateway(gateway_settings(clocked_simulator)) as opened:
        yield opened


async def charge(gateway: AuthorizeNetGateway, request: ChargeRequest | None = None) -> str:
    outcome = await gateway.charge(request or charge_request())
    assert outcome.kind is ChargeOutcomeKind.APPROVED
    assert outcome.result.transaction_id is not None
    return outcome.result.transaction_id


class TestSettledBatches:
    async def test_only_batches_settled_within_the_range_come_back(
        self, gateway: AuthorizeNetGateway, clocked_simulator: SimulatorHandle, clock: ManualClock
    ) -> None:
        batch_ids = []
        for _ in range(3):
            await charge(gateway)
            batch_ids.append(clocked_simulator.settle()["batchId"])
            clock.advance(days=1)

        middle = await gateway.fetch_settled_batches(
            first_settlement=START + timedelta(hours=12), last_settlement=START + timedelta(days=1, hours=12)
        )
        every = await gateway.fetch_settled_batches(first_settlement=START, last_settlement=START + timedelta(days=31))
        later = await gateway.fetch_settled_batches(
            first_settlement=START + timedelta(days=3), last_settlement=START + timedelta(days=4)
        )

        assert [batch.batch_id for batch in middle] == [batch_ids[1]]
        assert middle[0].settled_at == START + timedelta(days=1)
        assert middle[0].settlement_state == "settledSuccessfully"
        assert [batch.batch_id for batch in every] == batch_ids
        assert later == []

    async def test_a_range_over_31_days_is_refused_before_sending(
        self, gateway: AuthorizeNetGateway, clocked_simulator: SimulatorHandle
    ) -> None:
        with pytest.raises(ValueError, match="31 days"):
            await gateway.fetch_settled_batches(first_settlement=START, last_settlement=START + timedelta(days=32))

        assert clocked_simulator.requests() == []


class TestBatchTransactions:
    async def test_a_batch_pages_newest_first_or_oldest_first(
        self, gateway: AuthorizeNetGateway, clocked_simulator: SimulatorHandle, clock: ManualClock
    ) -> None:
        charged = []
        for n in range(5):
            charged.append(await charge(gateway, charge_request(amount=Money.of(f"{10 + n}.00"))))
            clock.advance(seconds=1)
        batch_id = clocked_simulator.settle()["batchId"]

        pages = [await gateway.fetch_batch_transactions(batch_id, limit=2, offset=page) for page in (1, 2, 3, 4)]
        oldest_first = await gateway.fetch_batch_transactions(batch_id, limit=5, offset=1, newest_first=False)

        assert [[row.transaction_id for row in page.transactions] for page in pages] == [
            charged[4:2:-1],
            charged[2:0:-1],
            charged[0:1],
            [],
        ]
        assert {page.total_count for page in pages[:3]} == {5}
        assert [row.transaction_id for row in oldest_first.transactions] == charged
        newest = pages[0].transactions[0]
        assert (newest.status, newest.settle_amount, newest.card_last4) == (
            GatewayTransactionStatus.SETTLED,
            Decimal("14.00"),
            "1111",
        )

    async def test_a_batch_the_gateway_does_not_know_is_an_empty_page(self, gateway: AuthorizeNetGateway) -> None:
        page = await gateway.fetch_batch_transactions("999999")

        assert (page.transactions, page.total_count) == ((), 0)


class TestSettledSearchByRefId:
    async def test_a_settled_charge_is_found_by_its_ref_id_and_reads_as_settled(
        self, gateway: AuthorizeNetGateway, clocked_simulator: SimulatorHandle, clock: ManualClock
    ) -> None:
        request = charge_request()
        other = replace(request, ref_id=unique("REF"), amount=Money.of("30.00"))
        sent_at = clock.now
        wanted = await charge(gateway, request)
        await charge(gateway, other)  # same invoice, another refId: confirmed through its details, then passed
        clock.advance(hours=6)
        clocked_simulator.settle()

        found = await gateway.fetch_settled_transaction_by_ref_id(
            request.ref_id, invoice_number=request.invoice_number, submitted_after=sent_at - timedelta(minutes=5)
        )
        missing = await gateway.fetch_settled_transaction_by_ref_id(
            "no-such-ref", invoice_number=request.invoice_number, submitted_after=sent_at - timedelta(minutes=5)
        )
        too_late = await gateway.fetch_settled_transaction_by_ref_id(
            request.ref_id, invoice_number=request.invoice_number, submitted_after=sent_at + timedelta(minutes=1)
        )

        assert found is not None
        assert (found.transaction_id, found.ref_id, found.status) == (
            wanted,
            request.ref_id,
            GatewayTransactionStatus.SETTLED,
        )
        assert found.batch_id is not None
        assert found.settled_at == sent_at + timedelta(hours=6)
        assert missing is None
        assert too_late is None

    async def test_a_search_older_than_31_days_asks_window_by_window(
        self, gateway: AuthorizeNetGateway, clocked_simulator: SimulatorHandle, clock: ManualClock
    ) -> None:
        old_request, recent_request = charge_request(), charge_request()
        old = await charge(gateway, old_request)
        clock.advance(hours=1)
        clocked_simulator.settle()
        clock.advance(days=45)
        recent = await charge(gateway, recent_request)
        clock.advance(hours=1)
        clocked_simulator.settle()

        found_old = await gateway.fetch_settled_transaction_by_ref_id(
            old_request.ref_id, invoice_number=old_request.invoice_number, submitted_after=START
        )
        found_recent = await gateway.fetch_settled_transaction_by_ref_id(
            recent_request.ref_id, invoice_number=recent_request.invoice_number, submitted_after=START
        )

        assert found_old is not None
        assert found_old.transaction_id == old
        assert found_recent is not None
        assert found_recent.transaction_id == recent
        listed = [
            orjson.loads(entry["body"])["getSettledBatchListRequest"]
            for entry in clocked_simulator.requests()
            if "getSettledBatchListRequest" in entry["body"]
        ]
        # The first search stops in its first window; the second goes on to the window holding its batch.
        assert len(listed) == 3
        assert all(
            datetime.fromisoformat(body["lastSettlementDate"]) - datetime.fromisoformat(body["firstSettlementDate"])
            <= timedelta(days=31)
            for body in listed
        )
