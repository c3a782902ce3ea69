"""`/t/{tenant}/settings`: the firm's sender identity, send window, mode, policies, templates with a preview.

```
GET  /t/{tenant}/settings[?template=T&customer=C]   read; with T and C, template T rendered for customer C
POST /t/{tenant}/settings/mode                      admins: the firm's mode (auto|approve|dry-run|default)
POST /t/{tenant}/settings/profile                   admins: the firm's sender identity and legal footer
```
Guarantees: everyone who may see the firm reads; only an admin changes anything (a bookkeeper's or viewer's
POST is 403 and changes nothing); every POST needs the form's CSRF token; each change is written to the audit
log with its before and after in the same transaction; a bad value is refused with the profile's own one-line
message (400) and nothing is stored. The preview renders on the server (a GET form: no script) by the code
that sends reminders (`Executor.compose`, as connector/web/preview.py drafts): the firm's templates and
profile, pay links, the customer's open invoices as stored, each with what was written about it before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, or_, select
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from connector import digest, firmmode, mail
from connector.config import Settings
from connector.errors import CcmError
from connector.firmprofile import FirmProfile, ProfileProblem, load_profile, save_profile
from connector.ledger import Ledger
from connector.model import Tenant
from connector.outbox import Mode
from connector.reconcile import Basis, load_snapshot
from connector.rules.calendar import SendCalendar
from connector.rules.policy import PolicyFileError, PolicySet, load_policies
from connector.run.execute import Outcome
from connector.run.plan import POLICY_FILE, Context
from connector.store import Store
from connector.store.schema import customers
from connector.store.tenants import get_standing, set_mode
from connector.web import approvals, audit, preview
from connector.web.pages import HEADERS, Pages, RequestRefused, Visit
from connector.web.users import Role, User
from connector.words import preview as words_preview

MODES = ("default", *(m.value for m in Mode))
PROFILE_FIELDS = ("from_name", "from_address", "reply_to", "signature", "company_number", "registered_office",
                  "locale")  # fmt: skip
DONE = {"mode": "The firm's mode is saved.", "profile": "The sender identity is saved."}


@dataclass(frozen=True, slots=True)
class Shown:
    """The template preview: what was asked, and the e-mail or why there is none."""

    template: str
    customer: str
    rendered: mail.Rendered | None
    problem: str


@dataclass(frozen=True)
class SettingsView:
    profile: FirmProfile
    sender: str  # the From header as sent
    reply_to: str | None
    calendar: SendCalendar
    chosen: str | None
    effective: firmmode.Effective
    policies: PolicySet | None
    policy_problem: str
    templates: tuple[str, ...]
    shown: Shown | None
    digest: bool = False  # the morning digest is on (connector/digest.py, `ccm tenants set T --digest`)


def _customer(conn: Connection, tenant_id: str, wanted: str) -> tuple[str, str] | None:
    """(id, name) of the customer named `wanted` (exact name, any case, or id)."""
    c = customers.c
    query = (
        select(c.id, c.name)
        .where(c.tenant_id == tenant_id, or_(c.id == wanted, func.lower(c.name) == wanted.lower()))
        .order_by(c.name, c.id)
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else (str(row.id), str(row.name))


def show(store: Store, settings: Settings, tenant: Tenant, template: str, wanted: str, today: date,
         ledger: Ledger | None) -> Shown:  # fmt: skip
    """Template `template` drafted for the customer `wanted` by the code that sends reminders
    (`Executor.compose`: the firm's sign-off, bank details, pay links, each invoice with what was written
    before), the customer's open invoices at the policy level that uses the template (else its last)."""
    with store.read() as conn:
        found = _customer(conn, tenant.id, wanted.strip())
    if found is None:
        return Shown(
            template, wanted, None, f"No customer is named {wanted!r}: give the name as in the ledger."
        )
    cid, name = found
    try:
        ctx = Context.load(settings, tenant)
        basis = Basis.of(load_snapshot(store, tenant.id), today, ctx.rating)
        first = words_preview.at_level(basis, ctx, store, cid, 1)
        policy = next(p for p in ctx.policies.policies if p.name == first.policy)
        level = next((lv.number for lv in policy.levels if lv.template == template), len(policy.levels))
        reminder = first if level == 1 else words_preview.at_level(basis, ctx, store, cid, level)
        drafter = preview.executor(store, settings, ctx, ledger)
        rendered = drafter.compose(template, reminder, basis.snapshot, today, Outcome())
    except words_preview.NothingToShow:
        return Shown(template, name, None, f"{name} owes nothing now: there is no reminder to show.")
    except CcmError as exc:
        return Shown(template, name, None, f"The template cannot be shown: {exc}")
    return Shown(template, name, rendered, "")


def read(conn: Connection, settings: Settings, tenant: Tenant, today: date) -> SettingsView:
    """Everything but the template preview (`show`, which reads the store itself)."""
    profile = load_profile(conn, tenant.id)
    sender, reply_to = profile.sender(settings.smtp)
    try:
        policies: PolicySet | None = load_policies(settings.tenant_dir(tenant.id) / POLICY_FILE)
        problem = ""
    except PolicyFileError as exc:
        policies, problem = None, str(exc)
    names = sorted(_emailed(policies))
    return SettingsView(
        profile, sender, reply_to, SendCalendar(tenant.timezone, tenant.country),
        get_standing(conn, tenant.id).chosen,
        firmmode.effective(conn, settings, tenant.id, today), policies, problem, tuple(names), None,
        digest.enabled(conn, tenant.id),
    )  # fmt: skip


def _emailed(policies: PolicySet | None) -> set[str]:
    """The templates the firm's policies send as ccm's own e-mail (not a call task, not the ledger's)."""
    found: set[str] = set()
    for p in policies.policies if policies else ():
        found |= {level.template for level in p.levels if level.channel == "email"}
        found |= {p.hold_template, p.old_debt_template}
    return found


def _profile_state(profile: FirmProfile) -> dict[str, Any]:
    return {k: v for k, v in asdict(profile).items() if k in PROFILE_FIELDS}


class SettingsPage:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def today(self, tenant: Tenant) -> date:
        return self.pages.rt.clock.now().astimezone(ZoneInfo(tenant.timezone)).date()

    async def get(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        template = request.query_params.get("template", "")[:100]
        wanted = request.query_params.get("customer", "")[:500]
        page = await run_in_threadpool(self._read, tenant, template, wanted)
        done = DONE.get(request.query_params.get("done", ""), "")
        return self.pages.render(request, visit, "settings.html", title=f"{tenant.name}: settings",
                                 tenant=tenant, s=page, modes=MODES, done=done,
                                 may_edit=user.role is Role.ADMIN)  # fmt: skip

    def _read(self, tenant: Tenant, template: str, wanted: str) -> SettingsView:
        rt, today = self.pages.rt, self.today(tenant)
        with rt.store.read() as conn:
            page = read(conn, rt.settings, tenant, today)
        if not (template and wanted):
            return page
        if template not in page.templates:
            why = f"{template!r} is not a template the firm's policies use."
            return replace(page, shown=Shown(template, wanted, None, why))
        ledger = approvals.preview_ledger(rt, tenant)  # pay links, within previews' share of the calls
        return replace(page, shown=show(rt.store, rt.settings, tenant, template, wanted, today, ledger))

    async def _admin_form(self, request: Request, visit: Visit, user: User) -> tuple[Tenant, dict[str, str]]:
        form = await self.pages.form_of(request, visit)
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        if user.role is not Role.ADMIN:
            raise RequestRefused(403, "Only an admin changes a firm's settings")
        return tenant, {k: v for k, v in form.items() if isinstance(v, str)}

    async def mode(self, request: Request, visit: Visit, user: User) -> Response:
        tenant, form = await self._admin_form(request, visit, user)
        wanted = form.get("mode", "")
        if wanted not in MODES:
            raise RequestRefused(400, f"mode: choose one of {', '.join(MODES)}")
        await run_in_threadpool(self._set_mode, user, tenant, None if wanted == "default" else wanted)
        return _back(tenant, "mode")

    def _set_mode(self, user: User, tenant: Tenant, mode: str | None) -> None:
        with self.pages.rt.store.begin() as conn:
            before = get_standing(conn, tenant.id).chosen
            set_mode(conn, tenant.id, mode)
            audit.write(conn, user.name, tenant.id, "settings.mode", self.pages.rt.real_now(),
                        {"mode": before}, {"mode": mode})  # fmt: skip

    async def profile(self, request: Request, visit: Visit, user: User) -> Response:
        tenant, form = await self._admin_form(request, visit, user)
        await run_in_threadpool(self._set_profile, user, tenant, form)
        return _back(tenant, "profile")

    def _set_profile(self, user: User, tenant: Tenant, form: dict[str, str]) -> None:
        with self.pages.rt.store.begin() as conn:
            before = load_profile(conn, tenant.id)
            values: dict[str, Any] = {k: form.get(k, "").strip() or None for k in PROFILE_FIELDS}
            after = replace(before, **values)
            try:
                save_profile(conn, tenant.id, after)
            except ProfileProblem as exc:
                raise RequestRefused(400, str(exc)) from None
            audit.write(conn, user.name, tenant.id, "settings.profile", self.pages.rt.real_now(),
                        _profile_state(before), _profile_state(load_profile(conn, tenant.id)))  # fmt: skip

    def routes(self) -> list[Route]:
        page = self.pages.page
        return [
            Route("/t/{tenant}/settings", page(self.get), methods=["GET"]),
            Route("/t/{tenant}/settings/mode", page(self.mode, post=True), methods=["POST"]),
            Route("/t/{tenant}/settings/profile", page(self.profile, post=True), methods=["POST"]),
        ]


def _back(tenant: Tenant, what: str) -> Response:
    target = f"/t/{quote(tenant.id)}/settings?{urlencode({'done': what})}"
    return RedirectResponse(target, status_code=303, headers=HEADERS)
