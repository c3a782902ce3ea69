"""The invoice as QuickBooks' `GET /v3/company/{realm}/invoice/{id}/pdf` answers it: a real (small) PDF.

One page, Helvetica, the invoice's number, customer, dates and amounts: any PDF reader opens it, and its text
can be checked. The cross-reference table carries the objects' true byte offsets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _escaped(text: str) -> str:
    latin = text.encode("latin-1", "replace").decode("latin-1")
    return latin.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def document(lines: Sequence[str]) -> bytes:
    """A one-page PDF showing `lines` top-down."""
    text = ["BT", "/F1 12 Tf", "14 TL", "72 770 Td"]
    for line in lines:
        text += [f"({_escaped(line)}) Tj", "T*"]
    stream = "\n".join([*text, "ET"]).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def invoice_pdf(doc: Mapping[str, Any], company: str) -> bytes:
    """The invoice document of a QBO Invoice object."""
    customer = (doc.get("CustomerRef") or {}).get("name") or ""
    currency = (doc.get("CurrencyRef") or {}).get("value") or ""
    return document([
        company, "", f"Invoice {doc.get('DocNumber') or doc.get('Id')}", f"Bill to: {customer}",
        f"Date: {doc.get('TxnDate', '')}", f"Due: {doc.get('DueDate', '')}",
        f"Total: {doc.get('TotalAmt', '')} {currency}", f"Balance due: {doc.get('Balance', '')} {currency}",
    ])  # fmt: skip
