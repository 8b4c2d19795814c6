"""Job plumbing every app may use: cron expressions and handing a recorded run to a worker.

The lowest layer (below ``audit``): it imports no app, so the audit log's own
rotation runs can be dispatched and scheduled the way GC, retention and
replication runs are, from one implementation.
"""
