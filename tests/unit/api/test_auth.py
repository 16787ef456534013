import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from payment_service.api.auth import Principal, TokenVerifier, mint_token
from payment_service.domain.errors import AuthenticationFailed
from payment_service.settings import AuthSettings

SECRET = "unit-test-secret-0123456789abcdef-0123456789-0123456789abcdef-xyz"


def settings(**changes: Any) -> AuthSettings:
    return AuthSettings(secret=SecretStr(SECRET), **changes)


def token(claims: dict[str, Any], *, key: Any = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def in_ten_minutes() -> int:
    return int(time.time()) + 600


class TestTokenVerifier:
    async def test_valid_token_yields_subject_and_roles(self) -> None:
        verifier = TokenVerifier(settings())

        principal = await verifier.verify(token({"sub": "42", "exp": in_ten_minutes(), "roles": ["admin"]}))

        assert principal == Principal("42", frozenset({"admin"}))
        assert principal.is_admin

    async def test_token_without_roles_is_a_plain_customer(self) -> None:
        principal = await TokenVerifier(settings()).verify(token({"sub": "42", "exp": in_ten_minutes()}))

        assert not principal.is_admin

    @pytest.mark.parametrize(
        ("claims", "message"),
        [
            ({"sub": "42", "exp": 1}, "expired"),
            ({"sub": "42"}, "exp"),
            ({"exp": 4102444800}, "sub"),
            ({"sub": "42", "exp": 4102444800, "roles": [1]}, "roles"),
        ],
    )
    async def test_claims_are_checked(self, claims: dict[str, Any], message: str) -> None:
        with pytest.raises(AuthenticationFailed, match=message):
            await TokenVerifier(settings()).verify(token(claims))

    async def test_wrong_secret_is_refused(self) -> None:
        forged = token({"sub": "42", "exp": in_ten_minutes()}, key="another-secret-0123456789abcdef-0123456789")

        with pytest.raises(AuthenticationFailed, match="signature"):
            await TokenVerifier(settings()).verify(forged)

    async def test_algorithm_comes_from_settings_not_from_the_token(self) -> None:
        hs512 = token({"sub": "42", "exp": in_ten_minutes()}, algorithm="HS512")

        with pytest.raises(AuthenticationFailed, match="algorithm"):
            await TokenVerifier(settings()).verify(hs512)

    async def test_alg_none_is_refused(self) -> None:
        unsigned = jwt.encode({"sub": "42", "exp": in_ten_minutes()}, "", algorithm="none")

        with pytest.raises(AuthenticationFailed):
            await TokenVerifier(settings()).verify(unsigned)

    async def test_audience_and_issuer_are_checked_when_configured(self) -> None:
        verifier = TokenVerifier(settings(audience="payments", issuer="https://id.example"))
        good = {"sub": "42", "exp": in_ten_minutes(), "aud": "payments", "iss": "https://id.example"}

        assert (await verifier.verify(token(good))).customer_id == "42"
        with pytest.raises(AuthenticationFailed, match="audience"):
            await verifier.verify(token(good | {"aud": "billing"}))
        with pytest.raises(AuthenticationFailed, match="issuer"):
            await verifier.verify(token(good | {"iss": "https://evil.example"}))

    async def test_token_for_some_audience_is_refused_when_none_is_configured(self) -> None:
        with pytest.raises(AuthenticationFailed, match="audience"):
            await TokenVerifier(settings()).verify(token({"sub": "42", "exp": in_ten_minutes(), "aud": "billing"}))

    async def test_es256_tokens_verify_with_the_configured_public_key(self) -> None:
        private_key = ec.generate_private_key(ec.SECP256R1())
        public_pem = private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        verifier = TokenVerifier(settings(algorithm="ES256", public_key=public_pem.decode()))

        principal = await verifier.verify(
            token({"sub": "7", "exp": in_ten_minutes()}, key=private_key, algorithm="ES256")
        )

        assert principal.customer_id == "7"
        with pytest.raises(AuthenticationFailed):
            await verifier.verify(token({"sub": "7", "exp": in_ten_minutes()}))  # HS256 with the secret

    def test_asymmetric_algorithm_without_a_key_fails_at_start(self) -> None:
        with pytest.raises(ValueError, match="public_key"):
            TokenVerifier(settings(algorithm="RS256"))


class TestMintToken:
    async def test_minted_token_verifies_with_the_same_settings(self) -> None:
        auth = settings(audience="payments", issuer="dev")
        minted = mint_token(auth, customer_id="42", roles=["admin"], ttl_s=60)

        principal = await TokenVerifier(auth).verify(minted)

        assert principal == Principal("42", frozenset({"admin"}))

    def test_minting_needs_a_shared_secret_algorithm(self) -> None:
        with pytest.raises(ValueError, match="HS"):
            mint_token(settings(algorithm="RS256", public_key="x"), customer_id="42")
