"""The simulator's schema tables agree with the official AnetApiSchema.xsd (when it is available)."""

from pathlib import Path
from typing import Any

import pytest

from authorize_net_simulator.content_model import Choice, ComplexType, ElementDecl, SimpleType
from authorize_net_simulator.schema import REQUEST_TYPES

XSD_PATH = Path(__file__).resolve().parents[4] / "shared" / "reference" / "authorizenet" / "AnetApiSchema.xsd"


@pytest.fixture(scope="module")
def official_schema() -> Any:
    if not XSD_PATH.exists():
        pytest.skip(
            f"official schema not found at {XSD_PATH}; the cross-check needs ../shared/reference/authorizenet/AnetApiSchema.xsd"
        )
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema10(str(XSD_PATH))


def _flatten(group: Any) -> list[Any]:
    """The XSD content model as a list of elements and choices (nested sequences flattened)."""
    from xmlschema.validators import XsdGroup

    particles: list[Any] = []
    for particle in group:
        if isinstance(particle, XsdGroup) and particle.model == "sequence":
            assert particle.min_occurs == 1
            assert particle.max_occurs == 1
            particles.extend(_flatten(particle))
        else:
            particles.append(particle)
    return particles


def _facets(xsd_type: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, facet in xsd_type.facets.items():
        if name is None:
            continue
        local = name.split("}")[-1]
        if local == "pattern":
            found["pattern"] = facet.regexps[0]
        elif local not in ("whiteSpace", "enumeration"):
            found[local] = str(facet.value)
    if xsd_type.enumeration:
        found["enumeration"] = tuple(xsd_type.enumeration)
    return found


def _our_facets(simple: SimpleType) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    for attribute, local in (
        ("length", "length"),
        ("min_length", "minLength"),
        ("max_length", "maxLength"),
        ("min_inclusive", "minInclusive"),
        ("max_inclusive", "maxInclusive"),
        ("total_digits", "totalDigits"),
        ("fraction_digits", "fractionDigits"),
    ):
        value = getattr(simple, attribute)
        if value is not None:
            ours[local] = str(value)
    if simple.pattern is not None:
        ours["pattern"] = simple.pattern
    if simple.enumeration:
        ours["enumeration"] = simple.enumeration
    return ours


def _compare_simple(path: str, ours: SimpleType, theirs: Any) -> None:
    assert ours.base == theirs.primitive_type.local_name, path
    assert _our_facets(ours) == _facets(theirs), path
    if ours.name is not None:
        assert ours.name == theirs.local_name, path


def _compare_element(path: str, ours: ElementDecl, theirs: Any) -> None:
    assert ours.name == theirs.local_name, path
    assert (ours.min_occurs, ours.max_occurs) == (theirs.min_occurs, theirs.max_occurs), path
    if isinstance(ours.type, SimpleType):
        assert theirs.type.is_simple(), path
        _compare_simple(path, ours.type, theirs.type)
    elif ours.type.lax:
        assert not theirs.type.is_simple(), path
    else:
        _compare_complex(path, ours.type, theirs.type)


def _compare_complex(path: str, ours: ComplexType, theirs: Any) -> None:
    their_particles = _flatten(theirs.content)
    assert len(ours.particles) == len(their_particles), (
        f"{path}: {[getattr(p, 'local_name', p) for p in their_particles]}"
    )
    for our_particle, their_particle in zip(ours.particles, their_particles, strict=True):
        if isinstance(our_particle, Choice):
            assert their_particle.model == "choice", path
            assert our_particle.min_occurs == their_particle.min_occurs, path
            for our_alt, their_alt in zip(our_particle.alternatives, list(their_particle), strict=True):
                _compare_element(f"{path}/{our_alt.name}", our_alt, their_alt)
        else:
            _compare_element(f"{path}/{our_particle.name}", our_particle, their_particle)


class TestSchemaTables:
    @pytest.mark.parametrize("method", sorted(REQUEST_TYPES))
    def test_request_table_matches_the_official_schema(self, official_schema: Any, method: str) -> None:
        _compare_complex(method, REQUEST_TYPES[method], official_schema.elements[method].type)

    def test_transaction_request_keeps_the_xsd_children_in_order(self) -> None:
        create = REQUEST_TYPES["createTransactionRequest"]
        transaction_request = next(
            p for p in create.particles if isinstance(p, ElementDecl) and p.name == "transactionRequest"
        )
        assert isinstance(transaction_request.type, ComplexType)
        names = [p.name for p in transaction_request.type.particles if isinstance(p, ElementDecl)]
        assert len(names) == 36
        assert names[:4] == ["transactionType", "amount", "currencyCode", "payment"]
        assert names[-1] == "authorizationIndicatorType"
