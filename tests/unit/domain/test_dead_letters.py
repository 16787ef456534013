import pytest

from payment_service.domain.dead_letters import DeadLetterPosition


class TestDeadLetterPosition:
    def test_partition_and_offset_are_read_and_printed_back(self) -> None:
        position = DeadLetterPosition.parse("2:1045")

        assert position == DeadLetterPosition(2, 1045)
        assert str(position) == "2:1045"

    @pytest.mark.parametrize("text", ["", "2", "2:", ":5", "a:1", "1:-2", "1:2:3", " 1:2"])
    def test_anything_else_is_refused(self, text: str) -> None:
        with pytest.raises(ValueError, match="PARTITION:OFFSET"):
            DeadLetterPosition.parse(text)
