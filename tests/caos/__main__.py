"""``python -m tests.caos``: one run of the harness from the command line (``make soak``).

::

    python -m tests.caos --semilla 7 --duracion 300            # five minutes of faults on SQLite
    python -m tests.caos --semilla 3 --duracion 4 --faltas aislar,matar --nodos 3

Prints the plan and the table; exits 1 when the checker found a violation,
with the command that replays the plan. The nodes' folders (settings, logs,
databases) are kept under ``--carpeta`` (a fresh temporary folder by default).
MariaDB (``--backend mariadb``) needs ``PEDIDOS_TEST_MYSQL_URL``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from tests.bd import base_mysql_nueva
from tests.caos.corrida import Resultado, correr
from tests.caos.nemesis import TIPOS, generar
from tests.procesos import Cluster
from tests.proxy import Proxies


def _analizador() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tests.caos", description="Partition-and-heal run of a pedidos cluster.")
    p.add_argument("--semilla", type=int, default=int(time.time()) % 100_000, help="seed (default: from the time)")
    p.add_argument("--duracion", type=float, default=60.0, help="seconds of faults and load (default 60)")
    p.add_argument("--nodos", type=int, default=None, help="number of nodes (default: 3 or 4, drawn)")
    p.add_argument("--faltas", default="", help=f"fault kinds that must appear, comma-separated: {', '.join(TIPOS)}")
    p.add_argument("--backend", choices=("sqlite", "mariadb"), default="sqlite")
    p.add_argument("--carpeta", type=Path, default=None, help="where the nodes' files go")
    return p


async def _correr(args: argparse.Namespace) -> Resultado:
    tipos = [t for t in args.faltas.split(",") if t]
    plan = generar(args.semilla, args.duracion, tipos, args.nodos, args.backend)
    print(plan.describir(), flush=True)
    carpeta = args.carpeta or Path(tempfile.mkdtemp(prefix="pedidos-caos-"))
    proxies: Proxies = {}
    async with AsyncExitStack() as pila:
        creados: list[Cluster] = []

        async def crear(n: int) -> Cluster:
            bases = None
            if args.backend == "mariadb":
                bases = [await pila.enter_async_context(base_mysql_nueva()) for _ in range(n)]
            c = Cluster(carpeta / "cluster", n, databases=bases)
            creados.append(c)
            return c

        try:
            return await correr(plan, crear, proxies, carpeta)
        finally:
            for c in creados:
                await c.cerrar()
            await asyncio.gather(*(p.cerrar() for p in proxies.values()))
            print(f"nodes' files: {carpeta}", flush=True)


def main() -> int:
    args = _analizador().parse_args()
    inicio = time.monotonic()
    resultado = asyncio.run(_correr(args))
    print(resultado.informe.tabla())
    print(f"wall time {time.monotonic() - inicio:.0f} s")
    if not resultado.informe.valido:
        print(f"FAILED; replay with: {resultado.plan.repeticion()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
