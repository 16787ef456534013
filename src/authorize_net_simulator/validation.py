"""Validation of a request tree against the schema tables, worded like the real server (E00003).

The server validates with .NET's XmlSchema validator, also for JSON (mapped onto the XML schema),
so the texts below follow .NET's: "The element 'X' in namespace 'N' has invalid child element 'Y'
in namespace 'N'. List of possible elements expected: 'a, b' in namespace 'N'." Values of card
fields are masked in the texts: the simulator never echoes card data.
"""

from typing import Final

from authorize_net_simulator.content_model import ANET_NAMESPACE, Choice, ComplexType, ElementDecl, Particle, SimpleType
from authorize_net_simulator.documents import Node

# Elements whose values must not appear in an error text.
_MASKED: Final = frozenset(
    {
        "cardNumber",
        "cardCode",
        "expirationDate",
        "transactionKey",
        "password",
        "dataValue",
        "track1",
        "track2",
        "accountNumber",
        "routingNumber",
        "partnerTransactionKey",
    }
)


class SchemaViolation(Exception):
    """The request breaks the schema; `text` is the E00003 message."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def validate(root: Node, content: ComplexType) -> None:
    """Raise SchemaViolation for the first problem in document order."""
    _validate_complex(root, content)


def _validate_complex(node: Node, content: ComplexType) -> None:
    if content.lax:
        return
    if node.text is not None and node.text.strip():
        expected = _expected_names(content.particles, 0, 0)
        raise SchemaViolation(
            f"The element '{node.name}' in namespace '{ANET_NAMESPACE}' cannot contain text.{_expected_suffix(expected)}"
        )
    particles = content.particles
    position = 0
    count = 0
    for child in node.iter_children():
        start_position, start_count = position, count
        while True:
            particle = particles[position] if position < len(particles) else None
            decl = _match(particle, child) if particle is not None and child.namespace == ANET_NAMESPACE else None
            if particle is not None and decl is not None and count < _max_occurs(particle):
                count += 1
                _validate_element(child, decl)
                break
            if particle is None or count < _min_occurs(particle):
                _raise_invalid_child(node, child, _expected_names(particles, start_position, start_count))
            position += 1
            count = 0
    _check_complete(node, particles, position, count)


def _max_occurs(particle: Particle) -> float:
    if isinstance(particle, Choice):
        return 1
    return float("inf") if particle.max_occurs is None else particle.max_occurs


def _min_occurs(particle: Particle) -> int:
    if isinstance(particle, Choice):
        return 0 if particle.is_optional else 1
    return particle.min_occurs


def _match(particle: Particle | None, child: Node) -> ElementDecl | None:
    if particle is None:
        return None
    if isinstance(particle, ElementDecl):
        return particle if particle.name == child.name else None
    for alternative in particle.alternatives:
        if alternative.name == child.name:
            return alternative
    return None


def _check_complete(node: Node, particles: tuple[Particle, ...], position: int, count: int) -> None:
    for index in range(position, len(particles)):
        seen = count if index == position else 0
        if seen < _min_occurs(particles[index]):
            expected = _expected_names(particles, position, count)
            raise SchemaViolation(
                f"The element '{node.name}' in namespace '{ANET_NAMESPACE}' has incomplete content.{_expected_suffix(expected)}"
            )


def _expected_names(particles: tuple[Particle, ...], position: int, count: int) -> list[str]:
    """The elements that could come next: optional ones up to and including the next required one."""
    names: list[str] = []
    for index in range(position, len(particles)):
        particle = particles[index]
        seen = count if index == position else 0
        if seen < _max_occurs(particle):
            if isinstance(particle, Choice):
                names.extend(alt.name for alt in particle.alternatives)
            else:
                names.append(particle.name)
        if seen < _min_occurs(particle):
            break
    return names


def _expected_suffix(names: list[str]) -> str:
    if not names:
        return ""
    return f" List of possible elements expected: '{', '.join(names)}' in namespace '{ANET_NAMESPACE}'."


def _raise_invalid_child(node: Node, child: Node, expected: list[str]) -> None:
    raise SchemaViolation(
        f"The element '{node.name}' in namespace '{ANET_NAMESPACE}' has invalid child element '{child.name}' in namespace '{child.namespace}'.{_expected_suffix(expected)}"
    )


def _validate_element(node: Node, decl: ElementDecl) -> None:
    if isinstance(decl.type, ComplexType):
        _validate_complex(node, decl.type)
        return
    _validate_simple(node, decl.type)


def _validate_simple(node: Node, simple: SimpleType) -> None:
    if node.children:
        raise SchemaViolation(
            f"The element '{node.name}' in namespace '{ANET_NAMESPACE}' cannot contain child element '{node.children[0].name}' in namespace '{node.children[0].namespace}' because the parent element's content model is text only."
        )
    value = node.text or ""
    problem = simple.violation(value)
    if problem is None:
        return
    shown = _masked(node.name, value)
    if shown != value:
        problem = problem.replace(f"'{value}'", f"'{shown}'")
    raise SchemaViolation(
        f"The '{ANET_NAMESPACE}:{node.name}' element is invalid - The value '{shown}' is invalid according to its datatype '{simple.datatype_label}' - {problem}"
    )


def _masked(name: str, value: str) -> str:
    if name not in _MASKED:
        return value
    if name == "cardNumber" and len(value) >= 4:
        return "XXXX" + value[-4:]
    return "XXXX"
