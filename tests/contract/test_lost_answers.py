"""Every write-back happens exactly once when the ledger applies a request and its answer is lost.

The sandboxes' apply-then-drop fault (adapters/sandbox/faults.py) lets the ledger commit a write, then drops
the connection or puts a 503 in the place of the answer: what a read timeout after the body was sent, or a
proxy's 5xx, does to a client. A blind retry then writes twice. Each case runs every write of the Ledger
protocol (a note on an invoice and on a customer, a hold, a release, the ledger's own invoice e-mail) and
counts its effects in the sandbox's own books (notes, hold marks, e-mails sent), never in what ccm or the
adapter says it did.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from adapters.sandbox.faults import Faults
from connector.ledger import Ledger, LedgerError, WriteResult
from connector.store import Store
from tests.contract.harness import Harness

Effects = dict[str, int]


@dataclass(frozen=True, slots=True)
class Write:
    """One write of the Ledger protocol: its targets, what must stand before it, the call, its effects."""

    name: str
    targets: Callable[[Harness, int], list[str]]
    call: Callable[[Ledger, str, str], WriteResult]  # (ledger, target, key)
    effects: Callable[[Harness, str, str], Effects]  # what the books hold for (target, key)
    once: Effects  # the effects of the write done exactly once
    before: Callable[[Harness, str, str], None] = lambda h, target, key: None


def _text(key: str) -> str:
    return f"Reminder for <{key}>"


def _notes_with(h: Harness, kind: str, target: str, text: str) -> int:
    return sum(text in note for note in h.notes(kind, target))


def _hold_first(h: Harness, customer: str, key: str) -> None:
    h.ledger().set_hold(f"customer:{customer}", True, f"held before {key}", f"{key}/held-before")


WRITES = [
    Write(
        "note-on-invoice",
        lambda h, n: h.open_invoices(n),
        lambda ledger, target, key: ledger.add_note(f"invoice:{target}", _text(key), key),
        lambda h, target, key: {"notes": _notes_with(h, "invoice", target, _text(key))},
        {"notes": 1},
    ),
    Write(
        "note-on-customer",
        lambda h, n: h.customers(n),
        lambda ledger, target, key: ledger.add_note(f"customer:{target}", _text(key), key),
        lambda h, target, key: {"notes": _notes_with(h, "customer", target, _text(key))},
        {"notes": 1},
    ),
    Write(
        "hold",
        lambda h, n: h.customers(n),
        lambda ledger, target, key: ledger.set_hold(f"customer:{target}", True, f"over limit <{key}>", key),
        lambda h, target, key: {
            "notes": _notes_with(h, "customer", target, f"over limit <{key}>"),
            "hold_marks": h.hold_marks(target),
        },
        {"notes": 1, "hold_marks": 1},
    ),
    Write(
        "release",
        lambda h, n: h.customers(n),
        lambda ledger, target, key: ledger.set_hold(f"customer:{target}", False, f"paid up <{key}>", key),
        lambda h, target, key: {
            "notes": _notes_with(h, "customer", target, f"paid up <{key}>"),
            "hold_marks": h.hold_marks(target),
        },
        {"notes": 1, "hold_marks": 0},
        before=_hold_first,
    ),
    Write(
        "send",
        lambda h, n: h.open_invoices(n),
        lambda ledger, target, key: ledger.send_via_ledger(f"invoice:{target}", key),
        lambda h, target, key: {"emails": h.emails_sent(target)},
        {"emails": 1},
    ),
]
BY_NAME = {w.name: w for w in WRITES}
NAMES = list(BY_NAME)


def losing(h: Harness, *, how: str = "either", first: int = 0, skip: int = 0, rate: float = 0.0) -> Faults:
    """From now on the sandbox applies the ledger's writes and loses the answer of the `first` ones after
    `skip` more, and then of a `rate` share of them, dropping the connection or answering 503 (`how`)."""
    faults = h.sandbox_faults()
    faults.apply_drop_only = h.write_requests
    faults.apply_drop_as = how
    faults.apply_drop_next = first
    faults.apply_drop_skip = skip
    faults.apply_drop_rate = rate
    return faults


def as_the_executor(h: Harness, write: Write, target: str, key: str, tries: int = 6) -> None:
    """Call the write until it reports success, each time from a new adapter with the same key, as the
    executor does with an action whose outcome it could not learn (its errors say: try later)."""
    for _ in range(tries):
        try:
            write.call(h.ledger(), target, key)
            return
        except LedgerError:
            continue
    raise AssertionError(f"{write.name} {key}: no success in {tries} calls")


@pytest.mark.parametrize("name", NAMES)
def test_a_write_whose_answers_are_lost_is_done_once(harness: Harness, store: Store, name: str) -> None:
    """The answer of the call's first, second, ... write request is lost, by a dropped connection or a 503
    (and that of the request after it, too): whichever it is, the write is done once."""
    write = BY_NAME[name]
    harness.connect()
    targets = iter(write.targets(harness, 12))
    for skip in range(4):
        fired_here = False
        for lost, how in ((1, "drop"), (1, "503"), (2, "either")):
            target, key = next(targets), f"lost/{name}/{skip}/{lost}/{how}"
            write.before(harness, target, key)
            faults = losing(harness, how=how, first=lost, skip=skip)
            fired = len(faults.lost)
            result = write.call(harness.ledger(), target, key)
            faults.clear()
            fired_here = fired_here or len(faults.lost) > fired
            assert result.applied, key  # done by this call, though it never heard the ledger say so
            assert write.effects(harness, target, key) == write.once, key
        if not fired_here:  # the call makes fewer write requests than `skip` + 1: all were covered
            assert skip > 0, "no answer was lost"
            break


def each_key_once_under_lost_answers(h: Harness, name: str, rate: float = 0.3, keys: int = 16) -> None:
    """`keys` keys of one write over four targets while a `rate` share of write answers is lost; an error
    is retried later with the same key; each key's write is done once."""
    write = BY_NAME[name]
    targets = write.targets(h, 4)
    work = [(targets[i % len(targets)], f"rate/{name}/{i}") for i in range(keys)]
    faults = losing(h, rate=rate)
    before = len(faults.lost)
    done: dict[str, int] = {}
    for target, key in work:
        if name == "release":  # a release needs a hold to release: put it on without faults
            faults.apply_drop_rate = 0.0
            write.before(h, target, key)
            faults.apply_drop_rate = rate
        as_the_executor(h, write, target, key)
        done[target] = done.get(target, 0) + 1
        once = {"emails": done[target]} if name == "send" else write.once  # one e-mail per key
        assert write.effects(h, target, key) == once, key
    faults.clear()
    assert len(faults.lost) - before >= 2, "the fault hardly fired"
    if name.startswith("note"):  # nothing a later key did changed an earlier one's count
        assert all(write.effects(h, target, key) == write.once for target, key in work)


@pytest.mark.parametrize("name", NAMES)
def test_writes_are_done_once_each_when_30_percent_of_answers_are_lost(harness: Harness, store: Store,
                                                                      name: str) -> None:  # fmt: skip
    harness.connect()
    each_key_once_under_lost_answers(harness, name)


@pytest.mark.parametrize("name", NAMES)
def test_a_write_called_again_with_its_key_is_done_once(harness: Harness, store: Store, name: str) -> None:
    """As the executor does after dying between the ledger's answer and its own commit; and after a call
    that lost every answer (whatever it said, the next call with the key completes the write, once)."""
    write = BY_NAME[name]
    harness.connect()
    heard, unheard = write.targets(harness, 2)
    key = f"again/{name}"
    write.before(harness, heard, key)
    first = write.call(harness.ledger(), heard, key)
    again = write.call(harness.ledger(), heard, key)
    assert (first.applied, again.applied) == (True, False)
    assert write.effects(harness, heard, key) == write.once

    key = f"all-lost/{name}"
    write.before(harness, unheard, key)
    faults = losing(harness, rate=1.0)
    with contextlib.suppress(LedgerError):  # it could not learn the outcome: the executor tries again later
        write.call(harness.ledger(), unheard, key)
    faults.clear()
    assert faults.lost
    effects = write.effects(harness, unheard, key)
    assert all(n <= write.once[kind] for kind, n in effects.items() if kind != "hold_marks")
    write.call(harness.ledger(), unheard, key)
    assert write.effects(harness, unheard, key) == write.once
