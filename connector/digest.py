"""The morning digest: last night of one firm, e-mailed to the firm's contact, exactly once per night.

Guarantees:
- Opt-in per firm (`ccm tenants set T --digest/--no-digest`, kept in `morning_digests`); a firm without a
  contact address (tenants.contact_email) gets none.
- The content is that of the firm's page `/t/{tenant}/`: the night's headline and every section of its report
  (reminders sent, holds placed and released with their reasons, call tasks, failed and unknown actions, the
  bookkeeper's flags), then the actions still waiting for a person, in names and invoice numbers. Text and
  HTML, the HTML escaped.
- It goes through the outbox as a notice to the firm (kind `notice`, sent by the executor with the health
  notices) under the key `digest:{tenant}:{night}`: planned in the transaction that stores the night's
  report, so a night run twice, or a send that is retried, still sends one e-mail per firm and night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog
from jinja2 import Environment, StrictUndefined
from sqlalchemy import Connection, delete, select

from connector import mail, outbox
from connector.model import Tenant
from connector.outbox import Mode, NewAction
from connector.payloads import DigestPayload, Kind
from connector.store.schema import morning_digests

if TYPE_CHECKING:
    from connector.nightreport import Report

log = structlog.get_logger(__name__)
KIND = Kind.NOTICE  # sent with the connection-health notices: the firm's own e-mail, not a customer's
_TEXT = """\
{{ firm }}: last night ({{ night }})
{{ headline }}
{% for title, lines in sections %}
{{ title|capitalize }}
{% for line in lines %}- {{ line }}
{% endfor %}{% endfor %}
{% if unsettled %}Waiting for a person now
{% for line in unsettled %}- {{ line }}
{% endfor %}{% else %}Nothing waits for a person now.
{% endif %}
--
ccm, for {{ firm }}. To stop these e-mails: ccm tenants set {{ tenant_id }} --no-digest
"""
_HTML = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ firm }}: last night</title></head>
<body style="font-family: sans-serif; color: #1a1a1a; max-width: 40em">
<h1 style="font-size: 1.3em">{{ firm }}: last night ({{ night }})</h1>
<p><strong>{{ headline }}</strong></p>
{% for title, lines in sections %}
<h2 style="font-size: 1.1em">{{ title|capitalize }}</h2>
<ul>{% for line in lines %}<li>{{ line }}</li>{% endfor %}</ul>
{% endfor %}
<h2 style="font-size: 1.1em">Waiting for a person now</h2>
{% if unsettled %}<ul>{% for line in unsettled %}<li>{{ line }}</li>{% endfor %}</ul>
{% else %}<p>Nothing waits for a person now.</p>{% endif %}
<p style="color: #555">ccm, for {{ firm }}. To stop these e-mails:
<code>ccm tenants set {{ tenant_id }} --no-digest</code></p>
</body></html>
"""
# The plain-text part: nothing in it is read as HTML, so nothing is escaped.
_env = Environment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)  # noqa: S701
_html_env = Environment(undefined=StrictUndefined, autoescape=True)


@dataclass(frozen=True, slots=True)
class Digest:
    to: str
    rendered: mail.Rendered


def enabled(conn: Connection, tenant_id: str) -> bool:
    row = conn.execute(
        select(morning_digests.c.enabled).where(morning_digests.c.tenant_id == tenant_id)
    ).first()
    return bool(row and row.enabled)


def set_enabled(conn: Connection, tenant_id: str, on: bool, now: datetime) -> None:
    """Turn the firm's morning digest on or off."""
    conn.execute(delete(morning_digests).where(morning_digests.c.tenant_id == tenant_id))
    conn.execute(morning_digests.insert().values(tenant_id=tenant_id, enabled=on, updated_at=now))


def key(tenant_id: str, report: Report) -> str:
    return f"digest:{tenant_id}:{report.night.isoformat()}"[:128]


def render(tenant: Tenant, report: Report, unsettled: list[str]) -> mail.Rendered:
    """The digest's subject, text and HTML for one night's report."""
    fields: dict[str, Any] = {
        "firm": tenant.name, "tenant_id": tenant.id, "night": report.night.isoformat(),
        "headline": report.headline, "sections": report.sections, "unsettled": unsettled,
    }  # fmt: skip
    subject = f"{tenant.name}: last night ({report.night.day} {report.night:%B %Y}): {report.headline}"
    if len(subject) > 200:
        subject = subject[:199] + "…"
    return mail.Rendered(
        subject, _env.from_string(_TEXT).render(**fields), _html_env.from_string(_HTML).render(**fields)
    )


def plan(conn: Connection, tenant: Tenant, report: Report, now: datetime) -> str | None:
    """Plan the night's digest for the firm when it asked for one; returns its key (None: none planned)."""
    if not tenant.contact_email or not enabled(conn, tenant.id):
        return None
    try:
        with conn.begin_nested():  # a digest that cannot be planned never costs the night its report
            waiting = [u.line() for u in outbox.unsettled(conn, tenant.id)]
            rendered = render(tenant, report, waiting)
            night = report.night.isoformat()
            payload = DigestPayload(
                tenant.contact_email, tenant.name, night, rendered.subject, rendered.text, rendered.html
            )
            action = NewAction(key(tenant.id, report), KIND, "email", "", payload, now)
            outbox.plan(conn, tenant.id, [action], Mode.AUTO, now)
    except Exception:
        log.exception("digest.plan_failed", tenant=tenant.id, night=report.night.isoformat())
        return None
    return action.key


def rendered_of(payload: DigestPayload) -> mail.Rendered:
    """The digest an outbox notice carries, as it was rendered when planned."""
    return mail.Rendered(payload.subject, payload.text, payload.html)
