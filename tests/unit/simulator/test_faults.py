import pytest
from pydantic import ValidationError

from authorize_net_simulator.faults import FaultBook, FaultKind, FaultRequest


class TestFaultBook:
    def test_a_counted_fault_fires_for_the_next_calls_only(self) -> None:
        book = FaultBook()
        book.add(FaultRequest(kind=FaultKind.SYSTEM_ERROR, count=2))
        codes = [book.plan("createTransactionRequest").error_code for _ in range(3)]
        assert codes == ["E00001", "E00001", None]

    def test_a_fault_skips_other_methods(self) -> None:
        book = FaultBook()
        book.add(FaultRequest(kind=FaultKind.SERVER_BUSY))
        assert book.plan("getTransactionDetailsRequest").error_code is None
        assert book.plan("createTransactionRequest").error_code == "E00053"

    def test_a_fault_without_method_applies_to_every_method(self) -> None:
        book = FaultBook()
        book.add(FaultRequest(kind=FaultKind.LATENCY, method=None, latency_ms=20))
        assert book.plan("authenticateTestRequest").latency_ms == 20

    def test_a_probability_fault_with_a_seed_is_repeatable(self) -> None:
        def firings() -> list[bool]:
            book = FaultBook()
            book.add(FaultRequest(kind=FaultKind.HELD_FOR_REVIEW, count=None, probability=0.5, seed=7))
            return [book.plan("createTransactionRequest").hold_reason is not None for _ in range(20)]

        first = firings()
        assert first == firings()
        assert 0 < sum(first) < 20

    def test_faults_combine_within_one_call(self) -> None:
        book = FaultBook()
        book.add(FaultRequest(kind=FaultKind.LATENCY, latency_ms=5))
        book.add(FaultRequest(kind=FaultKind.STALL_AFTER_COMMIT, stall_s=2))
        plan = book.plan("createTransactionRequest")
        assert (plan.latency_ms, plan.stall_s) == (5, 2)

    def test_an_unbounded_fault_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            FaultRequest(kind=FaultKind.SYSTEM_ERROR, count=None)
