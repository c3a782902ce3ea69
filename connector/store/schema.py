"""Tables: every table of tenant data carries `tenant_id`, and every key starts with it.

Nothing is shared across tenants. A few tables belong to the running servers, not to a tenant: `servers`
(who is alive, with its URL and clock) and `oauth_states` (connect flows in progress). The scheduler keeps its
jobs in memory (migration 0018 dropped `apscheduler_jobs`); procrastinate's tables on PostgreSQL are its own
(connector/jobs/schema.py, migration 0017) and not described here.

The Alembic migrations in `migrations/versions/` create exactly these; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from connector.store.types import RATE_SCALE, ScaledDecimal, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = String(255)
Money = ScaledDecimal
Rate = ScaledDecimal(RATE_SCALE)

tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("ledger", String(64), nullable=False),
    Column("base_currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("country", String(2), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("night_time", String(5)),  # HH:MM local; None: serve.night_time
    Column("contact_email", String(320)),  # where connection-health notices go
    # Safe first nights (connector/firmmode.py): the mode a person chose for the firm (None: serve.mode after
    # its safe nights), when it was connected to its current organisation (None: before ccm had safe nights),
    # and the nights run since, counted once per local date.
    Column("mode", String(16)),  # auto | approve | dry-run
    Column("connected_at", UTCDateTime()),
    Column("nights_run", Integer, nullable=False, server_default="0"),
    Column("last_night", Date),
)

connections = Table(
    "connections",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    Column("ledger", String(64), nullable=False),
    Column("external_id", Id, nullable=False),
    Column("state", String(32), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One row per consent (grant): the Fernet-encrypted token set; expiries in clear for connection-health checks.
# Tenants connected by one consent (a bookkeeper's Xero login reaching many organisations) share its row, so a
# refresh writes one row however many tenants it serves; a tenant connected alone is its own grant (the
# grant id is then the tenant's id). Migration 0019 moved the tokens here from one copy per tenant.
oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("grant_id", Id, primary_key=True),
    Column("ciphertext", Text, nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("refresh_expires_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),  # when these tokens were issued (last refreshed)
)

# One row per connected tenant: which grant's tokens it uses.
oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("grant_id", Id, ForeignKey("oauth_grants.grant_id"), nullable=False),
    Index(None, "grant_id"),
)

customers = Table(
    "customers",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("id", Id, primary_key=True),
    Column("name", String(500), nullable=False),
    Column("status", String(16), nullable=False),
    Column("email", String(500)),
    Column("currency", String(3)),
    Column("segments", JSON, nullable=False),
    Column("merged_into", Id),
    Column("updated_at", UTCDateTime()),
    # The ledger's own balance of the customer, in its currency (None: not reported). Migration 0010.
    Column("ledger_balance", Money()),
    # A number to call, dialable as written (None: the ledger has none). Migration 0016.
    Column("phone", String(100)),
)

invoices = Table(
    "invoices",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, nullable=False),
    Column("number", String(255)),
    Column("currency", String(3), nullable=False),
    Column("total", Money(), nullable=False),
    Column("amount_due", Money(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("due_date", Date),
    Column("currency_rate", Rate),
    Column("updated_at", UTCDateTime()),
    Index(None, "tenant_id", "customer_id"),
)

credit_notes = Table(
    "credit_notes",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("id", Id, primary_key=True),
    Column("customer_id", Id, nullable=False),
    Column("number", String(255)),
    Column("currency", String(3), nullable=False),
    Column("total", Money(), nullable=False),
    Column("remaining", Money(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issue_date", Date, nullable=False),
    Column("currency_rate", Rate),
    Column("updated_at", UTCDateTime()),
    Index(None, "tenant_id", "customer_id"),
)

payments = Table(
    "payments",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("id", Id, primary_key=True),
    Column("customer_id", Id),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("unapplied", Money(), nullable=False),
    Column("date", Date, nullable=False),
    Column("reference", String(500)),
    Column("currency_rate", Rate),
    Column("updated_at", UTCDateTime()),
    Index(None, "tenant_id", "customer_id"),
)

# Children of a payment or credit note, replaced whole whenever their source changes.
allocations = Table(
    "allocations",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("source_kind", String(16), primary_key=True),
    Column("source_id", Id, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("invoice_id", Id, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount", Money(), nullable=False),
    Column("date", Date),
    Index(None, "tenant_id", "invoice_id"),
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("run_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(16), nullable=False),
    Column("counts", JSON, nullable=False),
    Column("api_calls", Integer, nullable=False, default=0),
    Column("error_summary", Text),
    Column("trigger", String(16)),  # what started it: cli, night, webhook, poll, now, send
    Index(None, "tenant_id", "started_at"),
)

sync_changes = Table(
    "sync_changes",
    metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("sync_runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", Id, nullable=False),
    Column("stream", String(64), nullable=False),
    Column("entity", String(16), nullable=False),
    Column("record_id", Id, nullable=False),
    Column("op", String(8), nullable=False),
    Column("fields", JSON, nullable=False),
    Index(None, "tenant_id", "run_id"),
)

sync_errors = Table(
    "sync_errors",
    metadata,
    Column("error_id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", Integer, ForeignKey("sync_runs.run_id", ondelete="CASCADE"), nullable=False),
    Column("tenant_id", Id, nullable=False),
    Column("stream", String(64), nullable=False),
    Column("record_id", Id),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index(None, "tenant_id", "run_id"),
)

# The outbox: every side effect ccm plans (a reminder, a ledger note, a hold), keyed deterministically so
# planning twice yields one row; its state machine makes execution at most once (see connector/outbox.py).
outbox = Table(
    "outbox",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("state", String(24), nullable=False),
    Column("replay_safe", Boolean, nullable=False),
    Column("planned_at", UTCDateTime(), nullable=False),
    Column("send_after", UTCDateTime(), nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_at", UTCDateTime()),
    Column("attempts", Integer, nullable=False),
    Column("result", Text),
    Column("reason", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "tenant_id", "state", "send_after"),
)

# Which reminder level each invoice has had, written in the same transaction that marks the reminder sent.
reminder_history = Table(
    "reminder_history",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("invoice_id", Id, primary_key=True),
    Column("level", Integer, primary_key=True),
    Column("customer_id", Id, nullable=False),
    Column("sent_on", Date, nullable=False),
    Column("action_key", String(128), nullable=False),
    Index(None, "tenant_id", "customer_id"),
)

# What people decided about chasing a customer: their own policy, do-not-chase, never-hold, a pause.
customer_settings = Table(
    "customer_settings",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("customer_id", Id, primary_key=True),
    Column("policy", String(128)),
    Column("do_not_chase", Boolean, nullable=False),
    Column("never_hold", Boolean, nullable=False),
    Column("paused_until", Date),
    Column("manual_hold", Boolean, nullable=False, server_default="0"),
    Column("manual_hold_reason", Text),
    Column("business", Boolean, nullable=False, server_default="1"),  # B2B: statutory interest may apply
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Disputes, promises to pay and payment plans, each with its own life span; closed ones stay as history.
chasing_events = Table(
    "chasing_events",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("invoice_id", Id),
    Column("kind", String(16), nullable=False),  # dispute | promise | plan
    Column("until", Date),
    Column("amount", Money()),
    Column("currency", String(3)),
    Column("note", Text, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("closed_at", UTCDateTime()),
    Column("outcome", String(32)),
    Index(None, "tenant_id", "customer_id"),
)

# One holder at a time per tenant for a run, across processes; a lease its dead holder cannot renew expires.
run_leases = Table(
    "run_leases",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("acquired_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# ccm owns credit limits: neither Xero nor QuickBooks has a field for them.
credit_limits = Table(
    "credit_limits",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("customer_id", Id, primary_key=True),
    Column("amount", Money(), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("source", String(16), nullable=False),  # set | import
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Holds as applied in the ledger (group membership on Xero, a Notes marker on QuickBooks).
credit_holds = Table(
    "credit_holds",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("customer_id", Id, primary_key=True),
    Column("on_hold", Boolean, nullable=False),
    Column("source", String(16), nullable=False),  # rule | manual
    Column("reason", Text, nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("action_key", String(128), nullable=False),
)

# One row per tenant and local night that `ccm serve` scheduled: the claim that makes a night run once,
# across restarts and across servers sharing the database (see connector/serve/nights.py).
nights = Table(
    "nights",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("night", Date, primary_key=True),  # the tenant's local date of the scheduled run
    Column("state", String(16), nullable=False),  # due | running | retry | done | failed | superseded
    Column("due_at", UTCDateTime(), nullable=False),
    Column("not_before", UTCDateTime()),
    Column("holder", String(128)),
    Column("attempts", Integer, nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("summary", Text),
    Index(None, "state", "not_before"),
)

# What each tenant's night did, in the bookkeeper's words: one row per run of the night, from `ccm serve` or
# `ccm run` (see connector/nightreport.py); `ccm nights` and the bookkeeper's pages show them.
night_reports = Table(
    "night_reports",
    metadata,
    Column("report_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("night", Date, nullable=False),  # the tenant's local date the run began on
    Column("ran_from", String(16), nullable=False),  # serve | cli
    Column("mode", String(16), nullable=False),  # auto | approve | dry-run
    Column("outcome", String(16), nullable=False),  # done | stopped | failed | crashed
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("headline", Text, nullable=False),
    Column("body", JSON, nullable=False),  # the report's sections: [[title, [line, ...]], ...]
    Index(None, "tenant_id", "night"),
)

# Incremental syncs asked for by webhooks, `ccm sync --now` and polling; a server debounces them per tenant.
sync_requests = Table(
    "sync_requests",
    metadata,
    Column("request_id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_id", Id, nullable=False),
    Column("stream", String(64)),  # None: every stream
    Column("reason", String(16), nullable=False),  # webhook | now | poll
    Column("requested_at", UTCDateTime(), nullable=False),  # real time: debouncing is about real bursts
    Index(None, "tenant_id", "request_id"),
)

# Connection health problems, open until they clear; the notice to the firm goes out once per appearance.
health_issues = Table(
    "health_issues",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("message", Text, nullable=False),
    Column("first_seen", UTCDateTime(), nullable=False),
    Column("last_seen", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("notice_key", String(128)),  # the outbox action that tells the firm (None: not yet planned)
)

# Servers alive now (each renews its row); `ccm sync --now` and `ccm schedule` read it.
servers = Table(
    "servers",
    metadata,
    Column("server_id", String(128), primary_key=True),
    Column("url", String(255), nullable=False),
    Column("clock", String(128), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("heartbeat_at", UTCDateTime(), nullable=False),
)

# Connect flows begun on the server and not finished yet: the PKCE verifier, the tenant's details and, while
# the person picks Xero organisations, the tokens; encrypted with the vault key.
oauth_states = Table(
    "oauth_states",
    metadata,
    Column("state", String(64), primary_key=True),
    Column("ledger", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

# Connect links an operator made (`ccm invite`): only their SHA-256 is kept, so the database holds no usable
# link. Single use: `used_at` is set by the connection they made; a tenant that does not exist yet is created
# from `tenant` (the details the operator gave), never from what the link's holder types.
invites = Table(
    "invites",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("tenant_id", Id, nullable=False),
    Column("ledger", String(64), nullable=False),
    Column("tenant", JSON),  # the new tenant's details; None: the tenant exists and keeps its own
    Column("created_by", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime()),
    Index(None, "tenant_id"),
)

# A firm's profile (connector/firmprofile.py): who its reminders come from, its legal footer, its locale and
# how its customers pay it by bank transfer. One row per tenant; no row: every field empty (server defaults).
firm_profiles = Table(
    "firm_profiles",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    Column("from_name", String(255)),
    Column("from_address", String(320)),
    Column("reply_to", String(320)),
    Column("signature", Text),
    Column("company_number", String(255)),
    Column("registered_office", Text),
    Column("locale", String(16)),  # None: derived from the tenant's country
    Column("pay_account_name", String(255)),  # None: no bank transfer details
    Column("pay_sort_code", String(8)),
    Column("pay_account_number", String(8)),
    Column("pay_iban", String(64)),
    Column("pay_bic", String(11)),
    Column("pay_reference", Text),
    Column("statements", Boolean, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime(), nullable=False),
)

RECORD_TABLES = {
    "customer": customers,
    "invoice": invoices,
    "credit_note": credit_notes,
    "payment": payments,
}


# Central-bank reference rates as their official sources last answered (connector/reference_rates): one row
# per observation, all rows of a source replaced by each successful fetch (`fetched_at` is that fetch).
# Not tenant data: every tenant's statutory interest reads them, merged over the shipped table.
reference_rates = Table(
    "reference_rates",
    metadata,
    Column("source", String(32), primary_key=True),  # the series: boe_base_rate | ecb_mro_rate
    Column("effective_date", Date, primary_key=True),
    Column("rate", Rate, nullable=False),  # percent
    Column("fetched_at", UTCDateTime(), nullable=False),
)


# The bookkeeper's pages (connector/web): people who sign in to `ccm serve`, with their role and the firms
# granted to them, and every change made through the pages. Only an argon2 hash of a password is kept.
web_users = Table(
    "web_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(16), nullable=False),  # admin | bookkeeper | viewer
    Column("all_tenants", Boolean, nullable=False, server_default="0"),  # every firm, present and future
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("password_changed_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime()),
)

web_grants = Table(
    "web_grants",
    metadata,
    Column("user_name", String(64), ForeignKey("web_users.name", ondelete="CASCADE"), primary_key=True),
    Column("tenant_id", Id, primary_key=True),
)

# Who changed what through the pages (or `ccm users`), when, in which firm, with the record before and after.
web_audit = Table(
    "web_audit",
    metadata,
    Column("audit_id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("who", String(64), nullable=False),
    Column("tenant_id", Id),  # None: not about one firm (a user added, say)
    Column("what", String(255), nullable=False),
    Column("before", JSON),
    Column("after", JSON),
    Index(None, "tenant_id", "at"),
)

# Migration 0015. What came of each call task (connector/calls.py): the outcome a person recorded, and the
# chasing event it opened (a promise or a dispute), if any. One row per call task (recorded again: replaced).
call_outcomes = Table(
    "call_outcomes",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("key", String(128), primary_key=True),  # the call task's outbox key
    Column("customer_id", Id, nullable=False),
    Column("outcome", String(16), nullable=False),  # promise | dispute | no-answer | paid
    Column("note", Text, nullable=False),
    Column("until", Date),
    Column("amount", Money()),
    Column("currency", String(3)),
    Column("event_id", Integer),  # the chasing_events row it opened
    Column("recorded_by", String(64), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Index(None, "tenant_id", "customer_id"),
)

# Migration 0015. Actions awaiting approval a person put aside until a time (connector/snooze.py): off the
# approvals list until then, and never sent before it (their send_after is moved with the snooze).
outbox_snoozes = Table(
    "outbox_snoozes",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("until", UTCDateTime(), nullable=False),
    Column("by", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
)

# Migration 0015. Firms that asked for the morning digest e-mail (connector/digest.py); no row: off.
morning_digests = Table(
    "morning_digests",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.tenant_id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
