"""Request bodies in either flavour (XML or JSON) turned into one tree of `Node`s.

JSON is mapped onto the XML shape the way the real server does: a key is an element, an array is a
repeated element, scalars become text (`true`/`false` for booleans), and `null` leaves the element
out. Key order is document order, which matters because the schema's sequences are ordered.
XML is parsed with defusedxml (no entities, no DTDs).
"""

import enum
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
from defusedxml import ElementTree as SafeET

from authorize_net_simulator.content_model import ANET_NAMESPACE


class Flavour(enum.StrEnum):
    JSON = "json"
    XML = "xml"


class Node:
    """An element: a name, its namespace, and either text or child elements (in document order)."""

    __slots__ = ("children", "name", "namespace", "text")

    def __init__(self, name: str, namespace: str, text: str | None, children: list["Node"] | None) -> None:
        self.name = name
        self.namespace = namespace
        self.text = text
        self.children = children

    def __repr__(self) -> str:
        # Never the text: it may be a card number.
        return f"Node({self.name!r})"

    def get(self, name: str) -> "Node | None":
        for child in self.children or ():
            if child.name == name:
                return child
        return None

    def get_text(self, name: str) -> str | None:
        child = self.get(name)
        return None if child is None else child.text

    def get_all(self, name: str) -> list["Node"]:
        return [child for child in self.children or () if child.name == name]

    def iter_children(self) -> Iterator["Node"]:
        return iter(self.children or ())


@dataclass(frozen=True, slots=True)
class Document:
    flavour: Flavour
    root: Node


class UnreadableDocument(Exception):
    """The body is not well-formed XML or JSON; `detail` is the parser's complaint (no body content)."""

    def __init__(self, flavour: Flavour, detail: str) -> None:
        super().__init__(detail)
        self.flavour = flavour
        self.detail = detail


class ForeignNamespace(Exception):
    """An XML root element outside the Authorize.Net namespace (E00045)."""


_BOM = b"\xef\xbb\xbf"


def detect_flavour(content_type: str, body: bytes) -> Flavour:
    """JSON when the content type says so or the body starts like JSON; XML otherwise."""
    if "json" in content_type:
        return Flavour.JSON
    if "xml" in content_type:
        return Flavour.XML
    head = body.lstrip(_BOM).lstrip()[:1]
    return Flavour.JSON if head in (b"{", b"[") else Flavour.XML


def parse_document(body: bytes, flavour: Flavour) -> Document:
    """Parse a request body into a Document.

    Raises:
        UnreadableDocument: malformed body, or JSON that is not an object with exactly one key.
        ForeignNamespace: an XML root outside the Authorize.Net namespace.
    """
    if body.startswith(_BOM):
        body = body[3:]
    if flavour is Flavour.JSON:
        return Document(flavour, _parse_json(body))
    return Document(flavour, _parse_xml(body))


def _parse_json(body: bytes) -> Node:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise UnreadableDocument(
            Flavour.JSON, f"Unexpected character encountered while parsing value. {exc.msg}."
        ) from None
    if not isinstance(value, dict) or len(value) != 1:
        raise UnreadableDocument(Flavour.JSON, "The request must be a JSON object with exactly one root property.")
    ((name, content),) = value.items()
    nodes = _json_nodes(name, content)
    if len(nodes) != 1:
        raise UnreadableDocument(Flavour.JSON, f"The root property '{name}' must be an object.")
    return nodes[0]


def _json_nodes(name: str, value: object) -> list[Node]:
    if value is None:
        return []
    if isinstance(value, dict):
        children: list[Node] = []
        for key, item in value.items():
            children.extend(_json_nodes(key, item))
        return [Node(name, ANET_NAMESPACE, None, children)]
    if isinstance(value, list):
        nodes: list[Node] = []
        for item in value:
            nodes.extend(_json_nodes(name, item))
        return nodes
    if isinstance(value, bool):
        return [Node(name, ANET_NAMESPACE, "true" if value else "false", None)]
    return [Node(name, ANET_NAMESPACE, value if isinstance(value, str) else str(value), None)]


def _parse_xml(body: bytes) -> Node:
    try:
        root = SafeET.fromstring(body)
    except ET.ParseError as exc:
        line, column = exc.position
        raise UnreadableDocument(
            Flavour.XML, f"Data at the root level is invalid. Line {line}, position {column + 1}."
        ) from None
    except Exception as exc:  # noqa: BLE001 - defusedxml raises its own types for entities and DTDs
        raise UnreadableDocument(Flavour.XML, f"The XML document is not accepted: {type(exc).__name__}.") from None
    node = _xml_node(root)
    if node.namespace != ANET_NAMESPACE:
        raise ForeignNamespace(node.name)
    return node


def _xml_node(element: ET.Element) -> Node:
    tag = element.tag
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
    else:
        namespace, name = "", tag
    if len(element) == 0:
        return Node(name, namespace, element.text or "", None)
    children = [_xml_node(child) for child in element]
    text = element.text
    # Whitespace between child elements is formatting, not content.
    return Node(name, namespace, text if text and text.strip() else None, children)
