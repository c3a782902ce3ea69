"""Notices to the firm: connection-health e-mails and the morning digest (connector/health.py,
connector/digest.py), and the health issue saying actions wait for a person.

Invariants: after each execution, actions waiting for a person (unknown or failed) are the firm's health
issue `actions_need_attention`, and a new issue plans its notice (not in a dry run, nor when the firm turned
notices off). A notice goes out whatever the send window: the firm is told what is wrong at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from connector import digest, health, mail, outbox
from connector.config import Settings
from connector.model import Tenant
from connector.outbox import Action, Mode
from connector.payloads import DigestPayload, Kind, NoticePayload
from connector.run.senders.attempt import Attempts
from connector.run.senders.smtp import Mailer
from connector.store import Store

KIND = Kind.NOTICE


def attention(store: Store, settings: Settings, tenant: Tenant, mode: Mode, now: datetime) -> None:
    """Record whether actions wait for a person (unknown or failed) as the firm's health issue, and plan
    the notice telling the firm when it is new."""
    with store.begin() as conn:
        message = outbox.attention(outbox.unsettled(conn, tenant.id))
        found = [health.Issue(health.ATTENTION, message)] if message else []
        health.record(conn, tenant.id, found, now, (health.ATTENTION,))
        if settings.health.notify and mode is not Mode.DRY_RUN:
            outbox.plan(conn, tenant.id, health.notices(conn, tenant, now), Mode.AUTO, now)


class NoticeSender:
    """Sends one tenant's due notices in one execution."""

    def __init__(
        self, store: Store, settings: Settings, tenant_id: str, templates: mail.Templates, attempts: Attempts,
        mailer: Mailer,
    ) -> None:  # fmt: skip
        self.store = store
        self.settings = settings
        self.tenant_id = tenant_id
        self.templates = templates
        self.attempts = attempts
        self.mailer = mailer

    def run(self, now: datetime) -> None:
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind == KIND]
        for action in due:
            result = self.attempts.attempt(action, partial(self._prepare, action, now), now)
            if result is None:
                continue
            self.attempts.complete(action, result, now)
            self.attempts.out.notices.append(action.key)

    def _prepare(self, action: Action, now: datetime) -> Callable[[], str]:
        p = action.payload
        if isinstance(p, DigestPayload):  # the morning digest, rendered when it was planned
            rendered, email = digest.rendered_of(p), p.email
        elif isinstance(p, NoticePayload):
            shown = mail.NoticeView(p.firm, p.ledger, p.issue, p.message, action.key)
            rendered, email = mail.render(self.templates, "notice", shown), p.email
        else:
            raise mail.TemplateProblem(f"{action.key}: a notice without its words")
        message = mail.build_message(rendered, email, action.key, self.settings.smtp)
        return self.mailer.effect(message, now)
