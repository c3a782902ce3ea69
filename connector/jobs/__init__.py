"""ccm's background work: one set of task functions, two executors.

- `tasks`: what a job does for one firm (its night, a requested sync, its due sends) and the sweep that
  finds work the schedule or a crash left behind. Each wraps connector/serve/work.py and never raises for a
  firm's own problems.
- `executor`: the small interface `ccm serve`, the webhooks and the CLI use to ask for work
  (`defer_night`, `request_sync`, `sends_due`), and `InProcess`, the SQLite executor: the in-process
  dispatcher of connector/serve/dispatch.py, one process, nothing else to run.
- `engine`: the PostgreSQL executor on procrastinate (jobs in ccm's own database, a lock per firm, a
  queueing lock per requested sync and per night, stalled-job recovery) and its task registrations.
- `worker`: a procrastinate worker, run by `ccm worker` or embedded in `ccm serve`.

Invariants whichever executor runs them: never two jobs of one firm at once (procrastinate's `firm:<id>`
lock; the in-process dispatcher's busy set; the run lease under both), each firm's night of a local date runs
once (the `nights` table decides), what is sent is decided by the outbox's keys.
"""
