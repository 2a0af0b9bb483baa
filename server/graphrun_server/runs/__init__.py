"""The run life cycle on one replica, one concern per module, behind `runner.GraphRunner`.

- state.py      an attempt (`ActiveRun`) and its states; every stop is a request to it
- local.py      the runs executing here, shared by the others; the replica's phase
- admission.py  record a submitted run and start it here when it can (checks.py: before recording)
- claims.py     claim runnable runs; keep their leases (storage/leases.py)
- execution.py  one attempt in the graph
- settling.py   record how the attempt ended: finished, handed back or lost
- stopping.py   every source of a stop (Cancel, NOTIFY, leases, fencing, watchdog, drain)
- fanout.py     store events as they come; follow a run wherever it executes
"""
