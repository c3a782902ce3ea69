"""Webhook notifications as Intuit sends them: signed with `intuit-signature`, legacy or CloudEvents.

Changes made through the API and the test controls are queued; `pump()` turns what is queued into
notifications and delivers them, and retries failed deliveries on Intuit's schedule (10 s, 20 s, 30 s,
5 min, 20 min, 2 h, 4 h, 6 h, then every 6 h) on the sandbox clock. With `out_of_order`, each change goes
in a notification of its own and a pump delivers them newest first.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.webhooks import sign_and_post

HEADER = "intuit-signature"
DEFAULT_VERIFIER = "ccm-sandbox-verifier"
RETRY_SCHEDULE = (10, 20, 30, 300, 1200, 7200, 14400, 21600)  # seconds; then every 6 h
Format = Literal["legacy", "cloudevents"]
_VERBS = {"Create": "created", "Update": "updated", "Delete": "deleted", "Void": "voided",
          "Emailed": "emailed", "Merge": "merged"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Event:
    """One change: entity name, Id, Intuit operation (Create, Update, Delete, Void, Emailed, Merge)."""

    entity: str
    id: str
    operation: str
    when: datetime


@dataclass
class Delivery:
    """A notification body and its delivery state."""

    body: bytes
    events: tuple[Event, ...]
    due: datetime
    attempts: int = 0
    statuses: list[int] = field(default_factory=list)
    delivered: bool = False
    given_up: bool = False

    @property
    def waiting(self) -> bool:
        """Not delivered yet, and still to be tried."""
        return not self.delivered and not self.given_up


def _zulu(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def legacy_body(realm: str, events: tuple[Event, ...]) -> bytes:
    """`{"eventNotifications":[{"realmId", "dataChangeEvent":{"entities":[...]}}]}`."""
    entities = [{"name": e.entity, "id": e.id, "operation": e.operation, "lastUpdated": _zulu(e.when)}
                for e in events]  # fmt: skip
    note = {"realmId": realm, "dataChangeEvent": {"entities": entities}}
    return json.dumps({"eventNotifications": [note]}, separators=(",", ":")).encode()


def _type(event: Event) -> str:
    return f"qbo.{event.entity.lower()}.{_VERBS.get(event.operation, 'updated')}.v1"


def cloudevents_body(realm: str, events: tuple[Event, ...], rng: random.Random) -> bytes:
    """A JSON array of CloudEvents (`type` "qbo.invoice.updated.v1", `intuitentityid`, `intuitaccountid`)."""
    out = [{
        "specversion": "1.0", "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "source": "intuit.ccm-sandbox", "type": _type(e),
        "datacontenttype": "application/json", "time": _zulu(e.when), "intuitentityid": e.id,
        "intuitaccountid": realm, "data": {},
    } for e in events]  # fmt: skip
    return json.dumps(out, separators=(",", ":")).encode()


class Notifier:
    """Queues changes and delivers signed notifications to `url`, retrying failures."""

    def __init__(self, realm: str, clock: SandboxClock, *, url: str | None = None,
                 verifier: str = DEFAULT_VERIFIER, fmt: Format = "legacy", retries: bool = True,
                 out_of_order: bool = False, verify: Path | bool = True, seed: int = 0) -> None:  # fmt: skip
        self.realm = realm
        self.clock = clock
        self.url = url
        self.verifier = verifier
        self.format: Format = fmt
        self.retries = retries
        self.out_of_order = out_of_order
        self.verify = verify
        self.queued: list[Event] = []
        self.deliveries: list[Delivery] = []
        self._rng = random.Random(seed)  # noqa: S311 - event ids, not secrets
        self._lock = threading.Lock()

    def record(self, entity: str, id_: str, operation: str) -> None:
        """Queue a change for the next notification (nothing is kept while no endpoint is set)."""
        if self.url is None:
            return
        with self._lock:
            self.queued.append(Event(entity, id_, operation, self.clock.now()))

    def _body(self, events: tuple[Event, ...]) -> bytes:
        if self.format == "cloudevents":
            return cloudevents_body(self.realm, events, self._rng)
        return legacy_body(self.realm, events)

    def pump(self) -> list[int]:
        """Build notifications from the queue and make every due delivery attempt; the statuses seen."""
        now = self.clock.now()
        with self._lock:
            events, self.queued = tuple(self.queued), []
            if events:
                groups = [(e,) for e in reversed(events)] if self.out_of_order else [events]
                self.deliveries.extend(Delivery(self._body(g), g, now) for g in groups)
            due = [d for d in self.deliveries if d.waiting and d.due <= now]
        statuses = []
        for delivery in due:
            status = (
                sign_and_post(self.url, delivery.body, HEADER, self.verifier, verify=self.verify)
                if self.url
                else 0
            )
            statuses.append(status)
            with self._lock:
                delivery.attempts += 1
                delivery.statuses.append(status)
                delivery.delivered = 200 <= status < 300
                if not delivery.delivered:
                    if not self.retries:
                        delivery.given_up = True
                        continue
                    wait = RETRY_SCHEDULE[min(delivery.attempts - 1, len(RETRY_SCHEDULE) - 1)]
                    delivery.due = now + timedelta(seconds=wait)
        return statuses

    def pending(self) -> list[Delivery]:
        """Deliveries not yet made (waiting for their next attempt)."""
        with self._lock:
            return [d for d in self.deliveries if d.waiting]
