"""The building blocks of the simulator's schema tables: simple types with facets, and content models.

Only what the Authorize.Net XSD uses for the supported requests is modelled: sequences of elements
and single-level choices, string/decimal/boolean/date facets. The tables themselves live in
`schema.py`; the walk that applies them lives in `validation.py`.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Final

XSD_NAMESPACE: Final = "http://www.w3.org/2001/XMLSchema"
ANET_NAMESPACE: Final = "AnetApi/xml/v1/schema/AnetApiSchema.xsd"

# .NET (the real server's validator) names a value's .NET type when a lexical check fails.
_DOTNET_NAMES: Final = {
    "string": "String",
    "decimal": "Decimal",
    "boolean": "Boolean",
    "dateTime": "DateTime",
    "date": "Date",
    "int": "Int32",
    "long": "Int64",
    "short": "Int16",
}
_BOOLEANS: Final = frozenset({"true", "false", "1", "0"})


@dataclass(frozen=True, slots=True)
class SimpleType:
    """An XSD simple type: a primitive base plus the facets the server enforces.

    `name` is the named type in the Authorize.Net namespace, or None for an anonymous restriction
    or a built-in type (`builtin` True).
    """

    base: str
    name: str | None = None
    builtin: bool = False
    length: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    enumeration: tuple[str, ...] = ()
    min_inclusive: Decimal | None = None
    max_inclusive: Decimal | None = None
    total_digits: int | None = None
    fraction_digits: int | None = None
    _regex: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_regex", re.compile(self.pattern))

    @property
    def datatype_label(self) -> str:
        """The datatype as the .NET validator prints it in E00003 texts."""
        if self.name is not None:
            return f"{ANET_NAMESPACE}:{self.name}"
        if self.builtin:
            return f"{XSD_NAMESPACE}:{self.base}"
        return _DOTNET_NAMES.get(self.base, self.base)

    def violation(self, value: str) -> str | None:
        """Return the .NET wording of the first facet `value` breaks, or None when it is valid."""
        if self.base == "string":
            return self._string_violation(value)
        if self.base == "decimal":
            return self._decimal_violation(value)
        if self.base == "boolean":
            if value.strip() not in _BOOLEANS:
                return f"The string '{value}' is not a valid Boolean value."
            return None
        if self.base in ("dateTime", "date"):
            return self._date_violation(value)
        return None

    def _string_violation(self, value: str) -> str | None:
        size = len(value)
        if self.length is not None and size != self.length:
            return "The actual length is not equal to the specified length."
        if self.min_length is not None and size < self.min_length:
            return "The actual length is less than the MinLength value."
        if self.max_length is not None and size > self.max_length:
            return "The actual length is greater than the MaxLength value."
        if self.enumeration and value not in self.enumeration:
            return "The Enumeration constraint failed."
        if self._regex is not None and self._regex.fullmatch(value) is None:
            return "The Pattern constraint failed."
        return None

    def _decimal_violation(self, value: str) -> str | None:
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        # xs:decimal has no exponent, infinity or NaN.
        if number is None or not number.is_finite() or "e" in text.lower():
            return f"The string '{value}' is not a valid Decimal value."
        if self.min_inclusive is not None and number < self.min_inclusive:
            return "The MinInclusive constraint failed."
        if self.max_inclusive is not None and number > self.max_inclusive:
            return "The MaxInclusive constraint failed."
        digits = number.normalize().as_tuple()
        exponent = digits.exponent if isinstance(digits.exponent, int) else 0
        fraction = max(0, -exponent)
        if self.fraction_digits is not None and fraction > self.fraction_digits:
            return "The FractionDigits constraint failed."
        if self.total_digits is not None and max(len(digits.digits), fraction) > self.total_digits:
            return "The TotalDigits constraint failed."
        return None

    def _date_violation(self, value: str) -> str | None:
        text = value.strip()
        try:
            if self.base == "date":
                date.fromisoformat(text[:10])
                if len(text) > 10 and text[10:] not in ("Z",) and not re.fullmatch(r"[+-]\d\d:\d\d", text[10:]):
                    raise ValueError(text)
            else:
                datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return f"The string '{value}' is not a valid {_DOTNET_NAMES[self.base]} value."
        return None


@dataclass(frozen=True, slots=True)
class ElementDecl:
    name: str
    type: "SimpleType | ComplexType"
    min_occurs: int = 0
    max_occurs: int | None = 1  # None: unbounded


@dataclass(frozen=True, slots=True)
class Choice:
    """One of `alternatives`, once. Optional when `min_occurs` is 0 or an alternative is optional."""

    alternatives: tuple[ElementDecl, ...]
    min_occurs: int = 1

    @property
    def is_optional(self) -> bool:
        return self.min_occurs == 0 or any(alt.min_occurs == 0 for alt in self.alternatives)


Particle = ElementDecl | Choice


@dataclass(frozen=True, slots=True)
class ComplexType:
    """A sequence of particles. `lax` types accept any content unchecked (the XSD's anyType, KeyBlock)."""

    name: str | None
    particles: tuple[Particle, ...] = ()
    lax: bool = False
