"""Duplicate window, nonces, capture/void/refund rules and reporting, in-process with a manual clock."""

from typing import Any

from tests.integration.simulator.conftest import AUTH, Gateway, make_charge
from tests.integration.simulator.test_gateway_api import reason_of


async def charge(gateway: Gateway, **overrides: Any) -> str:
    answer = await gateway.transact(make_charge(**overrides))
    assert answer["transactionResponse"]["responseCode"] == "1", answer
    trans_id: str = answer["transactionResponse"]["transId"]
    return trans_id


async def follow_up(
    gateway: Gateway,
    transaction_type: str,
    ref_trans_id: str,
    *,
    amount: str | None = None,
    card_number: str | None = None,
) -> dict[str, Any]:
    transaction: dict[str, Any] = {"transactionType": transaction_type}
    if amount is not None:
        transaction["amount"] = amount
    if card_number is not None:
        transaction["payment"] = {"creditCard": {"cardNumber": card_number, "expirationDate": "XXXX"}}
    transaction["refTransId"] = ref_trans_id
    return await gateway.transact(transaction)


class TestDuplicateWindow:
    async def test_a_repeat_within_an_explicit_window_returns_the_original(self, gateway: Gateway) -> None:
        first = await gateway.transact(make_charge(duplicate_window=60))
        gateway.clock.advance(seconds=59)
        repeat = await gateway.transact(make_charge(duplicate_window=60), ref_id="r-2")
        assert reason_of(repeat) == ("3", "11")
        assert repeat["transactionResponse"]["transId"] == first["transactionResponse"]["transId"]
        assert repeat["transactionResponse"]["authCode"] == first["transactionResponse"]["authCode"]
        assert len(await gateway.ledger()) == 1

    async def test_a_repeat_after_the_window_is_a_new_charge(self, gateway: Gateway) -> None:
        await gateway.transact(make_charge(duplicate_window=60))
        gateway.clock.advance(seconds=60)
        assert reason_of(await gateway.transact(make_charge(duplicate_window=60))) == ("1", "1")
        assert len(await gateway.ledger()) == 2

    async def test_without_an_explicit_window_the_default_applies_and_hides_the_original(
        self, gateway: Gateway
    ) -> None:
        await gateway.transact(make_charge())
        gateway.clock.advance(seconds=119)
        repeat = await gateway.transact(make_charge())
        assert reason_of(repeat) == ("3", "11")
        assert repeat["transactionResponse"]["transId"] == "0"

    async def test_a_different_invoice_number_is_not_a_duplicate(self, gateway: Gateway) -> None:
        await gateway.transact(make_charge(duplicate_window=600))
        assert reason_of(await gateway.transact(make_charge(duplicate_window=600, invoice_number="INV-2"))) == (
            "1",
            "1",
        )

    async def test_a_zero_window_disables_the_check(self, gateway: Gateway) -> None:
        await gateway.transact(make_charge(duplicate_window=0))
        assert reason_of(await gateway.transact(make_charge(duplicate_window=0))) == ("1", "1")


class TestNonces:
    async def nonce(self, gateway: Gateway) -> dict[str, str]:
        response = await gateway.client.post(
            "/_sim/nonces", json={"cardNumber": "4111111111111111", "expirationDate": "2035-12", "cardCode": "900"}
        )
        assert response.status_code == 201
        opaque: dict[str, str] = response.json()
        return opaque

    def with_nonce(self, opaque: dict[str, str], invoice_number: str) -> dict[str, Any]:
        transaction = make_charge(invoice_number=invoice_number)
        transaction["payment"] = {"opaqueData": opaque}
        return transaction

    async def test_a_nonce_charges_once(self, gateway: Gateway) -> None:
        opaque = await self.nonce(gateway)
        assert opaque["dataDescriptor"] == "COMMON.ACCEPT.INAPP.PAYMENT"
        answer = await gateway.transact(self.with_nonce(opaque, "INV-1"))
        assert reason_of(answer) == ("1", "1")
        assert answer["transactionResponse"]["accountNumber"] == "XXXX1111"
        again = await gateway.transact(self.with_nonce(opaque, "INV-2"))
        assert again["messages"]["message"][0]["code"] == "E00114"
        assert len(await gateway.ledger()) == 1

    async def test_a_nonce_expires_after_fifteen_minutes_with_e00115(self, gateway: Gateway) -> None:
        opaque = await self.nonce(gateway)
        gateway.clock.advance(minutes=15, seconds=1)
        answer = await gateway.transact(self.with_nonce(opaque, "INV-1"))
        # The live gateway tells an expired token (E00115) from an invalid one (E00114).
        assert answer["messages"]["message"][0]["code"] == "E00115"
        assert len(await gateway.ledger()) == 0

    async def test_a_charge_in_a_currency_the_merchant_does_not_take_gets_reason_39(self, gateway: Gateway) -> None:
        transaction = make_charge(invoice_number="INV-39")
        first, second, *rest = transaction.items()  # transactionType, amount: currencyCode follows them
        in_euros = dict([first, second, ("currencyCode", "EUR"), *rest])

        answer = await gateway.transact(in_euros)

        assert reason_of(answer) == ("3", "39")
        assert len(await gateway.ledger()) == 0

    async def test_an_invalid_card_gets_no_nonce(self, gateway: Gateway) -> None:
        response = await gateway.client.post(
            "/_sim/nonces", json={"cardNumber": "4111111111111112", "expirationDate": "2035-12"}
        )
        assert response.status_code == 422
        assert "4111111111111112" not in response.text


class TestCaptureVoidRefund:
    async def test_an_authorization_is_captured_once_and_not_above_the_authorised_amount(
        self, gateway: Gateway
    ) -> None:
        auth_id = await charge(gateway, transaction_type="authOnlyTransaction", amount="50.00")
        assert reason_of(await follow_up(gateway, "priorAuthCaptureTransaction", auth_id, amount="50.01")) == (
            "3",
            "47",
        )
        captured = await follow_up(gateway, "priorAuthCaptureTransaction", auth_id, amount="40.00")
        assert reason_of(captured) == ("1", "1")
        assert captured["transactionResponse"]["transId"] == auth_id
        assert reason_of(await follow_up(gateway, "priorAuthCaptureTransaction", auth_id)) == ("3", "311")
        (entry,) = await gateway.ledger()
        assert (entry["status"], entry["settleAmount"]) == ("capturedPendingSettlement", "40.00")

    async def test_an_unknown_reference_is_16(self, gateway: Gateway) -> None:
        assert reason_of(await follow_up(gateway, "voidTransaction", "99999999999")) == ("3", "16")

    async def test_a_void_of_an_unsettled_charge_then_again_is_310(self, gateway: Gateway) -> None:
        trans_id = await charge(gateway)
        assert reason_of(await follow_up(gateway, "voidTransaction", trans_id)) == ("1", "1")
        assert reason_of(await follow_up(gateway, "voidTransaction", trans_id)) == ("1", "310")
        assert (await gateway.ledger())[0]["status"] == "voided"

    async def test_a_settled_charge_cannot_be_voided_but_can_be_refunded_up_to_its_amount(
        self, gateway: Gateway
    ) -> None:
        trans_id = await charge(gateway, amount="30.00")
        assert reason_of(
            await follow_up(gateway, "refundTransaction", trans_id, amount="10.00", card_number="1111")
        ) == ("3", "54")
        settled = (await gateway.client.post("/_sim/settle")).json()
        assert settled["settled"] == [trans_id]
        assert reason_of(await follow_up(gateway, "voidTransaction", trans_id)) == ("3", "311")
        assert reason_of(
            await follow_up(gateway, "refundTransaction", trans_id, amount="10.00", card_number="0000")
        ) == ("3", "54")
        refund = await follow_up(gateway, "refundTransaction", trans_id, amount="20.00", card_number="1111")
        assert reason_of(refund) == ("1", "1")
        assert refund["transactionResponse"]["refTransID"] == trans_id
        assert reason_of(
            await follow_up(gateway, "refundTransaction", trans_id, amount="10.01", card_number="1111")
        ) == ("3", "55")
        statuses = {entry["transId"]: entry["status"] for entry in await gateway.ledger()}
        assert statuses == {
            trans_id: "settledSuccessfully",
            refund["transactionResponse"]["transId"]: "refundPendingSettlement",
        }

    async def test_a_refund_after_120_days_is_54(self, gateway: Gateway) -> None:
        trans_id = await charge(gateway)
        await gateway.client.post("/_sim/settle")
        gateway.clock.advance(days=121)
        assert reason_of(
            await follow_up(gateway, "refundTransaction", trans_id, amount="1.00", card_number="XXXX1111")
        ) == ("3", "54")

    async def test_a_held_charge_is_approved_through_update_held_transaction(self, gateway: Gateway) -> None:
        held = await gateway.transact(make_charge(zip_code="46253"))
        trans_id = held["transactionResponse"]["transId"]
        assert (await gateway.ledger())[0]["status"] == "FDSAuthorizedPendingReview"
        request = {
            "updateHeldTransactionRequest": {
                "merchantAuthentication": AUTH,
                "heldTransactionRequest": {"action": "approve", "refTransId": trans_id},
            }
        }
        assert reason_of(await gateway.call(request)) == ("1", "1")
        assert (await gateway.ledger())[0]["status"] == "capturedPendingSettlement"


class TestReporting:
    async def test_transaction_details_carry_the_status_and_the_ref_id_as_transref_id(self, gateway: Gateway) -> None:
        trans_id = await charge(gateway)
        answer = await gateway.call(
            {"getTransactionDetailsRequest": {"merchantAuthentication": AUTH, "transId": trans_id}}
        )
        transaction = answer["transaction"]
        assert answer["transrefId"] == "r-1"
        assert (
            transaction["transactionStatus"],
            transaction["order"]["invoiceNumber"],
            transaction["settleAmount"],
        ) == ("capturedPendingSettlement", "INV-1", "24.99")
        assert transaction["payment"]["creditCard"] == {
            "cardNumber": "XXXX1111",
            "expirationDate": "XXXX",
            "cardType": "Visa",
        }
        assert transaction["lineItems"] == [{"itemId": "1", "name": "Widget", "quantity": "2", "unitPrice": "12.495"}]

    async def test_an_unknown_transaction_is_e00040(self, gateway: Gateway) -> None:
        answer = await gateway.call(
            {"getTransactionDetailsRequest": {"merchantAuthentication": AUTH, "transId": "123"}}
        )
        assert answer["messages"]["message"][0]["code"] == "E00040"

    async def test_the_unsettled_list_sorts_newest_first_and_pages(self, gateway: Gateway) -> None:
        ids = []
        for index in range(5):
            ids.append(await charge(gateway, invoice_number=f"INV-{index}"))
            gateway.clock.advance(seconds=1)

        async def page(offset: int) -> dict[str, Any]:
            return await gateway.call(
                {
                    "getUnsettledTransactionListRequest": {
                        "merchantAuthentication": AUTH,
                        "sorting": {"orderBy": "submitTimeUTC", "orderDescending": True},
                        "paging": {"limit": 2, "offset": offset},
                    }
                }
            )

        pages = [await page(offset) for offset in (1, 2, 3, 4)]
        seen = [[t["transId"] for t in p.get("transactions", [])] for p in pages]
        assert seen == [ids[4:2:-1], ids[2:0:-1], ids[0:1], []]
        assert {p["totalNumInResultSet"] for p in pages} == {"5"}
        assert pages[0]["transactions"][0]["invoiceNumber"] == "INV-4"

    async def test_settled_transactions_leave_the_unsettled_list(self, gateway: Gateway) -> None:
        await charge(gateway)
        await gateway.client.post("/_sim/settle")
        answer = await gateway.call({"getUnsettledTransactionListRequest": {"merchantAuthentication": AUTH}})
        assert "transactions" not in answer
        assert answer["totalNumInResultSet"] == "0"
