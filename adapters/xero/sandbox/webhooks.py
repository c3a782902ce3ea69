"""Xero's webhooks from the sandbox: signed events for contact, invoice and credit-note changes (no payments).

Deliveries run on a background thread, one event per delivery, in order, so a request that changes a record
never waits for the receiver. Failed deliveries are kept and retried by `redeliver()`; after 24 hours (sandbox
clock) of failing, the webhook is disabled, as Xero does. `intent_to_receive()` runs Xero's handshake: an
empty, correctly signed body must get 200 with an empty body and a wrongly signed one 401, within 5 seconds.
"""

from __future__ import annotations

import json
import queue
import secrets
import string
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.webhooks import sign, sign_and_post

HEADER = "x-xero-signature"
DEFAULT_KEY = "ccm-sandbox-webhook-key"
GIVE_UP = timedelta(hours=24)  # Xero retries a failing delivery for a day, then disables the webhook
_RESOURCE = {"INVOICE": "Invoices", "CONTACT": "Contacts", "CREDITNOTE": "CreditNotes"}


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST the sandbox made: its body and the receiver's status (0: no answer)."""

    body: bytes
    status: int


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the intent-to-receive check saw."""

    good_status: int
    good_body_empty: bool
    bad_status: int
    seconds: float

    @property
    def passed(self) -> bool:
        return (
            self.good_status == 200 and self.good_body_empty and self.bad_status == 401 and self.seconds < 5
        )


def _entropy() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(20))


class Webhooks:
    """Posts Xero-shaped events to `url`, signed with `key`; keeps a log of deliveries."""

    def __init__(
        self, url: str | None, key: str, clock: SandboxClock, verify: Path | str | bool = True
    ) -> None:
        self.url = url
        self.key = key
        self.clock = clock
        self.verify = verify
        self.deliveries: list[Delivery] = []
        self.failed: list[tuple[bytes, datetime]] = []  # undelivered bodies and when they first failed
        self.disabled = False
        self._sequence = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def event(
        self,
        tenant_id: str,
        category: str,
        resource_id: str,
        event_type: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        """Queue one event (no-op without a URL)."""
        if self.url is None:
            return
        with self._lock:
            self._sequence += 1
            seq = self._sequence
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="xero-sandbox-webhooks", daemon=True)
                self._thread.start()
        at = self.clock.now()
        item: dict[str, Any] = {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/{_RESOURCE[category]}/{resource_id}",
            "resourceId": resource_id,
            "eventDateUtc": at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
            "eventType": event_type,
            "eventCategory": category,
            "tenantId": tenant_id,
            "tenantType": "ORGANISATION",
        }
        if data:
            item["data"] = data
        body = {"events": [item], "firstEventSequence": seq, "lastEventSequence": seq, "entropy": _entropy()}
        self._queue.put(json.dumps(body, separators=(",", ":")).encode())

    def _run(self) -> None:
        while True:
            body = self._queue.get()
            try:
                if body is None:
                    return
                self._deliver(body, self.clock.now())
            finally:
                self._queue.task_done()

    def _deliver(self, body: bytes, first_try: datetime) -> None:
        if self.disabled or self.url is None:
            return
        status = sign_and_post(self.url, body, HEADER, self.key, verify=self.verify)
        with self._lock:
            self.deliveries.append(Delivery(body, status))
            if status != 200:
                self.failed.append((body, first_try))

    def redeliver(self) -> None:
        """Retry failed deliveries now, as Xero keeps doing; past 24 hours of failing, disable the webhook."""
        with self._lock:
            due, self.failed = self.failed, []
        now = self.clock.now()
        for body, first_try in due:
            if now - first_try > GIVE_UP:
                self.disabled = True
                with self._lock:
                    self.failed.clear()
                return
            self._deliver(body, first_try)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every queued event was delivered (or `timeout` seconds passed)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=5)

    def intent_to_receive(self, url: str | None = None) -> Handshake:
        """Xero's handshake: post an empty event list signed rightly, then wrongly, and judge the answers."""
        target = url or self.url
        if target is None:
            raise ValueError("intent_to_receive: no webhook URL (start(webhook_url=...) or pass url=)")
        body = json.dumps(
            {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": _entropy()},
            separators=(",", ":"),
        ).encode()
        trust = str(self.verify) if isinstance(self.verify, Path) else self.verify
        began = time.monotonic()
        try:
            good = requests.post(
                target,
                data=body,
                timeout=5,
                verify=trust,
                headers={HEADER: sign(body, self.key), "Content-Type": "application/json"},
            )
            good_status, good_empty = good.status_code, good.content == b""
        except requests.RequestException:
            good_status, good_empty = 0, False
        bad_status = sign_and_post(target, body, HEADER, self.key + "-wrong", verify=self.verify)
        return Handshake(good_status, good_empty, bad_status, time.monotonic() - began)
