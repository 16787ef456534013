"""`AdminClient`: the operator commands' view of a running deployment, through its HTTP API only.

The commands in `cli.py` call these methods and print the answers as tables (`render_table`) or JSON.
A problem+json answer becomes an `AdminRequestFailed` carrying its status, code and detail, so the
command can print what the service said and exit non-zero.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Final
from urllib.parse import quote

import httpx

DEFAULT_TIMEOUT_S: Final = 30.0


class AdminRequestFailed(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class AdminClient:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        )

    def __enter__(self) -> "AdminClient":
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AdminRequestFailed(0, "unreachable", f"{self._http.base_url} did not answer: {exc}") from exc
        if response.is_success:
            return response.json()
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        raise AdminRequestFailed(
            response.status_code,
            str(problem.get("code", "http_error")),
            str(problem.get("detail") or problem.get("title") or response.reason_phrase),
        )

    @staticmethod
    def _payment_path(payment_id: str) -> str:
        return f"/payments/{quote(payment_id, safe='')}"

    def show_payment(self, payment_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", self._payment_path(payment_id))
        return found

    def list_payments(self, *, status: str, older_than_s: float, limit: int) -> list[dict[str, Any]]:
        params = {"status": status, "older_than_s": older_than_s, "limit": limit}
        found: list[dict[str, Any]] = self._call("GET", "/admin/payments", params=params)
        return found

    def refund(
        self, payment_id: str, *, amount: Decimal | None, reason: str | None, idempotency_key: str
    ) -> dict[str, Any]:
        body: dict[str, str] = {}
        if amount is not None:
            body["amount"] = str(amount)
        if reason is not None:
            body["reason"] = reason
        refund: dict[str, Any] = self._call(
            "POST",
            f"{self._payment_path(payment_id)}/refunds",
            json=body,
            headers={"Idempotency-Key": idempotency_key},
        )
        return refund

    def resolve(self, payment_id: str, *, status: str, reason: str, transaction_id: str | None) -> dict[str, Any]:
        body = {"status": status, "reason": reason}
        if transaction_id is not None:
            body["transaction_id"] = transaction_id
        resolved: dict[str, Any] = self._call("POST", f"/admin{self._payment_path(payment_id)}/resolution", json=body)
        return resolved

    def dead_letters(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._call("GET", "/admin/dlq")
        return entries

    def replay(self, *, positions: Sequence[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"positions": list(positions)} if positions else {"all": True}
        answer: dict[str, Any] = self._call("POST", "/admin/dlq/replay", json=body)
        return answer


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A plain-text table of `columns` (dotted names reach into nested objects), one row per entry."""
    cells = [[_cell(render_value(row, column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    lines = ["  ".join(column.upper().ljust(widths[i]) for i, column in enumerate(columns)).rstrip()]
    lines += ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in cells]
    return "\n".join(lines)


def render_record(row: Mapping[str, Any], fields: Sequence[str]) -> str:
    """One object as `field  value` lines."""
    width = max(len(field) for field in fields)
    return "\n".join(f"{field.ljust(width)}  {_cell(render_value(row, field))}" for field in fields)


def render_value(row: Mapping[str, Any], column: str) -> Any:
    current: Any = row
    for part in column.split("."):
        current = current.get(part) if isinstance(current, Mapping) else None
    return current
