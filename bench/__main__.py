"""``python -m bench`` (``make bench``): every figure, one table.

::

    .venv/bin/python -m bench [--rapido] [--keep] [--json PATH]

In order, each in a fresh temp cluster or store:

1. :mod:`bench.tasa`: orders per second on one node, REST and GraphQL, with
   no peers and with two, next to a bare Starlette endpoint (needs ``wrk``);
2. :mod:`bench.lag`: write on node 1 to visible on nodes 2 and 3, at 100
   and 500 writes/s offered;
3. :mod:`bench.catchup`: a node that missed 20,000 and 100,000 orders,
   next to a bulk insert of the same rows;
4. :mod:`bench.lista`: a GraphQL list of 1,000 orders with clients and
   items, and the SQL statements it took;
5. :mod:`bench.derechos`: stock rights under a partition, and what a
   transfer costs.

Each row says figure, value, reference, target, met? — under the machine
(nproc, memory, CPU model, load average), the date and the exact command.
About four and a half minutes on a 2-core machine; ``--rapido`` skips the
100,000-order catch-up and shortens the rate runs (about two and a half).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench import catchup, comun, derechos, lag, lista, tasa


def main() -> int:
    a = argparse.ArgumentParser(prog="python -m bench", description="Every benchmark of pedidos, one table.")
    a.add_argument("--rapido", action="store_true", help="skip the 100,000-order catch-up; 5 s rate runs")
    a.add_argument("--keep", action="store_true", help="keep the temp folders (databases, node logs)")
    a.add_argument("--json", metavar="PATH", help="also write the raw figures there")
    args = a.parse_args()

    r: dict[str, Any] = {}
    r["tasa"] = comun.correr(tasa.medir(5 if args.rapido else 10, 16, args.keep))
    for t in (100, 500):
        r[f"lag_{t}"] = comun.correr(lag.medir(t, 10 * t, 20, 20, args.keep))
    for n in (20_000,) if args.rapido else (20_000, 100_000):
        r[f"catchup_{n}"] = comun.correr(catchup.medir(n, 200, False, 20, 20, args.keep))
    r["lista"] = comun.correr(lista.medir(1000, args.keep))
    r["derechos"] = comun.correr(derechos.medir(300, 200, args.keep))

    filas = [*tasa.filas(r["tasa"])]
    notas = [*tasa.notas(r["tasa"])]
    for clave in [k for k in r if k.startswith("lag_")]:
        filas += lag.filas(r[clave])
        notas += lag.notas(r[clave])
    for clave in [k for k in r if k.startswith("catchup_")]:
        filas += catchup.filas(r[clave])
        notas += catchup.notas(r[clave])
    catchups = [r[k] for k in r if k.startswith("catchup_")]
    if len(catchups) > 1:
        rss = [x["rss_mb"]["nodo2"] for x in catchups]
        filas.append(
            comun.Fila(
                "catch-up: node 2 peak RSS, 20,000 → 100,000 orders",
                " → ".join(f"{m:.0f} MiB" for m in rss),
                objetivo="not growing with N (within 25%)",
                cumple=max(rss) <= 1.25 * min(rss),
            )
        )
    filas += lista.filas(r["lista"]) + derechos.filas(r["derechos"])
    notas += derechos.notas(r["derechos"])
    comun.imprimir(filas, "pedidos: benchmarks", notas)
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
