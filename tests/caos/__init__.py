"""A partition-and-heal harness in the manner of Jepsen and Maelstrom.

Real node processes on loopback, every directed link behind a
fault-injecting proxy; a seeded schedule of faults (``nemesis``), a random
workload of concurrent clients (``carga``), photos of every node's database
once the cluster heals (``foto``), and a checker of the invariants of
``docs/DESIGN.md`` (``verificador``). ``corrida`` ties a run together;
``python -m tests.caos`` runs one from the command line (``make soak``);
``sabotaje`` starts nodes broken on purpose, to prove that the checker sees
what it should.
"""
