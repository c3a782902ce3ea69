"""Intuit's fault envelopes: JSON `{"Fault": {"Error": [...], "type": ...}}`, the lowercase envelope of
401/403 answers, and the XML throttling body."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
BUSINESS_MESSAGE = "A business validation error has occurred while processing your request"


class QboFault(Exception):
    """An error QBO answers with a Fault envelope; `status` is the HTTP status it comes with."""

    def __init__(self, code: str, message: str, detail: str, *, kind: str = "ValidationFault",
                 status: int = 400, element: str = "") -> None:  # fmt: skip
        super().__init__(f"{code} {message}: {detail}")
        self.code = code
        self.message = message
        self.detail = detail
        self.kind = kind
        self.status = status
        self.element = element

    def fault(self) -> dict[str, Any]:
        """The `Fault` object (also used inside batch item responses)."""
        error = {"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}
        return {"Error": [error], "type": self.kind}


def validation(detail: str, *, code: str = "4000", message: str = "Error parsing query") -> QboFault:
    """A ValidationFault (HTTP 400)."""
    return QboFault(code, message, detail)


def not_found(entity: str, id_: object) -> QboFault:
    """QBO's 610 Object Not Found (HTTP 400, as QBO answers it)."""
    return QboFault(
        "610", "Object Not Found", f"Object Not Found : {entity} {id_} does not exist or is deleted."
    )


def stale(entity: str, id_: object, sent: str, current: int) -> QboFault:
    """The 5010 Stale Object Error for an update whose SyncToken is not the current one."""
    return QboFault(
        "5010", "Stale Object Error",
        f"Stale Object Error : You and another user were working on {entity} {id_} at the same time "
        f"(SyncToken {sent!r}, current {current}).",
    )  # fmt: skip


def business(detail: str) -> QboFault:
    """A 6000 business validation error (HTTP 400, ValidationFault) as node-quickbooks#48 and
    ruckus/quickbooks-ruby#344 quote it: a fixed Message; Detail starts "Business Validation Error"."""
    return QboFault("6000", BUSINESS_MESSAGE, f"Business Validation Error: {detail}")


def lowercase_body(exc: QboFault, epoch_ms: int) -> dict[str, Any]:
    """The body QBO's gateway answers a 401 or 403 with: lowercase `fault`/`error` keys, `element` null,
    the null and empty sibling keys, and `time` in epoch milliseconds (captures in
    routablehq/python-quickbooks#250 and #118 for 401, frappe/erpnext#29161 for 403)."""
    error = {"message": exc.message, "detail": exc.detail, "code": exc.code, "element": None}
    return {"warnings": None, "intuitObject": None, "fault": {"error": [error], "type": exc.kind},
            "report": None, "queryResponse": None, "batchItemResponse": [], "attachableResponse": [],
            "syncErrorResponse": None, "requestId": None, "time": epoch_ms, "status": None,
            "cdcresponse": []}  # fmt: skip


def auth_failed(detail: str) -> QboFault:
    """401 AuthenticationFailed (code 3200)."""
    return QboFault(
        "3200", "message=AuthenticationFailed; errorCode=003200; statusCode=401", detail,
        kind="AUTHENTICATION", status=401,
    )  # fmt: skip


def throttle_xml(time: str, detail: str) -> str:
    """The XML body QBO sends with a 429, whatever Accept said."""
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{escape(time)}">'
        f'<Fault type="SERVICE"><Error code="3001"><Message>{THROTTLE_MESSAGE}</Message>'
        f"<Detail>{escape(detail)}</Detail></Error></Fault></IntuitResponse>"
    )
