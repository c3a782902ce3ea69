"""One QBO company's records in memory: queries, sparse and full updates, Attachables, CDC, test controls.

Thread-safe (one lock): the server's event loop and the test thread both touch it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from adapters.quickbooks.sandbox import render
from adapters.quickbooks.sandbox.faults import business, not_found, stale, validation
from adapters.quickbooks.sandbox.jsontext import dumps
from adapters.quickbooks.sandbox.query import Condition, FieldType, Query, convert
from adapters.quickbooks.sandbox.table import Doc, Row, Table
from adapters.sandbox.generator import Firm, GenInvoice, GenPayment

_META: dict[str, FieldType] = {
    "Id": "id",
    "MetaData.LastUpdatedTime": "datetime",
    "MetaData.CreateTime": "datetime",
}
ENTITIES: dict[str, dict[str, FieldType]] = {
    "Customer": {**_META, "Active": "bool", "Balance": "decimal", "DisplayName": "str", "CompanyName": "str",
                 "PrimaryEmailAddr.Address": "str", "CustomerTypeRef": "id"},
    "Invoice": {**_META, "CustomerRef": "id", "DueDate": "date", "TxnDate": "date", "Balance": "decimal",
                "TotalAmt": "decimal", "DocNumber": "str", "EmailStatus": "str"},
    "Payment": {**_META, "CustomerRef": "id", "TxnDate": "date", "TotalAmt": "decimal",
                "UnappliedAmt": "decimal"},
    "CreditMemo": {**_META, "CustomerRef": "id", "TxnDate": "date", "Balance": "decimal",
                   "TotalAmt": "decimal", "RemainingCredit": "decimal", "DocNumber": "str"},
    "Attachable": {**_META, "AttachableRef.EntityRef.Type": "str", "AttachableRef.EntityRef.value": "id",
                   "Note": "str"},
}  # fmt: skip
# Entities QBO has that this company holds none of: queries on them answer an empty QueryResponse.
EMPTY_ENTITIES = ("Account", "Bill", "BillPayment", "Class", "CompanyCurrency", "CustomerType", "Department",
                  "Deposit", "Employee", "Estimate", "Item", "JournalEntry", "PaymentMethod", "Purchase",
                  "PurchaseOrder", "RefundReceipt", "SalesReceipt", "TaxCode", "TaxRate", "Term", "Vendor",
                  "VendorCredit")  # fmt: skip
QUERYABLE: dict[str, Mapping[str, FieldType]] = {**ENTITIES, **dict.fromkeys(EMPTY_ENTITIES, _META)}
READ_ONLY = frozenset({"Id", "SyncToken", "MetaData", "domain", "sparse", "Balance", "BalanceWithJobs",
                       "HomeBalance", "TotalAmt", "HomeTotalAmt", "RemainingCredit", "UnappliedAmt",
                       "FullyQualifiedName", "LinkedTxn"})  # fmt: skip
MAX_LENGTHS = {"Notes": 2000, "PrivateNote": 4000, "Note": 4000, "DisplayName": 500}
_NAMES = {e: tuple(n for n in fields if n not in _META) for e, fields in ENTITIES.items()}
_BALANCE = _NAMES["Invoice"].index("Balance")
CDC_LOOKBACK = timedelta(days=30)
TEXT_CACHE = 20_000
CDC_CAP = 1000


def _walk(value: Any, parts: list[str]) -> Any:
    """Follow a dotted path case-insensitively; lists fan out (the result is then a list)."""
    if not parts:
        return value
    if isinstance(value, list):
        found = [_walk(v, parts) for v in value]
        return [x for v in found for x in (v if isinstance(v, list) else [v]) if x is not None]
    if not isinstance(value, dict):
        return None
    key = parts[0] if parts[0] in value else next((k for k in value if k.lower() == parts[0].lower()), None)
    nxt = value.get(key) if key is not None else None
    if isinstance(nxt, dict) and "value" in nxt and len(parts) == 1:
        nxt = nxt["value"]  # a Ref compares by its value, as in `CustomerRef = '12'`
    return _walk(nxt, parts[1:]) if nxt is not None else None


def keys_of(entity: str, doc: Doc) -> tuple[Any, ...]:
    """The queryable values of a document, typed as queries compare them, in the entity's field order."""
    out: list[Any] = []
    for name, ftype in ENTITIES[entity].items():
        if name in _META:
            continue
        raw = _walk(doc, name.split("."))
        if raw is None:
            out.append(None)
        else:
            out.append([_typed(v, ftype) for v in raw] if isinstance(raw, list) else _typed(raw, ftype))
    return tuple(out)


def invoice_keys(inv: GenInvoice, ids: render.Ids) -> tuple[Any, ...]:
    """`keys_of` an invoice without rendering it (start-up speed); reuses the generator's objects."""
    balance, total = render.invoice_balance(inv, ids), render.invoice_total(inv)
    return (ids.qbo[inv.customer_id], inv.due_date, inv.issue_date, balance, total, inv.number,
            render.email_status(inv))  # fmt: skip


def payment_keys(pay: GenPayment, ids: render.Ids) -> tuple[Any, ...]:
    """`keys_of` a payment without rendering it."""
    return (ids.qbo[pay.customer_id], pay.date, pay.amount, render.unapplied(pay))


def _typed(value: Any, ftype: FieldType) -> Any:
    if isinstance(value, bool | Decimal):
        return value
    return convert(str(value), ftype)


class Company:
    """A QBO company (realm) built from a generated firm, changed through the API and test controls."""

    def __init__(self, realm: str, firm: Firm, now: Callable[[], datetime]) -> None:
        self.realm = realm
        self.firm = firm
        self.tz = ZoneInfo(firm.timezone)
        self.now = now
        self.lock = threading.RLock()
        self.ids = render.index(firm, self.tz)
        self.tables = {name: Table(name, fields) for name, fields in ENTITIES.items()}
        self._cached: deque[Row] = deque()
        self.emailed: list[str] = []  # invoice ids QBO e-mailed, in order (one per send)
        # The company takes online payments (QuickBooks Payments): an invoice read with ?include=invoiceLink
        # then carries its InvoiceLink, when it has a BillEmail (an e-mailable invoice); see invoice_link.
        self.online_payments = False
        self._load()

    def _load(self) -> None:
        ids = self.ids
        balances: dict[str, Decimal] = {}
        invoices, payments, memos, customers = [], [], [], []
        for inv in self.firm.invoices:
            if render.visible_invoice(inv):
                row = Row(
                    ids.qbo[inv.id],
                    _second(inv.created),
                    _second(inv.updated),
                    inv,
                    invoice_keys(inv, ids),
                    _NAMES["Invoice"],
                )
                row.deleted = inv.status == "deleted"
                if not row.deleted:
                    balances[inv.customer_id] = (
                        balances.get(inv.customer_id, Decimal(0)) + row.values[_BALANCE]
                    )
                invoices.append(row)
        for c in self.firm.customers:
            customers.append(self._row("Customer", c, self._customer_doc(c, balances), c.created, c.updated))
        for pay in self.firm.payments:
            row = Row(
                ids.qbo[pay.id],
                _second(pay.created),
                _second(pay.updated),
                pay,
                payment_keys(pay, ids),
                _NAMES["Payment"],
            )
            row.deleted = pay.deleted
            payments.append(row)
        for note in self.firm.credit_notes:
            if note.status == "draft":
                continue
            row = self._row("CreditMemo", note, render.credit_memo(note, ids), note.created, note.updated)
            row.deleted = note.status == "deleted"
            memos.append(row)
            if note.id in ids.applications:
                app = render.CreditApplication(note)
                payments.append(self._row("Payment", app, render.credit_application(app, ids), note.created,
                                          note.updated))  # fmt: skip
        self._balances = balances
        for name, rows in (("Customer", customers), ("Invoice", invoices), ("Payment", payments),
                           ("CreditMemo", memos)):  # fmt: skip
            self.tables[name].add_all(rows)

    def _customer_doc(self, c: Any, balances: Mapping[str, Decimal]) -> Doc:
        return render.customer(c, render.money(balances.get(c.id, Decimal(0))), self.ids)

    def _row(self, entity: str, source: Any, doc: Doc, created: datetime, updated: datetime) -> Row:
        return Row(
            int(doc["Id"]), _second(created), _second(updated), source, keys_of(entity, doc), _NAMES[entity]
        )

    # -- reading ------------------------------------------------------------------------------------

    def doc(self, entity: str, row: Row) -> Doc:
        """The row's QBO object (a fresh dict when rendered from the generator's record)."""
        if row.doc is not None:
            return row.doc
        source = row.source
        if entity == "Customer":
            return self._customer_doc(source, self._balances)
        if entity == "Invoice":
            return render.invoice(source, self.ids)
        if entity == "CreditMemo":
            return render.credit_memo(source, self.ids)
        if isinstance(source, render.CreditApplication):
            return render.credit_application(source, self.ids)
        return render.payment(source, self.ids)

    def text(self, entity: str, row: Row) -> str:
        """The row's JSON, rendered once per version and kept for the TEXT_CACHE most recent renders.

        The bound keeps a large company lean after a full read; re-reads of recent pages (a cursor's
        overlap, CDC after a sync) are answered from the cache.
        """
        text = row.text
        if text is None:
            version = row.sync_token
            text = dumps(self.doc(entity, row))
            with self.lock:  # a change committed while rendering makes this text stale: do not keep it
                if row.sync_token == version:
                    row.text = text
                    self._cached.append(row)
                    if len(self._cached) > TEXT_CACHE:
                        self._cached.popleft().text = None
        return text

    def invoice_link(self, row: Row) -> str | None:
        """The customer's pay-online link of an invoice, as `?include=invoiceLink` shows it (None: none)."""
        doc = self.doc("Invoice", row)
        if not self.online_payments or not (doc.get("BillEmail") or {}).get("Address"):
            return None
        token = hashlib.sha256(f"{self.realm}:{row.id}".encode()).hexdigest()[:40]
        return f"https://connect.intuit.com/t/scs-v1-{token}"

    def tombstone(self, row: Row) -> str:
        """A deleted row as CDC shows it."""
        return dumps({"domain": "QBO", "status": "Deleted", "Id": str(row.id),
                      "MetaData": {"LastUpdatedTime": render.stamp(row.updated, self.tz)}})  # fmt: skip

    def get(self, entity: str, id_: str) -> Row:
        """A live record by Id.

        Raises:
            QboFault: 610 when there is none.
        """
        table = self.tables.get(entity)
        row = table.get(int(id_)) if table is not None and id_.isdigit() else None
        if row is None:
            raise not_found(entity, id_)
        return row

    def select(self, query: Query) -> tuple[list[Row], int | None]:
        """Run a parsed query. Customers are Active only unless the query names Active."""
        if query.entity not in self.tables:
            return [], (0 if query.count else None)
        if query.entity == "Customer" and not query.condition_on("Active"):
            query = dataclasses.replace(query, where=(*query.where, Condition("Active", "=", (True,))))
        with self.lock:
            return self.tables[query.entity].select(query)

    def changed_since(self, entities: Iterable[str], since: datetime) -> dict[str, list[Row]]:
        """CDC: per entity, the rows (tombstones too) changed at or after `since`, at most CDC_CAP in all;
        an entity this company holds none of gets an empty list (the Api refuses the ones CDC does not take).

        Raises:
            QboFault: `since` is more than 30 days back.
        """
        if since < self.now() - CDC_LOOKBACK:
            detail = f"changedSince {since.isoformat()} is more than 30 days ago: use a query instead"
            raise validation(detail, code="4001", message="Invalid changedSince")
        out: dict[str, list[Row]] = {}
        left = CDC_CAP
        with self.lock:
            for entity in entities:
                rows: list[Row] = []
                if entity not in self.tables:
                    out[entity] = rows
                    continue
                for row in self.tables[entity].changed_since(since):
                    if left == 0:
                        break
                    rows.append(row)
                    left -= 1
                out[entity] = rows
        return out

    # -- writing ------------------------------------------------------------------------------------

    def update(self, entity: str, body: Mapping[str, Any]) -> Row:
        """A sparse (`"sparse": true`) or full update, checked against the current SyncToken.

        Raises:
            QboFault: 610 unknown Id, 5010 stale SyncToken, 2050 a field too long, 4000 a malformed body.
        """
        id_, token = body.get("Id"), body.get("SyncToken")
        if not isinstance(id_, str) or not isinstance(token, str):
            raise validation(
                f"{entity} update needs Id and SyncToken as strings",
                code="2020",
                message="Required param missing, need to supply the required value for the API",
            )
        for key, limit in MAX_LENGTHS.items():
            if isinstance(body.get(key), str) and len(body[key]) > limit:
                raise validation(
                    f"{entity}.{key}: {len(body[key])} characters, at most {limit}",
                    code="2050",
                    message="String length is either shorter or longer than supported",
                )
        with self.lock:
            row = self.get(entity, id_)
            if token != str(row.sync_token):
                raise stale(entity, id_, token, row.sync_token)
            doc = copy.deepcopy(self.doc(entity, row))
            if body.get("sparse") is not True:  # a full update clears every writable field not sent
                doc = {k: v for k, v in doc.items() if k in READ_ONLY}
            doc.update({k: v for k, v in body.items() if k not in READ_ONLY})
            _check(entity, id_, doc)
            doc["sparse"] = False
            self._commit(entity, row, doc)
            return row

    def _commit(self, entity: str, row: Row, doc: Doc) -> None:
        self.tables[entity].touch(row, _second(self.now()))
        doc["SyncToken"] = str(row.sync_token)
        doc["MetaData"] = {**doc.get("MetaData", {}), "LastUpdatedTime": render.stamp(row.updated, self.tz)}
        row.doc = doc
        row.values = keys_of(entity, doc)

    def create_attachable(self, body: Mapping[str, Any]) -> Row:
        """A note Attachable linked to existing records.

        Raises:
            QboFault: no Note, a Note too long, or an EntityRef to a record that does not exist.
        """
        note = body.get("Note")
        refs = body.get("AttachableRef") or []
        if not isinstance(note, str) or not note:
            raise validation(
                "Attachable.Note is required (this sandbox keeps notes, not files)",
                code="2020",
                message="Required param missing, need to supply the required value for the API",
            )
        if len(note) > MAX_LENGTHS["Note"]:
            raise validation(
                f"Attachable.Note: {len(note)} characters, at most 4000",
                code="2050",
                message="String length is either shorter or longer than supported",
            )
        with self.lock:
            for r in refs:
                target = (r.get("EntityRef") or {}) if isinstance(r, dict) else {}
                kind = next((e for e in ENTITIES if e.lower() == str(target.get("type", "")).lower()), "")
                if kind in {"", "Attachable"} or self.tables[kind].get(_int(target.get("value"))) is None:
                    raise validation(f"AttachableRef.EntityRef {target!r} does not name an existing record",
                                     code="2500", message="Invalid Reference Id")  # fmt: skip
            now = _second(self.now())
            doc: Doc = {"Note": note, "AttachableRef": list(refs), "domain": "QBO", "sparse": False,
                        "Id": str(self.ids.next_id), "SyncToken": "0",
                        "MetaData": {"CreateTime": render.stamp(now, self.tz),
                                     "LastUpdatedTime": render.stamp(now, self.tz)}}  # fmt: skip
            self.ids.next_id += 1
            row = Row(int(doc["Id"]), now, now, None, keys_of("Attachable", doc), _NAMES["Attachable"])
            row.doc = doc
            self.tables["Attachable"].insert(row)
            return row

    def send_invoice(self, id_: str, send_to: str | None) -> Row:
        """QBO's invoice send: EmailStatus EmailSent, DeliveryInfo, BillEmail set to `send_to` if given.

        Raises:
            QboFault: unknown invoice, or no address to send to.
        """
        with self.lock:
            row = self.get("Invoice", id_)
            doc = copy.deepcopy(self.doc("Invoice", row))
            address = send_to or (doc.get("BillEmail") or {}).get("Address")
            if not address or "@" not in address:
                raise business(f"Invoice {id_} has no valid e-mail address to send to (BillEmail or sendTo)")
            doc["BillEmail"] = {"Address": address}
            doc["EmailStatus"] = "EmailSent"
            doc["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": render.stamp(self.now(), self.tz)}
            self._commit("Invoice", row, doc)
            self.emailed.append(str(row.id))
            return row

    def void_invoice(self, id_: str, sync_token: str | None = None) -> Row:
        """QBO's void: amounts and Balance to zero, PrivateNote "Voided", the customer's Balance lowered.

        Raises:
            QboFault: 610 unknown invoice, 5010 a stale SyncToken (when one is given).
        """
        with self.lock:
            row = self.get("Invoice", id_)
            if sync_token is not None and sync_token != str(row.sync_token):
                raise stale("Invoice", id_, sync_token, row.sync_token)
            doc = copy.deepcopy(self.doc("Invoice", row))
            was = Decimal(str(doc.get("Balance", 0)))
            zero = render.ZERO
            doc.update(TotalAmt=zero, HomeTotalAmt=zero, Balance=zero, HomeBalance=zero, LinkedTxn=[],
                       PrivateNote="Voided", TxnTaxDetail={"TotalTax": zero})  # fmt: skip
            for line in doc.get("Line", []):
                line["Amount"] = zero
                if "SalesItemLineDetail" in line:
                    line["SalesItemLineDetail"]["UnitPrice"] = zero
            self._commit("Invoice", row, doc)
            self._add_to_balance(doc["CustomerRef"]["value"], -was)
            return row

    # -- test controls --------------------------------------------------------------------------------

    def edit(self, entity: str, id_: str, changes: Mapping[str, Any]) -> Row:
        """A change made in QuickBooks itself (a user, an import, data from before a rule), which the API's
        business rules do not check: e.g. a customer left without a DisplayName, so that the API then
        refuses any update of it with a 6000."""
        with self.lock:
            row = self.get(entity, id_)
            doc = copy.deepcopy(self.doc(entity, row))
            doc.update(changes)
            self._commit(entity, row, doc)
            return row

    def delete(self, entity: str, id_: str) -> Row:
        """Delete a record: it leaves queries and stays as a CDC tombstone dated now."""
        with self.lock:
            row = self.get(entity, id_)
            self.tables[entity].touch(row, _second(self.now()))
            row.deleted = True
            return row

    def post_payment(self, invoice_id: str, amount: Decimal) -> Row:
        """A customer pays `amount` against one invoice: a new Payment; invoice and customer Balances drop."""
        with self.lock:
            inv_row = self.get("Invoice", invoice_id)
            inv = copy.deepcopy(self.doc("Invoice", inv_row))
            now = _second(self.now())
            applied = render.money(min(amount, inv["Balance"]))
            pay_id = str(self.ids.next_id)
            self.ids.next_id += 1
            doc: Doc = {
                "Id": pay_id, "SyncToken": "0", "domain": "QBO", "sparse": False,
                "TxnDate": now.astimezone(self.tz).date().isoformat(), "CustomerRef": inv["CustomerRef"],
                "CurrencyRef": inv["CurrencyRef"], "ExchangeRate": inv["ExchangeRate"], "TotalAmt": amount,
                "UnappliedAmt": render.money(max(Decimal(0), amount - inv["Balance"])),
                "ProcessPayment": False, "Line": [{"Amount": applied, "LinkedTxn": [
                    {"TxnId": invoice_id, "TxnType": "Invoice"}]}],
                "MetaData": render.meta(now, now, self.tz),
            }  # fmt: skip
            row = Row(int(pay_id), now, now, None, keys_of("Payment", doc), _NAMES["Payment"])
            row.doc = doc
            self.tables["Payment"].insert(row)
            inv["Balance"] = render.money(inv["Balance"] - applied)
            inv["LinkedTxn"] = [*inv.get("LinkedTxn", []), {"TxnId": pay_id, "TxnType": "Payment"}]
            self._commit("Invoice", inv_row, inv)
            self._add_to_balance(inv["CustomerRef"]["value"], -applied)
            return row

    def _add_to_balance(self, customer_id: str, delta: Decimal) -> None:
        """Move a customer's Balance (and its LastUpdatedTime) after one of its invoices changed."""
        row = self.tables["Customer"].by_id.get(int(customer_id))
        if row is None:
            return
        doc = copy.deepcopy(self.doc("Customer", row))
        doc["Balance"] = doc["BalanceWithJobs"] = render.money(Decimal(str(doc["Balance"])) + delta)
        self._commit("Customer", row, doc)


def _check(entity: str, id_: str, doc: Doc) -> None:
    """The business rules an update must leave the object meeting (a 6000 otherwise, nothing changed)."""
    if entity == "Customer" and not str(doc.get("DisplayName") or "").strip():
        raise business(f"Customer {id_} would have no DisplayName: every customer needs a name")


def _second(when: datetime) -> datetime:
    """QBO times have whole seconds; storing them so keeps `>` on a rendered time exact."""
    return when.replace(microsecond=0) if when.microsecond else when


def _int(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else -1
