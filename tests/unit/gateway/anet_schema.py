"""The official Authorize.Net XSD, read from ../shared (never copied into the repository).

`validate(document)` turns a JSON request dict into namespaced XML (dict order = element order,
`{"wrapper": [...]}` = repeated elements) and validates it, as NOTES §14 describes.
"""

import functools
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import defusedxml.ElementTree
import pytest
import xmlschema

NAMESPACE = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"
XSD_PATH = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "authorizenet" / "AnetApiSchema.xsd"


def require_xsd() -> Path:
    if not XSD_PATH.is_file():
        pytest.skip(f"official Authorize.Net XSD not found at {XSD_PATH} (../shared/reference/authorizenet)")
    return XSD_PATH


@functools.cache
def _schema() -> Any:
    return xmlschema.XMLSchema10(str(require_xsd()))


def _element(tag: str, value: object, parent: ET.Element | None = None) -> ET.Element:
    name = f"{{{NAMESPACE}}}{tag}"
    element = ET.Element(name) if parent is None else ET.SubElement(parent, name)
    if isinstance(value, dict):
        for key, child in value.items():
            for item in child if isinstance(child, list) else [child]:
                _element(key, item, element)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = str(value)
    return element


def to_xml(document: dict[str, Any]) -> str:
    ((root, body),) = document.items()
    return ET.tostring(_element(root, body), encoding="unicode")


def validate(document: dict[str, Any]) -> None:
    """Raises xmlschema.XMLSchemaValidationError when the document breaks the schema."""
    _schema().validate(to_xml(document))


def transaction_statuses() -> set[str]:
    """The values of `transactionStatusEnum` in the official XSD."""
    tree = defusedxml.ElementTree.parse(require_xsd())
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for simple_type in tree.getroot().iter(f"{xs}simpleType"):
        if simple_type.get("name") == "transactionStatusEnum":
            return {str(item.get("value")) for item in simple_type.iter(f"{xs}enumeration")}
    raise AssertionError("transactionStatusEnum not found in the XSD")
