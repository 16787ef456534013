"""The simulator's settled history: `getSettledBatchList` date ranges as the live API serves them, in-process."""

from datetime import datetime, timedelta
from typing import Any

import pytest
import xmlschema

from authorize_net_simulator.app import API_PATH
from tests.integration.simulator.conftest import AUTH, Gateway, make_charge
from tests.integration.simulator.test_ledger_rules import charge, follow_up
from tests.integration.simulator.test_xml_responses_against_xsd import CREDENTIALS, NS
from tests.unit.gateway.anet_schema import require_xsd


@pytest.fixture(scope="module")
def official_schema() -> Any:
    return xmlschema.XMLSchema10(str(require_xsd()))  # skips when the XSD is absent


def stamp(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}Z"


async def settle_one(gateway: Gateway, invoice_number: str) -> str:
    """A charge settled in a batch of its own at the clock's time; the batch id."""
    await charge(gateway, invoice_number=invoice_number)
    settled: dict[str, Any] = (await gateway.client.post("/_sim/settle")).json()
    batch_id: str = settled["batchId"]
    return batch_id


async def batch_list(gateway: Gateway, **fields: Any) -> dict[str, Any]:
    return await gateway.call({"getSettledBatchListRequest": {"merchantAuthentication": AUTH, **fields}})


def batch_ids(answer: dict[str, Any]) -> list[str]:
    return [batch["batchId"] for batch in answer.get("batchList", [])]


def code_of(answer: dict[str, Any]) -> str:
    code: str = answer["messages"]["message"][0]["code"]
    return code


class TestSettledBatchList:
    async def test_only_batches_settled_within_the_range_are_listed(self, gateway: Gateway) -> None:
        start = gateway.clock.now
        ids = []
        for day in range(3):
            ids.append(await settle_one(gateway, f"INV-{day}"))
            gateway.clock.advance(days=1)

        middle = await batch_list(
            gateway,
            firstSettlementDate=stamp(start + timedelta(hours=12)),
            lastSettlementDate=stamp(start + timedelta(days=1, hours=12)),
        )
        edges = await batch_list(
            gateway, firstSettlementDate=stamp(start), lastSettlementDate=stamp(start + timedelta(days=2))
        )

        assert batch_ids(middle) == [ids[1]]
        assert batch_ids(edges) == ids  # both ends are inclusive
        assert middle["batchList"][0]["settlementTimeUTC"].startswith(stamp(start + timedelta(days=1))[:19])

    async def test_without_dates_the_last_24_hours_are_listed(self, gateway: Gateway) -> None:
        old = await settle_one(gateway, "INV-old")
        gateway.clock.advance(hours=23)
        recent = await settle_one(gateway, "INV-recent")
        gateway.clock.advance(hours=2)

        assert batch_ids(await batch_list(gateway)) == [recent]
        assert old != recent

    async def test_a_range_without_batches_is_no_records(self, gateway: Gateway) -> None:
        await settle_one(gateway, "INV-1")
        later = gateway.clock.now + timedelta(days=1)

        answer = await batch_list(
            gateway, firstSettlementDate=stamp(later), lastSettlementDate=stamp(later + timedelta(days=1))
        )

        assert (answer["messages"]["resultCode"], code_of(answer)) == ("Ok", "I00004")
        assert "batchList" not in answer

    async def test_a_range_of_exactly_31_days_is_served(self, gateway: Gateway) -> None:
        batch_id = await settle_one(gateway, "INV-1")
        now = gateway.clock.now

        answer = await batch_list(
            gateway, firstSettlementDate=stamp(now - timedelta(days=31)), lastSettlementDate=stamp(now)
        )

        assert batch_ids(answer) == [batch_id]

    async def test_dates_with_an_offset_or_without_a_zone_are_read_as_the_same_moment(self, gateway: Gateway) -> None:
        batch_id = await settle_one(gateway, "INV-1")
        now = gateway.clock.now  # 12:00 UTC

        offset = await batch_list(
            gateway, firstSettlementDate="2030-01-15T06:59:00-05:00", lastSettlementDate="2030-01-15T07:01:00-05:00"
        )
        naive = await batch_list(
            gateway, firstSettlementDate=f"{now:%Y-%m-%d}T11:59:00", lastSettlementDate=f"{now:%Y-%m-%d}T12:01:00"
        )

        assert batch_ids(offset) == batch_ids(naive) == [batch_id]

    @pytest.mark.parametrize(
        ("dates", "reason"),
        [
            ({"firstSettlementDate": "2030-01-01T00:00:00Z"}, "together"),
            ({"lastSettlementDate": "2030-01-01T00:00:00Z"}, "together"),
            ({"firstSettlementDate": "2030-01-02T00:00:00Z", "lastSettlementDate": "2030-01-01T00:00:00Z"}, "before"),
            ({"firstSettlementDate": "2029-12-01T00:00:00Z", "lastSettlementDate": "2030-01-01T00:00:01Z"}, "31 days"),
        ],
        ids=["first-only", "last-only", "reversed", "over-31-days"],
    )
    async def test_a_range_the_live_api_refuses_is_an_e00013(
        self, gateway: Gateway, dates: dict[str, str], reason: str
    ) -> None:
        await settle_one(gateway, "INV-1")

        answer = await batch_list(gateway, **dates)

        assert (answer["messages"]["resultCode"], code_of(answer)) == ("Error", "E00013")
        assert reason in answer["messages"]["message"][0]["text"]
        assert "batchList" not in answer

    async def test_a_date_that_is_not_a_datetime_is_a_schema_error(self, gateway: Gateway) -> None:
        answer = await batch_list(gateway, firstSettlementDate="yesterday", lastSettlementDate="2030-01-01T00:00:00Z")

        assert code_of(answer) == "E00003"


class TestBatchStatistics:
    async def test_statistics_are_listed_only_when_asked_for(self, gateway: Gateway) -> None:
        await charge(gateway, invoice_number="INV-1", amount="10.00")
        await charge(gateway, invoice_number="INV-2", amount="5.50")
        voided = await charge(gateway, invoice_number="INV-3", amount="7.00")
        await follow_up(gateway, "voidTransaction", voided)
        await gateway.transact(make_declined())
        await charge(gateway, invoice_number="INV-4", amount="3.00", card_number="5424000000000015")
        await gateway.client.post("/_sim/settle")

        plain = await batch_list(gateway)
        with_statistics = await batch_list(gateway, includeStatistics=True)

        assert "statistics" not in plain["batchList"][0]
        statistics = {entry["accountType"]: entry for entry in with_statistics["batchList"][0]["statistics"]}
        assert statistics["Visa"] == {
            "accountType": "Visa",
            "chargeAmount": "15.50",
            "chargeCount": "2",
            "refundAmount": "0.00",
            "refundCount": "0",
            "voidCount": "1",
            "declineCount": "1",
            "errorCount": "0",
        }
        assert (statistics["MasterCard"]["chargeAmount"], statistics["MasterCard"]["chargeCount"]) == ("3.00", "1")

    async def test_the_xml_answer_with_statistics_is_valid_against_the_schema(
        self, gateway: Gateway, official_schema: Any
    ) -> None:
        await charge(gateway, invoice_number="INV-1")
        await gateway.client.post("/_sim/settle")
        body = (
            f'<getSettledBatchListRequest xmlns="{NS}">{CREDENTIALS}<includeStatistics>true</includeStatistics>'
            f"<firstSettlementDate>{stamp(gateway.clock.now - timedelta(days=1))}</firstSettlementDate>"
            f"<lastSettlementDate>{stamp(gateway.clock.now)}</lastSettlementDate></getSettledBatchListRequest>"
        )

        response = await gateway.client.post(API_PATH, content=body, headers={"content-type": "application/xml"})

        text = response.content.decode("utf-8-sig")
        official_schema.validate(text)
        assert "<statistics><statistic><accountType>Visa</accountType><chargeAmount>24.99</chargeAmount>" in text


def make_declined() -> dict[str, Any]:
    return make_charge(invoice_number="INV-declined", zip_code="46282")  # the sandbox's decline ZIP


class TestTransactionList:
    async def test_a_batch_pages_newest_first_with_its_total(self, gateway: Gateway) -> None:
        ids = []
        for index in range(3):
            ids.append(await charge(gateway, invoice_number=f"INV-{index}"))
            gateway.clock.advance(seconds=1)
        batch_id = (await gateway.client.post("/_sim/settle")).json()["batchId"]

        async def page(offset: int) -> dict[str, Any]:
            return await gateway.call(
                {
                    "getTransactionListRequest": {
                        "merchantAuthentication": AUTH,
                        "batchId": batch_id,
                        "sorting": {"orderBy": "submitTimeUTC", "orderDescending": True},
                        "paging": {"limit": 2, "offset": offset},
                    }
                }
            )

        first, second = await page(1), await page(2)

        assert [t["transId"] for t in first["transactions"]] == [ids[2], ids[1]]
        assert [t["transId"] for t in second["transactions"]] == [ids[0]]
        assert first["totalNumInResultSet"] == second["totalNumInResultSet"] == "3"
        assert {t["transactionStatus"] for t in first["transactions"]} == {"settledSuccessfully"}
