"""Scripted faults for the next API calls, set through `POST /_sim/faults`.

Each fault applies to calls of one API method (`createTransactionRequest` unless told otherwise,
null for every method), for the next `count` calls, or to each call with `probability` until it has
fired `count` times (`count` null: until cleared). Kinds:

* ``latency``: wait `latency_ms` before answering.
* ``stall_after_commit``: commit the transaction, then hold the answer `stall_s` seconds, or until
  the client gives up and disconnects, before answering normally.
* ``reset_after_commit``: commit the transaction, then drop the connection without an HTTP answer.
* ``system_error``: answer E00001 without processing. ``server_busy``: answer E00053 likewise.
* ``error_after_commit``: commit the transaction, then answer E00001 as if nothing happened (the live
  gateway can; its E00001 does not say whether the charge was made).
* ``held_for_review``: a charge that would be approved is held by the fraud filters instead
  (`reason_code` 253 authorised and held, or 252 held before authorisation).
"""

import enum
import random
import uuid
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FaultKind(enum.StrEnum):
    LATENCY = "latency"
    STALL_AFTER_COMMIT = "stall_after_commit"
    RESET_AFTER_COMMIT = "reset_after_commit"
    SYSTEM_ERROR = "system_error"
    SERVER_BUSY = "server_busy"
    ERROR_AFTER_COMMIT = "error_after_commit"
    HELD_FOR_REVIEW = "held_for_review"


class FaultRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    method: str | None = "createTransactionRequest"
    count: int | None = Field(default=1, ge=1)
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int | None = None
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    stall_s: float = Field(default=30.0, ge=0.0, le=3600.0)
    reason_code: Literal[252, 253] = 253

    @model_validator(mode="after")
    def _bounded(self) -> "FaultRequest":
        if self.count is None and self.probability is None:
            raise ValueError("a fault needs a count, a probability, or both")
        return self


class Fault(BaseModel):
    id: str
    spec: FaultRequest
    fired: int = 0


@dataclass(slots=True)
class FaultPlan:
    """What the faults decided for one call."""

    latency_ms: int = 0
    stall_s: float | None = None
    reset_connection: bool = False
    error_code: str | None = None
    error_after_commit: bool = False
    hold_reason: int | None = None


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._randoms: dict[str, random.Random] = {}

    def add(self, spec: FaultRequest) -> Fault:
        fault = Fault(id=uuid.uuid4().hex, spec=spec)
        self._faults.append(fault)
        self._randoms[fault.id] = random.Random(spec.seed)  # noqa: S311 - test scripting, not security
        return fault

    def list(self) -> list[Fault]:
        return list(self._faults)

    def clear(self) -> None:
        self._faults.clear()
        self._randoms.clear()

    def plan(self, method: str) -> FaultPlan:
        """Consume the faults that fire for this call of `method`."""
        plan = FaultPlan()
        if not self._faults:
            return plan
        for fault in list(self._faults):
            spec = fault.spec
            if spec.method is not None and spec.method != method:
                continue
            if spec.probability is not None and self._randoms[fault.id].random() >= spec.probability:
                continue
            fault.fired += 1
            if spec.count is not None and fault.fired >= spec.count:
                self._faults.remove(fault)
                self._randoms.pop(fault.id, None)
            _apply(plan, spec)
        return plan


def _apply(plan: FaultPlan, spec: FaultRequest) -> None:
    match spec.kind:
        case FaultKind.LATENCY:
            plan.latency_ms += spec.latency_ms
        case FaultKind.STALL_AFTER_COMMIT:
            plan.stall_s = spec.stall_s
        case FaultKind.RESET_AFTER_COMMIT:
            plan.reset_connection = True
        case FaultKind.SYSTEM_ERROR:
            plan.error_code = "E00001"
        case FaultKind.SERVER_BUSY:
            plan.error_code = plan.error_code or "E00053"
        case FaultKind.ERROR_AFTER_COMMIT:
            plan.error_after_commit = True
        case FaultKind.HELD_FOR_REVIEW:
            plan.hold_reason = spec.reason_code
