"""The states ccm stores are StrEnums whose values are exactly what the columns held before they were enums:
rows written earlier read back as members, and what is written now is the same plain text."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from connector import nightreport
from connector.nightreport import RanFrom, Report, ReportOutcome
from connector.outbox import Mode
from connector.serve import nights
from connector.serve.nights import NightState
from connector.store import Store, synclog
from connector.store.schema import night_reports, sync_runs
from connector.store.schema import nights as nights_table
from connector.store.synclog import SyncOutcome

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
NIGHT = date(2026, 11, 2)


def test_the_values_are_the_stored_texts():
    assert [o.value for o in SyncOutcome] == ["running", "ok", "partial", "failed", "interrupted"]
    assert [s.value for s in NightState] == [
        "due",
        "running",
        "retry",
        "crashed",
        "done",
        "failed",
        "superseded",
    ]
    assert [o.value for o in ReportOutcome] == ["done", "stopped", "failed", "crashed"]
    assert [r.value for r in RanFrom] == ["serve", "cli"]
    assert nights.OPEN == ("due", "running", "retry", "crashed") and nights.WAITING == ("retry", "crashed")


def test_only_ok_and_partial_runs_read_every_stream():
    assert [o for o in SyncOutcome if o.read_all] == [SyncOutcome.OK, SyncOutcome.PARTIAL]


def test_a_sync_run_stores_text_and_reads_back_its_outcome(store: Store):
    with store.begin() as conn:
        run_id = synclog.start_run(conn, "acme", "incremental", NOW, trigger="cli")
        running = synclog.get_run(conn, run_id)
        synclog.finish_run(conn, "acme", run_id, SyncOutcome.PARTIAL, "1 record(s) could not be mapped", NOW)
        stored = conn.execute(select(sync_runs.c.outcome).where(sync_runs.c.run_id == run_id)).scalar_one()
        run = synclog.get_run(conn, run_id)
        failed_only = synclog.runs(conn, "acme", failed_only=True)
    assert running is not None and running.outcome is SyncOutcome.RUNNING
    assert type(stored) is str and stored == "partial"
    assert run is not None and run.outcome is SyncOutcome.PARTIAL
    assert [r.run_id for r in failed_only] == [run_id]


def test_a_night_stores_text_and_reads_back_its_state(store: Store):
    with store.begin() as conn:
        nights.mark_due(conn, "acme", NIGHT, NOW)
        [due] = nights.claimable(conn, NOW, NOW)
        nights.claim(conn, "acme", NIGHT, "me", NOW)
        nights.finish(conn, "acme", NIGHT, "me", NightState.RETRY, "503s", NOW, NOW + timedelta(minutes=30))
        stored = conn.execute(select(nights_table.c.state)).scalar_one()
        [night] = nights.recent(conn, "acme")
        latest = nights.latest_per_tenant(conn)["acme"]
    assert due.state is NightState.DUE
    assert type(stored) is str and stored == "retry"
    assert night.state is NightState.RETRY and latest.state is NightState.RETRY


def test_a_night_report_stores_text_and_reads_back_its_kinds(store: Store):
    report = Report("acme", NIGHT, RanFrom.CLI, Mode.DRY_RUN, ReportOutcome.STOPPED, NOW, NOW, "stopped: why",
                    (("stopped", ("why",)),))  # fmt: skip
    with store.begin() as conn:
        report_id = nightreport.save(conn, report)
        stored = conn.execute(
            select(night_reports.c.ran_from, night_reports.c.mode, night_reports.c.outcome)
        ).one()
        back = nightreport.one(conn, report_id)
    assert tuple(stored) == ("cli", "dry-run", "stopped") and all(type(v) is str for v in stored)
    assert back is not None
    assert (back.ran_from, back.mode, back.outcome) == (RanFrom.CLI, Mode.DRY_RUN, ReportOutcome.STOPPED)
    assert isinstance(back.ran_from, RanFrom) and isinstance(back.mode, Mode)
    assert isinstance(back.outcome, ReportOutcome)
