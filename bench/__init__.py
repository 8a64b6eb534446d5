"""Benchmarks that print figures: replication lag and catch-up; never timed assertions in tests.

Run from the repository root with the project's interpreter::

    .venv/bin/python -m bench                      # both, defaults, one table (~1 min)
    .venv/bin/python -m bench.lag --rate 500       # replication lag only
    .venv/bin/python -m bench.catchup --n 20000    # catch-up of a stopped node only

Every benchmark starts real node processes (``python -m servidor --config …
--node …``) on free loopback ports, each with a SQLite file in a temporary
folder (``--keep`` keeps it, with the nodes' logs), through the helpers of
``tests/procesos.py``.

- :mod:`bench.lag`: three nodes; orders written on node 1 at a fixed offered
  rate (open loop, :mod:`bench.carga`); per write, the time from its
  acknowledgement to its visibility on nodes 2 and 3, as seen by a separate
  observer process that is pushed every committed change (:mod:`bench.observador`).
- :mod:`bench.catchup`: node 2 stopped while N orders are written on node 1;
  then node 2 is started and timed until its version vector equals node 1's;
  next to it the raw bulk-insert rate of the same change rows (the store's
  ceiling) and the quoted cr-sqlite figure.
- :mod:`bench.comun`: the machine, percentiles, the table, cluster helpers.
"""
