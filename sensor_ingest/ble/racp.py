"""Record Access Control Point (0x2A52) as the CGM service uses it: ask the sensor to replay
its stored records (all, or those with a time offset ≥ N minutes), to count them, or to
abort; and read its answers (a count, or a response code for the request)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from sensor_ingest.ble.reader import Reader

RACP = "record_access_control_point"
FILTER_TIME_OFFSET = 0x01


class RacpOp(enum.IntEnum):
    REPORT_RECORDS = 0x01
    DELETE_RECORDS = 0x02
    ABORT = 0x03
    REPORT_NUMBER = 0x04
    NUMBER_RESPONSE = 0x05
    RESPONSE_CODE = 0x06


class RacpOperator(enum.IntEnum):
    NULL = 0x00
    ALL = 0x01
    LESS_OR_EQUAL = 0x02
    GREATER_OR_EQUAL = 0x03
    WITHIN_RANGE = 0x04
    FIRST = 0x05
    LAST = 0x06


class RacpResult(enum.IntEnum):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


@dataclass(frozen=True, slots=True)
class RacpMessage:
    """One RACP value.

    Requests: ``REPORT_RECORDS`` / ``REPORT_NUMBER`` with ``ALL`` or ``GREATER_OR_EQUAL`` and
    ``min_offset`` (minutes), ``ABORT`` with ``NULL``. Responses: ``NUMBER_RESPONSE`` with
    ``count``; ``RESPONSE_CODE`` with ``request`` and ``result``.
    """

    op: RacpOp
    operator: RacpOperator = RacpOperator.NULL
    min_offset: int | None = None
    count: int | None = None
    request: RacpOp | None = None
    result: RacpResult | None = None


def report_all() -> RacpMessage:
    return RacpMessage(RacpOp.REPORT_RECORDS, RacpOperator.ALL)


def report_from(min_offset: int) -> RacpMessage:
    return RacpMessage(RacpOp.REPORT_RECORDS, RacpOperator.GREATER_OR_EQUAL, min_offset)


def decode_racp(data: bytes) -> RacpMessage:
    r = Reader(RACP, data)
    op = r.enum(RacpOp, "op_code")
    operator = r.enum(RacpOperator, "operator")
    message = RacpMessage(op, operator)
    if op is RacpOp.NUMBER_RESPONSE:
        message = RacpMessage(op, operator, count=r.uint(2, "operand"))
    elif op is RacpOp.RESPONSE_CODE:
        request = r.enum(RacpOp, "request_op_code")
        result = r.enum(RacpResult, "result")
        message = RacpMessage(op, operator, request=request, result=result)
    elif operator in (RacpOperator.GREATER_OR_EQUAL, RacpOperator.LESS_OR_EQUAL):
        if r.uint(1, "filter_type") != FILTER_TIME_OFFSET:
            raise r.error("filter_type", "only the time-offset filter (0x01) is supported")
        message = RacpMessage(op, operator, min_offset=r.uint(2, "operand"))
    r.done()
    return message


def encode_racp(m: RacpMessage) -> bytes:
    body = bytes((m.op, m.operator))
    if m.count is not None:
        body += m.count.to_bytes(2, "little")
    if m.request is not None and m.result is not None:
        body += bytes((m.request, m.result))
    if m.min_offset is not None:
        body += bytes((FILTER_TIME_OFFSET,)) + m.min_offset.to_bytes(2, "little")
    return body
