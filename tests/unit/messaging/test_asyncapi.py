from pathlib import Path
from typing import Any

import yaml

from payment_service.domain.events import OrderPaid, PaymentRecorded
from payment_service.messaging.asyncapi import build_document, render_document

DOCUMENT = Path(__file__).resolve().parents[3] / "docs" / "asyncapi.yaml"
REGENERATE = "python -m payment_service.messaging.asyncapi > docs/asyncapi.yaml"


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


class TestAsyncApiDocument:
    def test_committed_document_matches_the_event_models(self) -> None:
        assert DOCUMENT.read_text() == render_document(), f"docs/asyncapi.yaml is stale: run `{REGENERATE}`"

    def test_payload_schemas_have_every_model_field(self) -> None:
        schemas = yaml.safe_load(DOCUMENT.read_text())["components"]["schemas"]

        for model in (PaymentRecorded, OrderPaid):
            assert set(schemas[model.__name__]["properties"]) == set(model.model_fields)

    def test_every_reference_resolves(self) -> None:
        document = build_document()

        for ref in refs(document):
            assert resolve(document, ref) is not None, ref

    def test_payments_channel_lists_every_published_payment_type(self) -> None:
        channels = build_document()["channels"]

        assert list(channels["payments"]["messages"]) == [
            "payment.approved",
            "payment.declined",
            "payment.failed",
            "payment.held_for_review",
            "payment.refunded",
            "payment.voided",
        ]
        assert list(channels["notifications"]["messages"]) == ["order.paid", "order.refunded"]
