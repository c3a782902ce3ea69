"""Settings: ccm.toml, then CCM_* environment variables over it, validated once at start.

A bad value stops ccm with one line naming where it came from and what is wrong, e.g.
`ccm.toml: sync.overlap_seconds: must be at least 0` or `CCM_LOG__LEVEL: must be one of debug, ...`.
Nested keys come from the environment with a double underscore: CCM_SYNC__OVERLAP_SECONDS=60.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.redact import is_secret_key, scrub

ENV_PREFIX = "CCM_"
# Environment variables that are not settings (they steer the CLI or the tests).
_NOT_SETTINGS = {"CCM_CONFIG", "CCM_HOME", "CCM_SCREENSHOTS", "CCM_XERO_SPECS"}
_NOT_SETTINGS_PREFIXES = ("CCM_TEST_", "CCM_BENCH_")  # the tests' and benches' own: CCM_TEST_DATABASE_URL...


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """$CCM_HOME, else $XDG_DATA_HOME/ccm, else ~/.local/share/ccm."""
    env = os.environ if env is None else env
    if home := env.get("CCM_HOME"):
        return Path(home).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "ccm"


class ConfigError(ValueError):
    """Settings are invalid; the message is one line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "warning"
    format: Literal["console", "json"] = "console"


class SyncSettings(_Section):
    overlap_seconds: int = Field(default=300, ge=0, le=86_400)


def check_ca_bundle(value: Path | None) -> Path | None:
    """`value` if it is None or a readable file, else ValueError with a one-line reason.

    Checked where the bundle is used (adapters' `verify`), not when settings load: a ccm.toml left pointing
    at a sandbox's CA that is gone must not stop `ccm log`, only what talks to that ledger.
    """
    if value is None:
        return None
    path = value.expanduser()
    if not path.exists():
        raise ValueError("no such file")
    if not path.is_file():
        raise ValueError("not a file")
    if not os.access(path, os.R_OK):
        raise ValueError("cannot read the file")
    return path


class SmtpSettings(_Section):
    """Where reminder e-mail goes out. Message-IDs derive from action keys, so a resend is recognisable."""

    host: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password: str | None = None
    from_address: str = "accounts@localhost"
    from_name: str | None = None
    reply_to: str | None = None
    timeout_seconds: float = Field(default=30, gt=0)
    allow_plaintext_auth: bool = False  # send AUTH over a connection without TLS (security = "none")


class CreditSettings(_Section):
    """Credit control: what exposure counts, and default limits per customer segment."""

    include_drafts: bool = False
    segment_limits: dict[str, str] = Field(default_factory=dict)  # e.g. {"Retail": "5000 GBP"}
    statutory_interest: Literal["off", "uk", "eu"] = "off"

    @field_validator("segment_limits")
    @classmethod
    def _amounts(cls, value: dict[str, str]) -> dict[str, str]:
        from connector.chasing import parse_amount  # the rules `ccm limit set` applies to a limit

        for segment, text in value.items():
            try:
                parse_amount(text, "XXX", zero=True)  # XXX stands in for the base currency
            except ValueError as exc:
                raise ValueError(f"{segment}: {exc}") from None
        return value


class ServeSettings(_Section):
    """`ccm serve`: the HTTP app (OAuth callbacks, webhooks, health, metrics) and the scheduler."""

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)  # the redirect URIs' port: the server takes the callbacks
    night_time: str = "02:00"  # each tenant's nightly run, local time (`ccm tenants set T --night-time`)
    workers: int = Field(default=4, ge=1, le=64)  # tenants run at once by one server
    mode: Literal["auto", "approve"] = "auto"  # approve: nightly reminders wait for `ccm outbox approve`
    # A newly connected firm's first nights run in approve mode: planned and shown, nothing sent and no hold
    # written until a person approves (`ccm outbox approve`); then the firm's own mode (`ccm tenants set T
    # --mode`), else `mode` above. 0: none. Also for `ccm run` without --dry-run / --approve.
    safe_nights: int = Field(default=3, ge=0, le=60)
    misfire_grace_hours: float = Field(default=20, gt=0, le=24)  # a night missed while down runs at start
    debounce_seconds: float = Field(default=5, ge=0, le=3600)  # quiet time after a webhook before syncing
    max_delay_seconds: float = Field(default=60, ge=0, le=86_400)  # a burst of webhooks waits no longer
    poll_minutes: int = Field(default=60, ge=0, le=1440)  # streams with no webhook events (Xero payments)
    retry_minutes: float = Field(default=30, gt=0, le=1440)  # a night that failed transiently runs again
    max_attempts: int = Field(default=3, ge=1, le=20)
    tick_seconds: float = Field(default=1.0, ge=0.05, le=60)  # how often the queue is looked at
    shutdown_seconds: float = Field(default=30, ge=0, le=3600)  # SIGTERM: how long running work may finish
    metrics_token: str | None = None  # bearer token for /metrics and /healthz details; None: /metrics open
    invite_hours: float = Field(default=72, gt=0, le=24 * 30)  # how long a `ccm invite` link stays valid
    clock: str = ""  # tests and demos only: a simulated clock "ORIGIN@ANCHORxSPEED" (connector/clock.py)

    @field_validator("night_time")
    @classmethod
    def _time_of_day(cls, value: str) -> str:
        return check_time_of_day(value)

    @field_validator("clock")
    @classmethod
    def _clock(cls, value: str) -> str:
        from connector.clock import Clock, ClockSpecError

        try:
            Clock.parse(value)
        except ClockSpecError as exc:
            raise ValueError(exc.reason) from None
        return value


class RatesSettings(_Section):
    """Central-bank reference rates for statutory interest (connector/reference_rates)."""

    refresh: bool = True  # `ccm serve` fetches them daily while credit.statutory_interest is on
    boe_url: str = "https://www.bankofengland.co.uk/boeapps/database/_iadb-fromshowcolumns.asp"
    ecb_url: str = "https://data-api.ecb.europa.eu/service/data/FM/D.U2.EUR.4F.KR.MRR_FR.LEV"


class HealthSettings(_Section):
    """Connection health: what counts as a problem worth telling the firm about (once)."""

    refresh_warn_days: int = Field(default=10, ge=1, le=90)  # an unused refresh token this close to dying
    reconsent_warn_days: int = Field(default=30, ge=1, le=365)  # a consent this close to its hard end
    day_limit_warn_percent: int = Field(default=10, ge=0, le=100)  # of the ledger's daily calls left
    notify: bool = True  # e-mail the firm's contact address when a problem first appears


class LimitsSettings(_Section):
    """Where the ledgers' rate limits are counted (connector/ratelimits): auto picks Redis when redis_url is
    set, else PostgreSQL when the store is, else memory (one process)."""

    backend: Literal["auto", "memory", "postgresql", "redis"] = "auto"
    redis_url: str | None = None  # e.g. redis://127.0.0.1:6379/0: every ccm process shares the limits there
    prefix: str = Field(default="ccm", min_length=1)  # keys' prefix (several ccm installations, one Redis)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> LimitsSettings:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("backend is redis but redis_url is not set")
        return self


def check_time_of_day(value: str) -> str:
    """`value` if it is a 24-hour HH:MM, else ValueError with a one-line reason."""
    parts = value.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError("must be a time of day HH:MM")
    if int(parts[0]) > 23 or int(parts[1]) > 59:
        raise ValueError("must be a time of day between 00:00 and 23:59")
    return value


class Settings(_Section):
    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    vault_key: str | None = None  # Fernet key for tokens at rest; default: <data_dir>/vault.key (0600)
    log: LogSettings = LogSettings()
    sync: SyncSettings = SyncSettings()
    # Each ledger's own section, its adapter's settings model (AdapterSpec.settings): `[ledgers.<name>]`, or
    # `[<name>]` (the older spelling, the same thing). Read them with `ledger(name)`; `settings.<name>` works
    # too. Sections not given are the model's defaults, made when asked for.
    ledgers: dict[str, SerializeAsAny[BaseModel]] = Field(default_factory=dict)
    smtp: SmtpSettings = SmtpSettings()
    credit: CreditSettings = CreditSettings()
    serve: ServeSettings = ServeSettings()
    health: HealthSettings = HealthSettings()
    rates: RatesSettings = RatesSettings()
    limits: LimitsSettings = LimitsSettings()

    @model_validator(mode="before")
    @classmethod
    def _ledger_sections(cls, data: Any) -> Any:
        """`[<name>]` of a registered ledger is `[ledgers.<name>]`; each section becomes its adapter's."""
        if not isinstance(data, dict):
            return data
        try:
            return ledger_sections(data)
        except LedgerSectionError as exc:
            raise ValueError(f"{'.'.join(exc.loc)}: {exc.problem}") from None

    def ledger(self, name: str) -> BaseModel:
        """The settings of ledger `name`, as its adapter's settings model (its defaults when none were given).

        Raises:
            UnknownLedger: No adapter is registered as `name`.
            ConfigError: The adapter has no settings.
        """
        found = self.ledgers.get(name)
        if found is not None:
            return found
        from connector import ledger as registry

        model = registry.get(name).settings
        if model is None:
            raise ConfigError(f"ledgers.{name}: the {name} adapter has no settings")
        made = model()
        self.ledgers[name] = made  # the defaults, made once (the dict is this object's own)
        return made

    @model_validator(mode="after")
    def _limits_backend(self) -> Settings:
        url = self.database_url or ""
        if self.limits.backend == "postgresql" and not url.startswith(("postgresql", "postgres")):
            raise ValueError("limits.backend is postgresql but database_url is not a PostgreSQL URL")
        return self

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        path = value.expanduser()
        if path.exists() and not path.is_dir():
            raise ValueError("not a folder (it is a file)")
        return path

    @field_validator("vault_key")
    @classmethod
    def _vault_key(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from cryptography.fernet import Fernet

        try:
            Fernet(value.encode())
        except (ValueError, UnicodeEncodeError):
            raise ValueError("not a valid vault key (32 url-safe base64-encoded bytes)") from None
        return value

    @property
    def db_url(self) -> str:
        """The database to use: database_url, else the SQLite file in data_dir.

        For the latter, data_dir is made private (0700) or tightened first, with the database files in it
        (0600): asking for the URL is the step before opening it. The path is escaped in the URL, so a
        data_dir with `?`, `%` or `#` in it opens exactly data_dir/ccm.db.
        """
        if self.database_url:
            return self.database_url
        from connector.store.engine import default_url, secure_data_dir

        try:
            return default_url(secure_data_dir(self.data_dir))
        except OSError as exc:  # a parent that is a file, no permission: a setting to fix, not a crash
            raise ConfigError(f"data_dir: cannot use {str(self.data_dir)!r}: {exc.strerror or exc}") from None

    def tenant_dir(self, tenant_id: str) -> Path:
        """Per-tenant files (mapping overrides, policies, templates) live here."""
        return self.data_dir / "tenants" / tenant_id


class LedgerSectionError(ValueError):
    """A ledger's section is invalid: `loc` is the key path as written, `problem` what is wrong."""

    def __init__(self, loc: tuple[str, ...], problem: str, value: Any = None) -> None:
        super().__init__(f"{'.'.join(loc)}: {problem}")
        self.loc = loc
        self.problem = problem
        self.value = value


def ledger_sections(data: dict[str, Any]) -> dict[str, Any]:
    """`data` (raw settings) with every ledger's section under `ledgers`, each its adapter's model.

    A top-level key naming a registered ledger (`xero`) is moved under `ledgers` (the older spelling); given
    both ways, `[ledgers.<name>]`'s keys win over `[<name>]`'s.

    Raises:
        LedgerSectionError: A section names no registered ledger, or a value is invalid; `loc` says the key
            as the user wrote it (`ledgers.xero.day_limit` or `xero.day_limit`).
    """
    from connector import ledger as registry

    fields = Settings.model_fields
    legacy = [key for key in data if key not in fields]
    given = data.get("ledgers") or {}
    if not legacy and not given:
        return data
    if not isinstance(given, dict):
        raise LedgerSectionError(("ledgers",), "must be a table of ledgers' settings")
    known = registry.names()
    out = dict(data)
    raw: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for key in legacy:
        if key in known and isinstance(out[key], dict | BaseModel):
            raw[key] = (_as_dict(out.pop(key)), {})
    for name, section in given.items():
        if name not in known:
            try:
                registry.get(name)  # one installed since the last look is found too
            except registry.UnknownLedger:
                listed = ", ".join(registry.names()) or "none"
                raise LedgerSectionError(
                    ("ledgers", name), f"no adapter registered for this ledger (known: {listed})"
                ) from None
        raw[name] = (raw.get(name, ({}, {}))[0], section)
    ledgers: dict[str, BaseModel] = {}
    for name, (old, new) in raw.items():
        model = registry.get(name).settings
        if model is None:
            raise LedgerSectionError(("ledgers", name), "this ledger's adapter has no settings")
        if isinstance(new, model) and not old:
            ledgers[name] = new
            continue
        merged = {**old, **_as_dict(new)} if isinstance(new, dict | BaseModel) else new
        try:
            ledgers[name] = model.model_validate(merged)
        except ValidationError as exc:
            error = exc.errors()[0]
            inner = tuple(str(p) for p in error["loc"])
            in_old = bool(old) and (not inner or inner[0] in old)
            in_new = isinstance(new, dict) and bool(inner) and inner[0] in new
            spelt = (name,) if in_old and not in_new else ("ledgers", name)
            raise LedgerSectionError((*spelt, *inner), problem(error), error.get("input")) from None
    out["ledgers"] = ledgers
    return out


def _as_dict(section: Any) -> Any:
    """A section given as a model instance, as the values it was given (so keys set both ways merge)."""
    if isinstance(section, BaseModel):
        return section.model_dump(exclude_unset=True)
    return section


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        byte = exc.object[exc.start]
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{byte:02x} at offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    values: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        if name.startswith(_NOT_SETTINGS_PREFIXES):
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{name}: conflicts with another CCM_ variable")
        node[path[-1]] = value
        origins[path] = name
    return values, origins


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
        )
    return out


def problem(error: Mapping[str, Any]) -> str:
    """One pydantic error as the words after "where: " (also for the rules files, connector/yamlfile.py)."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown setting"
    if kind == "value_error":
        return str(error["ctx"]["error"])
    if kind == "literal_error":
        return "must be one of " + error["ctx"]["expected"].replace("'", "")
    if kind == "greater_than_equal":
        return f"must be at least {error['ctx']['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {error['ctx']['le']}"
    return str(error["msg"]).replace("Input should be", "must be").lower()


def config_path(explicit: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The settings file: --config, else $CCM_CONFIG, else ./ccm.toml if present."""
    env = os.environ if env is None else env
    if explicit is not None:
        return explicit
    if env.get("CCM_CONFIG"):
        return Path(env["CCM_CONFIG"])
    local = Path("ccm.toml")
    return local if local.exists() else None


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate settings. Raises ConfigError with one line."""
    env = os.environ if env is None else env
    file_values = _read_toml(path) if path is not None else {}
    env_values, origins = _from_env(env)
    merged = _merge(file_values, env_values)
    merged.setdefault("data_dir", default_data_dir(env))
    try:
        merged = ledger_sections(merged)
    except LedgerSectionError as exc:
        raise ConfigError(
            _where(exc.loc, origins, path) + f"{exc.problem}{_shown(exc.loc, exc.value)}"
        ) from None
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(str(p) for p in error["loc"])
        raise ConfigError(
            _where(loc, origins, path) + f"{problem(error)}{_shown(loc, error.get('input'))}"
        ) from None


def _where(loc: tuple[str, ...], origins: Mapping[tuple[str, ...], str], path: Path | None) -> str:
    """Where a bad value came from: its environment variable, else the file and the key path."""
    source = origins.get(loc) or next((o for p, o in origins.items() if loc[: len(p)] == p), None)
    dotted = f": {'.'.join(loc)}" if loc else ""  # a rule across sections names its keys itself
    return f"{source}: " if source else f"{path or 'settings'}{dotted}: "


def _shown(loc: tuple[str, ...], value: Any) -> str:
    """The offending value, unless it is (or may hold) a secret."""
    hidden = any(is_secret_key(p) or p.endswith(("_url", "_key")) for p in loc)  # vault_key, webhook_key
    if not isinstance(value, str | int | float) or hidden:
        return ""
    return f" (got {scrub(value)!r})" if isinstance(value, str) else f" (got {value})"
