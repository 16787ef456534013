from authorize_net_simulator.masking import mask_body


class TestMaskBody:
    def test_json_card_fields_and_keys_are_masked(self) -> None:
        body = b'{"x":{"transactionKey":"simTransKey00001","cardNumber":"4111111111111111","expirationDate":"2035-12","cardCode":"123","amount":"5.00"}}'
        masked = mask_body(body)
        assert "4111111111111111" not in masked
        assert "simTransKey00001" not in masked
        assert "2035-12" not in masked
        assert '"123"' not in masked
        assert '"cardNumber":"XXXX1111"' in masked
        assert '"amount":"5.00"' in masked

    def test_json_numbers_are_masked_too(self) -> None:
        assert "4111111111111111" not in mask_body(b'{"cardNumber": 4111111111111111, "cardCode": 123}')

    def test_xml_card_fields_are_masked(self) -> None:
        body = b"<a><cardNumber>4111111111111111</cardNumber><expirationDate>2035-12</expirationDate><cardCode>123</cardCode><transactionKey>k</transactionKey></a>"
        masked = mask_body(body)
        assert (
            masked
            == "<a><cardNumber>XXXX1111</cardNumber><expirationDate>XXXX</expirationDate><cardCode>XXXX</cardCode><transactionKey>XXXX</transactionKey></a>"
        )

    def test_card_shaped_digits_elsewhere_are_masked(self) -> None:
        assert mask_body(b'{"description":"card 4111111111111111"}') == '{"description":"card XXXX1111"}'

    def test_transaction_ids_are_kept(self) -> None:
        assert mask_body(b'{"refTransId":"80000000001"}') == '{"refTransId":"80000000001"}'
