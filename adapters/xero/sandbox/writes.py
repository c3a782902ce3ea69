"""Xero's write-backs beside History: contact groups (holds), invoice e-mail, online link, reminders."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from adapters.xero.sandbox.answers import Handler, json_answer, not_found, validation_error
from adapters.xero.sandbox.book import Book, Group
from adapters.xero.sandbox.where import QueryError, compile_where, field_names

_GROUP_FIELDS = field_names(("Name", "Status", "ContactGroupID"))


async def groups(request: Request, book: Book) -> Response:
    """GET/PUT/POST /ContactGroups: list (where Name==/Status==) or create."""
    if request.method == "GET":
        with book.lock:
            rows = [_group(book, g, members=False) for g in book.groups.values() if g.status == "ACTIVE"]
        try:
            keep = compile_where(request.query_params.get("where") or "", _GROUP_FIELDS, "ContactGroup")
            rows = [r for r in rows if keep is None or keep(r)]
        except QueryError as exc:
            return validation_error(str(exc))
        return json_answer({"ContactGroups": rows})
    try:
        names = [str(g["Name"]).strip() for g in json.loads(await request.body())["ContactGroups"]]
    except (ValueError, KeyError, TypeError):
        return validation_error('the body must be {"ContactGroups":[{"Name":"..."}]}')
    with book.lock:
        active = {g.name.lower() for g in book.groups.values() if g.status == "ACTIVE"}
        for name in names:
            if not name or len(name) > 255:
                return validation_error("A contact group name must be 1 to 255 characters")
            if name.lower() in active:
                return validation_error(f"The contact group name '{name}' is already in use")
        made = [book.add_group(n) for n in names]
        return json_answer({"ContactGroups": [_group(book, g, members=True) for g in made]})


def _find_group(request: Request, book: Book) -> Group | None:
    group = book.groups.get(request.path_params["id"].lower())
    return group if group is not None and group.status == "ACTIVE" else None


async def group(request: Request, book: Book) -> Response:
    """GET /ContactGroups/{id} with its members; POST renames it or deletes it (Status DELETED)."""
    if request.method == "POST":
        return await _update_group(request, book)
    with book.lock:
        group = _find_group(request, book)
        return json_answer({"ContactGroups": [_group(book, group, members=True)]}) if group else not_found()


async def _update_group(request: Request, book: Book) -> Response:
    try:
        sent = json.loads(await request.body())["ContactGroups"][0]
        name = sent.get("Name")
        status = str(sent.get("Status") or "ACTIVE").upper()
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        return validation_error(
            'the body must be {"ContactGroups":[{"Name":"...", "Status":"ACTIVE|DELETED"}]}'
        )
    if status not in ("ACTIVE", "DELETED"):
        return validation_error(f"Status must be ACTIVE or DELETED, not {status!r}")
    with book.lock:
        group = _find_group(request, book)
        if group is None:
            return not_found()
        if name is not None:
            name = str(name).strip()
            if not name or len(name) > 255:
                return validation_error("A contact group name must be 1 to 255 characters")
            taken = {g.name.lower() for g in book.groups.values() if g.status == "ACTIVE" and g is not group}
            if name.lower() in taken:
                return validation_error(f"The contact group name '{name}' is already in use")
            group.name = name
        group.status = status
        for contact_id in sorted(group.members):  # each member's ContactGroups changed
            book.touch_contact(contact_id)
        return json_answer({"ContactGroups": [{**_group(book, group, members=False), "Contacts": []}]})


async def group_members(request: Request, book: Book) -> Response:
    """PUT /ContactGroups/{id}/Contacts adds; DELETE removes all."""
    with book.lock:
        group = _find_group(request, book)
        if group is None:
            return not_found()
        if request.method == "DELETE":
            for contact_id in sorted(group.members):
                book.leave(group, contact_id)
            return Response(status_code=204)
    try:
        wanted = [str(c["ContactID"]).lower() for c in json.loads(await request.body())["Contacts"]]
    except (ValueError, KeyError, TypeError):
        return validation_error('the body must be {"Contacts":[{"ContactID":"..."}]}')
    with book.lock:
        missing = [c for c in wanted if book.contacts.get(c) is None]
        if missing:
            return validation_error(f"Contact {missing[0]} does not exist")
        for contact_id in wanted:
            book.join(group, contact_id)
        rows = [_member(book, c) for c in wanted]
    return json_answer({"Contacts": rows})


async def group_member(request: Request, book: Book) -> Response:
    """DELETE /ContactGroups/{id}/Contacts/{ContactID} -> 204."""
    with book.lock:
        group = _find_group(request, book)
        if group is None:
            return not_found()
        book.leave(group, request.path_params["contact"].lower())
    return Response(status_code=204)


def email_endpoint(cap: int) -> Handler:
    """POST /Invoices/{id}/Email, with a daily cap of `cap` e-mails."""

    async def email(request: Request, book: Book) -> Response:
        """POST /Invoices/{id}/Email -> 204: Xero e-mails the invoice to the contact."""
        with book.lock:
            inv = book.invoices.get(request.path_params["id"].lower())
            if inv is None:
                return not_found()
            status = book.invoice_status(inv)
            if inv.kind != "sales" or status not in ("SUBMITTED", "AUTHORISED", "PAID"):
                return validation_error(
                    "Only ACCREC invoices that are SUBMITTED, AUTHORISED or PAID can be emailed"
                )
            if not book.customer(inv.customer_id).email:
                return validation_error("The contact does not have an email address")
            today = book.clock.now().date()
            if book.emails[today] >= cap:
                return validation_error("Daily invoice email limit reached")
            book.emails[today] += 1
            book.emailed.append(inv.id)
            if inv.id not in book.sent:
                book.sent.add(inv.id)
                book.touch_invoice(inv.id)
        return Response(status_code=204)

    return email


async def online_invoice(request: Request, book: Book) -> Response:
    """GET /Invoices/{id}/OnlineInvoice: the customer's pay-online link."""
    with book.lock:
        inv = book.invoices.get(request.path_params["id"].lower())
        if inv is None:
            return not_found()
        if inv.kind != "sales" or book.invoice_status(inv) not in ("SUBMITTED", "AUTHORISED", "PAID"):
            return validation_error("Online invoices are only available for approved sales invoices")
    link = hashlib.sha256(f"{book.tenant_id}:{inv.id}".encode()).hexdigest()[:32]
    return json_answer({"OnlineInvoices": [{"OnlineInvoiceUrl": f"https://in.xero.com/{link}"}]})


async def reminders(request: Request, book: Book) -> Response:
    """GET /InvoiceReminders/Settings."""
    return json_answer({"InvoiceReminders": [{"Enabled": book.reminders_enabled}]})


def _member(book: Book, contact_id: str) -> dict[str, Any]:
    c = book.customer(contact_id)
    return {
        "ContactID": c.id,
        "Name": c.name,
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "HasValidationErrors": False,
    }


def _group(book: Book, g: Group, *, members: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Name": g.name,
        "Status": g.status,
        "ContactGroupID": g.id,
        "HasValidationErrors": False,
    }
    if members:
        out["Contacts"] = [_member(book, c) for c in sorted(g.members)]
    return out
