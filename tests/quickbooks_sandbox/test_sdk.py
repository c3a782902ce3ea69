"""python-quickbooks (0.9.12) parses every answer the sandbox gives, over each endpoint ccm uses."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from quickbooks.batch import batch_update
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import AuthorizationException, ObjectNotFoundException, QuickbooksException
from quickbooks.objects.attachable import Attachable
from quickbooks.objects.base import AttachableRef
from quickbooks.objects.creditmemo import CreditMemo
from quickbooks.objects.customer import Customer
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.payment import Payment

from tests.quickbooks_sandbox.conftest import sdk_client


@pytest.fixture
def qb(sandbox):
    client = sdk_client(sandbox)
    yield client
    client.session.close()


def test_queries_of_every_entity_parse_into_objects(qb, sandbox):
    invoices = Invoice.query(
        "SELECT * FROM Invoice WHERE Metadata.LastUpdatedTime > '2020-01-01T00:00:00Z' "
        "ORDERBY Metadata.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000",
        qb=qb,
    )
    assert len(invoices) == Invoice.count(qb=qb) > 300
    assert invoices[0].CustomerRef.value and invoices[0].MetaData.LastUpdatedTime
    every = Customer.where("Active IN (true, false)", max_results=1000, qb=qb)
    assert len(every) == len(sandbox.company.tables["Customer"].by_id)
    assert Payment.all(max_results=1000, qb=qb)[0].Line[0].LinkedTxn[0].TxnType == "Invoice"
    memos = CreditMemo.filter(max_results=1000, qb=qb)
    assert memos and all(m.RemainingCredit is not None for m in memos)
    assert Customer.choose(["2", "3"], qb=qb)[1].Id == "3"


def test_get_parses_and_unknown_ids_raise_object_not_found(qb):
    inv = Invoice.get(60, qb=qb)
    assert inv.Id == "60" and inv.DocNumber.startswith("INV-")
    with pytest.raises(ObjectNotFoundException):
        Invoice.get(999999, qb=qb)


def test_sparse_update_of_an_object_read_first_and_stale_token(qb):
    customer = Customer.get(2, qb=qb)
    customer.sparse = True
    customer.Notes = "Own text\n[ccm] credit hold"
    saved = customer.save(qb=qb)
    assert saved.Notes == "Own text\n[ccm] credit hold" and saved.SyncToken == "1"
    with pytest.raises(QuickbooksException) as stale:
        qb.update_object("Customer", json.dumps({"Id": "2", "SyncToken": "0", "sparse": True, "Notes": "x"}))
    assert stale.value.error_code == 5010


def test_attachable_note_create_and_query(qb):
    note = Attachable()
    note.Note = "Reminder sent [ccm:key-1]"
    ref = AttachableRef()
    ref.EntityRef = {"type": "Invoice", "value": "60"}
    note.AttachableRef.append(ref)
    saved = note.save(qb=qb)
    found = Attachable.where("AttachableRef.EntityRef.value = '60'", qb=qb)
    assert [a.Id for a in found] == [saved.Id] and found[0].Note == note.Note


def test_invoice_send(qb):
    answer = Invoice.get(60, qb=qb).send(qb=qb, send_to="ap@example.com")
    assert answer["Invoice"]["EmailStatus"] == "EmailSent"
    assert Invoice.get(60, qb=qb).EmailStatus == "EmailSent"


def test_cdc_parses_changes_and_tombstones(qb, sandbox):
    since = sandbox.clock.now()
    sandbox.clock.advance(5)
    sandbox.delete("Invoice", "61")
    pay_id = sandbox.post_payment("62", Decimal("5.00"))
    answer = change_data_capture([Invoice, Payment], since - timedelta(seconds=1), qb=qb)
    assert {i.Id for i in answer.Invoice} == {"61", "62"}
    assert next(i for i in answer.Invoice if i.Id == "61").status == "Deleted"
    assert [p.Id for p in answer.Payment] == [pay_id]


def test_batch_update_parses_successes_and_faults(qb):
    first, second = Customer.get(2, qb=qb), Customer.get(3, qb=qb)
    for c in (first, second):
        c.sparse = True
        c.Notes = "batched"
    second.SyncToken = "7"
    result = batch_update([first, second], qb=qb)
    assert [s.Id for s in result.successes] == ["2"] and result.successes[0].Notes == "batched"
    assert result.faults[0].Error[0].code == "5010"


def test_sdk_raises_authorization_error_for_a_bad_token(qb):
    qb.session.access_token = "wrong"
    qb.session.token = {"access_token": "wrong", "token_type": "Bearer"}
    with pytest.raises(AuthorizationException):
        Customer.get(2, qb=qb)


def test_invoice_void_through_the_sdk(qb, sandbox):
    open_one = next(
        r for r in sandbox.company.tables["Invoice"].by_id.values() if not r.deleted and r.keys["Balance"] > 0
    )
    invoice = Invoice.get(open_one.id, qb=qb)
    customer_before = Customer.get(invoice.CustomerRef.value, qb=qb).Balance
    invoice.void(qb=qb)
    voided = Invoice.get(open_one.id, qb=qb)
    assert (voided.TotalAmt, voided.Balance, voided.PrivateNote) == (0, 0, "Voided")
    after = Customer.get(invoice.CustomerRef.value, qb=qb).Balance
    assert round(customer_before - after, 2) == round(invoice.Balance, 2)
