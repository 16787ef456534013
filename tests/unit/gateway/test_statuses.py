import pytest

from payment_service.domain.payments import PaymentStatus
from payment_service.domain.transactions import GatewayTransactionStatus, TransactionKind
from payment_service.gateway.statuses import TRANSACTION_STATUSES, get_transaction_kind, get_transaction_status
from tests.unit.gateway.anet_schema import transaction_statuses


class TestTransactionStatuses:
    def test_every_value_of_the_official_enumeration_is_mapped(self) -> None:
        official = transaction_statuses()

        assert official - TRANSACTION_STATUSES.keys() == set()

    def test_the_table_holds_nothing_the_schema_does_not_define(self) -> None:
        assert TRANSACTION_STATUSES.keys() - transaction_statuses() == set()

    def test_the_literal_table_has_all_24_values(self) -> None:
        assert len(TRANSACTION_STATUSES) == 24

    @pytest.mark.parametrize(
        ("gateway_status", "payment_status"),
        [
            ("authorizedPendingCapture", PaymentStatus.APPROVED),
            ("capturedPendingSettlement", PaymentStatus.APPROVED),
            ("settledSuccessfully", PaymentStatus.APPROVED),
            ("FDSPendingReview", PaymentStatus.HELD_FOR_REVIEW),
            ("FDSAuthorizedPendingReview", PaymentStatus.HELD_FOR_REVIEW),
            ("declined", PaymentStatus.DECLINED),
            ("generalError", PaymentStatus.FAILED),
            ("voided", PaymentStatus.VOIDED),
            ("expired", PaymentStatus.VOIDED),
            ("refundSettledSuccessfully", PaymentStatus.REFUNDED),
            ("chargeback", PaymentStatus.REFUNDED),
            ("notAStatusYet", PaymentStatus.UNKNOWN),
        ],
    )
    def test_gateway_status_implies_a_payment_status(self, gateway_status: str, payment_status: PaymentStatus) -> None:
        assert get_transaction_status(gateway_status).payment_status is payment_status

    def test_every_domain_status_maps_to_a_payment_status(self) -> None:
        assert {status.payment_status for status in GatewayTransactionStatus} <= set(PaymentStatus)

    def test_unsettled_transactions_are_voided_and_settled_ones_refunded(self) -> None:
        voidable = {name for name, status in TRANSACTION_STATUSES.items() if status.can_void}
        refundable = {name for name, status in TRANSACTION_STATUSES.items() if status.can_refund}

        assert {"authorizedPendingCapture", "capturedPendingSettlement", "FDSPendingReview"} <= voidable
        assert "settledSuccessfully" not in voidable
        assert refundable == {"settledSuccessfully", "chargebackReversal"}


class TestTransactionKinds:
    @pytest.mark.parametrize(
        ("transaction_type", "kind"),
        [
            ("authCaptureTransaction", TransactionKind.CHARGE),
            ("authOnlyTransaction", TransactionKind.AUTHORIZATION),
            ("priorAuthCaptureTransaction", TransactionKind.CAPTURE),
            ("refundTransaction", TransactionKind.REFUND),
            ("voidTransaction", TransactionKind.VOID),
            ("getDetailsTransaction", TransactionKind.OTHER),
        ],
    )
    def test_transaction_type_names_a_kind(self, transaction_type: str, kind: TransactionKind) -> None:
        assert get_transaction_kind(transaction_type) is kind
