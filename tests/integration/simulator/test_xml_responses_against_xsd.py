"""XML answers of the simulator are valid against the official schema (skipped when it is absent)."""

import re
from pathlib import Path
from typing import Any

import pytest

from authorize_net_simulator.app import API_PATH
from tests.integration.simulator.conftest import AUTH, Gateway

XSD_PATH = Path(__file__).resolve().parents[4] / "shared" / "reference" / "authorizenet" / "AnetApiSchema.xsd"
NS = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
CREDENTIALS = f"<merchantAuthentication><name>{AUTH['name']}</name><transactionKey>{AUTH['transactionKey']}</transactionKey></merchantAuthentication>"


@pytest.fixture(scope="module")
def official_schema() -> Any:
    if not XSD_PATH.exists():
        pytest.skip(
            f"official schema not found at {XSD_PATH}; needs ../shared/reference/authorizenet/AnetApiSchema.xsd"
        )
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema10(str(XSD_PATH))


class TestXmlResponses:
    async def test_every_supported_method_answers_schema_valid_xml(
        self, gateway: Gateway, official_schema: Any
    ) -> None:
        async def post(body: str) -> str:
            response = await gateway.client.post(API_PATH, content=body, headers={"content-type": "application/xml"})
            text = response.content.decode("utf-8-sig")
            official_schema.validate(text)
            return text

        charge = (
            f'<createTransactionRequest xmlns="{NS}">{CREDENTIALS}<refId>r1</refId><transactionRequest>'
            "<transactionType>authCaptureTransaction</transactionType><amount>5.00</amount><payment><creditCard>"
            "<cardNumber>4111111111111111</cardNumber><expirationDate>2035-12</expirationDate></creditCard></payment>"
            "<order><invoiceNumber>I1</invoiceNumber></order><lineItems><lineItem><itemId>1</itemId><name>W</name>"
            "<quantity>1</quantity><unitPrice>5.00</unitPrice></lineItem></lineItems><billTo><firstName>J</firstName>"
            "<zip>46253</zip></billTo></transactionRequest></createTransactionRequest>"
        )
        found = re.search(r"<transId>(\d+)</transId>", await post(charge))
        assert found is not None
        trans_id = found.group(1)
        await post(charge.replace("4111111111111111", "4111111111111112"))
        await post(
            f'<getTransactionDetailsRequest xmlns="{NS}">{CREDENTIALS}<transId>{trans_id}</transId></getTransactionDetailsRequest>'
        )
        await post(
            f'<getUnsettledTransactionListRequest xmlns="{NS}">{CREDENTIALS}</getUnsettledTransactionListRequest>'
        )
        await post(f'<authenticateTestRequest xmlns="{NS}">{CREDENTIALS}</authenticateTestRequest>')
        error = await post(
            f'<authenticateTestRequest xmlns="{NS}"><refId>x</refId>{CREDENTIALS}</authenticateTestRequest>'
        )
        assert "<ErrorResponse " in error
        await post(
            f'<updateHeldTransactionRequest xmlns="{NS}">{CREDENTIALS}<heldTransactionRequest><action>approve</action>'
            f"<refTransId>{trans_id}</refTransId></heldTransactionRequest></updateHeldTransactionRequest>"
        )
        await gateway.client.post("/_sim/settle")
        await post(f'<getSettledBatchListRequest xmlns="{NS}">{CREDENTIALS}</getSettledBatchListRequest>')
        await post(
            f'<getTransactionListRequest xmlns="{NS}">{CREDENTIALS}<batchId>1000001</batchId></getTransactionListRequest>'
        )
        settled = await post(
            f'<getTransactionDetailsRequest xmlns="{NS}">{CREDENTIALS}<transId>{trans_id}</transId></getTransactionDetailsRequest>'
        )
        assert "<transactionStatus>settledSuccessfully</transactionStatus>" in settled
