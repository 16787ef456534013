"""Responses as a neutral tree, rendered in the request's flavour with the gateway's leading BOM.

A tree is a dict in XSD element order: a str value is a simple element, a dict a complex one, a
list a repeated element, and `Flat` an array wrapper that XML writes as `<name><item/>…</name>` and
JSON flattens to `"name": […]` (transactionResponse.messages/errors, reporting lists). JSON puts
the method's own elements before `refId` and `messages`, like the real server.
"""

from typing import Final, TypeAlias, Union
from xml.sax.saxutils import escape

import orjson

from authorize_net_simulator.content_model import ANET_NAMESPACE
from authorize_net_simulator.documents import Flavour

BOM: Final = b"\xef\xbb\xbf"
_ENVELOPE_KEYS: Final = ("refId", "messages", "sessionToken")
_XML_HEAD: Final = '<?xml version="1.0" encoding="utf-8"?>'
_XML_NAMESPACES: Final = f' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns="{ANET_NAMESPACE}"'


class Flat:
    __slots__ = ("item", "items")

    def __init__(self, item: str, items: list["Tree"]) -> None:
        self.item = item
        self.items = items


Value: TypeAlias = Union[str, "Tree", list["Tree"], Flat]
Tree: TypeAlias = dict[str, Value]

CONTENT_TYPES: Final = {Flavour.JSON: "application/json; charset=utf-8", Flavour.XML: "application/xml; charset=utf-8"}


def render(root_name: str, tree: Tree, flavour: Flavour) -> bytes:
    if flavour is Flavour.JSON:
        ordered = {key: value for key, value in tree.items() if key not in _ENVELOPE_KEYS}
        ordered.update((key, tree[key]) for key in _ENVELOPE_KEYS if key in tree)
        return BOM + orjson.dumps(_to_json(ordered))
    parts = [_XML_HEAD, f"<{root_name}{_XML_NAMESPACES}>"]
    _write_xml(tree, parts)
    parts.append(f"</{root_name}>")
    return BOM + "".join(parts).encode()


def _to_json(value: Value) -> object:
    if isinstance(value, str):
        return value
    if isinstance(value, Flat):
        return [_to_json(item) for item in value.items]
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    return {key: _to_json(item) for key, item in value.items()}


def _write_xml(tree: Tree, parts: list[str]) -> None:
    for name, value in tree.items():
        _write_element(name, value, parts)


def _write_element(name: str, value: Value, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(f"<{name}>{escape(value)}</{name}>" if value else f"<{name} />")
    elif isinstance(value, Flat):
        parts.append(f"<{name}>")
        for item in value.items:
            _write_element(value.item, item, parts)
        parts.append(f"</{name}>")
    elif isinstance(value, list):
        for item in value:
            _write_element(name, item, parts)
    else:
        parts.append(f"<{name}>")
        _write_xml(value, parts)
        parts.append(f"</{name}>")
