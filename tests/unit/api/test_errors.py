import orjson
import pytest

from payment_service.api.errors import ERROR_STATUS, error_response, status_for
from payment_service.domain import errors


class TestErrorTable:
    @pytest.mark.parametrize(
        ("error", "status"),
        [
            (errors.AuthenticationFailed(), 401),
            (errors.PermissionDenied(), 403),
            (errors.OrderNotFound("1"), 404),
            (errors.PaymentNotFound("pay_1"), 404),
            (errors.OrderNotPayable("1", "paid"), 409),
            (errors.PaymentInProgress("1"), 409),
            (errors.IdempotencyKeyInFlight(), 409),
            (errors.AmountMismatch(), 422),
            (errors.CustomerMismatch(), 422),
            (errors.InvalidCard(), 422),
            (errors.RawCardInputDisabled(), 422),
            (errors.IdempotencyKeyReused(), 422),
            (errors.DbServiceUnavailable(), 503),
            (errors.GatewayUnavailable(), 503),
            (errors.GatewayConfigurationError(), 503),
            (errors.DbServiceError(), 502),
            (errors.PaymentServiceError(), 500),
        ],
    )
    def test_status_is_found_along_the_class_hierarchy(self, error: errors.PaymentServiceError, status: int) -> None:
        assert status_for(error) == status

    def test_a_new_leaf_error_inherits_its_parents_status(self) -> None:
        class OrderArchived(errors.Conflict):
            code = "order_archived"

        assert OrderArchived not in ERROR_STATUS
        assert status_for(OrderArchived()) == 409

    def test_503_carries_retry_after_and_hides_internal_detail(self) -> None:
        response = error_response(errors.DbServiceUnavailable("db-service unreachable: ConnectError at 10.0.0.7"))

        body = orjson.loads(response.body)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert response.media_type == "application/problem+json"
        assert body["code"] == "db_service_unavailable"
        assert "10.0.0.7" not in body["detail"]

    def test_client_errors_keep_their_message(self) -> None:
        body = orjson.loads(error_response(errors.AmountMismatch("amount does not match the order total")).body)

        assert body == {
            "type": "about:blank",
            "title": "Amount mismatch",
            "status": 422,
            "code": "amount_mismatch",
            "detail": "amount does not match the order total",
        }
