"""``python -m bench``: the lag, catch-up and escrow benchmarks with their defaults, one table.

::

    .venv/bin/python -m bench [--rate 100] [--n-lag 1000] [--n-catchup 20000] [--keep] [--json PATH]

Runs :mod:`bench.lag`, :mod:`bench.catchup` and :mod:`bench.derechos` (each
in a fresh temp cluster) and prints one table: figure, value, reference,
target, met? — under the machine (nproc, memory, CPU model, load average),
the date and the exact command. About two minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench import catchup, comun, derechos, lag


def main() -> int:
    a = argparse.ArgumentParser(prog="python -m bench", description="Replication lag and catch-up figures.")
    a.add_argument("--rate", type=float, default=lag.TASA_OBJETIVO, help="lag: offered writes/s (default 100)")
    a.add_argument("--n-lag", type=int, default=1000, help="lag: orders written (default 1000)")
    a.add_argument("--n-catchup", type=int, default=20_000, help="catch-up: orders missed by node 2 (default 20000)")
    a.add_argument("--keep", action="store_true", help="keep the temp folders (databases, node logs)")
    a.add_argument("--json", metavar="PATH", help="also write the raw figures there")
    args = a.parse_args()

    r_lag = comun.correr(lag.medir(args.rate, args.n_lag, 20, 20, args.keep))
    r_cu = comun.correr(catchup.medir(args.n_catchup, 200, False, 20, 20, args.keep))
    r_de = comun.correr(derechos.medir(300, 200, args.keep))
    comun.imprimir(
        [*lag.filas(r_lag), *catchup.filas(r_cu), *derechos.filas(r_de)],
        "pedidos: replication benchmarks",
        [*lag.notas(r_lag), *catchup.notas(r_cu), *derechos.notas(r_de)],
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"lag": r_lag, "catchup": r_cu, "derechos": r_de}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
