from payment_service.admin_client import render_record, render_table

PAYMENT = {
    "id": "pay_1",
    "status": "approved",
    "amount": "59.97",
    "gateway": {"transaction_id": "80000000001", "message": None},
}


class TestRenderTable:
    def test_columns_line_up_and_dotted_names_reach_into_objects(self) -> None:
        table = render_table([PAYMENT, {**PAYMENT, "id": "pay_22222"}], ["id", "status", "gateway.transaction_id"])

        assert table.splitlines() == [
            "ID         STATUS    GATEWAY.TRANSACTION_ID",
            "pay_1      approved  80000000001",
            "pay_22222  approved  80000000001",
        ]

    def test_missing_values_show_as_a_dash_and_long_ones_are_cut(self) -> None:
        table = render_table([{"id": "x" * 80}], ["id", "status"])

        assert table.splitlines()[1] == "x" * 57 + "...  -"

    def test_no_rows_is_the_header_alone(self) -> None:
        assert render_table([], ["id"]) == "ID"


class TestRenderRecord:
    def test_one_field_per_line(self) -> None:
        assert render_record(PAYMENT, ["id", "gateway.message"]).splitlines() == [
            "id               pay_1",
            "gateway.message  -",
        ]
