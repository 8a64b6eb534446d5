"""``python -m bench.fusion``: where a merge's time goes, per change, in one process.

``bench.catchup`` times a whole node catching up; this splits the same work
into its steps, without processes, sockets or the interpreter lock shared
with an HTTP thread in the way:

1. a store ``nodo1`` gets ``--n`` orders written as ``bench.catchup`` writes
   them (what ``Dominio.crear_pedido`` declares, ``--por-tx`` per
   transaction);
2. a fresh store ``nodo2`` takes them as a peer link would, batch after
   batch: node 1 reads the batch it would send (``Almacen.lote_para``, the
   stored JSON), node 2 decodes the message (``json.loads``), checks every
   change (``sync.cambios.desde_json``) and merges it (``Almacen.fusionar``:
   the log, the stamps, the rows, the counters).

It prints the microseconds each step took per change, and how many of the
merge's were spent in the driver's ``execute``/``executemany`` (SQLite
itself).

::

    .venv/bin/python -m bench.fusion [--n 10000] [--por-tx 200] [--keep]
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from typing import Any

from bench import comun as c
from bench.catchup import _lote_de_pedidos
from servidor.almacen import Almacen
from servidor.almacen.crudo import Crudo
from servidor.dominio import Dominio
from sync import protocolo as p
from sync.cambios import desde_json

PASOS = ("leer", "decodificar", "validar", "fusionar")


class _Cronometro:
    """Adds up the time ``Crudo`` statements spend in the driver (SQLite itself, give or take a µs)."""

    segundos = 0.0

    def __enter__(self) -> _Cronometro:
        original = Crudo._correr

        def correr(crudo: Crudo, *args: Any, **kw: Any) -> None:
            t = time.perf_counter()
            try:
                original(crudo, *args, **kw)
            finally:
                self.segundos += time.perf_counter() - t

        self._original = original
        Crudo._correr = correr  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: Any) -> None:
        Crudo._correr = self._original  # type: ignore[method-assign]


async def medir(n: int, por_tx: int, conservar: bool) -> dict[str, Any]:
    carpeta, limpiar = c.carpeta_temporal(conservar)
    a = await Almacen.abrir(f"sqlite+aiosqlite:///{carpeta / 'nodo1.db'}", "nodo1")
    b = await Almacen.abrir(f"sqlite+aiosqlite:///{carpeta / 'nodo2.db'}", "nodo2")
    try:
        d = Dominio(a)
        ids_c = [(await d.crear_cliente({"nombre": f"C{i}", "email": f"c{i}@example.com"}))["id"] for i in range(20)]
        ids_p = [
            (await d.crear_producto({"nombre": f"P{i}", "precio": "4.50", "stock": 10**9}))["id"] for i in range(20)
        ]
        precios: dict[str, Decimal] = {x["id"]: x["precio"] for x in await d.listar_productos()}
        hechos = 0
        while hechos < n:
            cuantos = min(por_tx, n - hechos)
            await a.escribir(_lote_de_pedidos(a, hechos, cuantos, ids_c, ids_p, precios))
            hechos += cuantos

        t = dict.fromkeys(PASOS, 0.0)
        sqlite = 0.0
        cambios_total = lotes = 0
        inicio = time.perf_counter()
        while True:
            s = time.perf_counter()
            lote = await a.lote_para(b.vector, p.MAX_LOTE)
            if not lote:
                break
            texto = '{"tipo":"cambios","cambios":[' + ",".join(lote.textos) + "]}"
            t["leer"] += time.perf_counter() - s
            s = time.perf_counter()
            mensaje = json.loads(texto)
            t["decodificar"] += time.perf_counter() - s
            s = time.perf_counter()
            cambios = [desde_json(x) for x in mensaje["cambios"]]
            t["validar"] += time.perf_counter() - s
            s = time.perf_counter()
            with _Cronometro() as reloj:  # only node 2's statements run meanwhile
                hecho = await b.fusionar(cambios, validados=True)
            t["fusionar"] += time.perf_counter() - s
            sqlite += reloj.segundos
            cambios_total += len(hecho.aplicados)
            lotes += 1
        total = time.perf_counter() - inicio
        return {
            "n": n,
            "cambios": cambios_total,
            "lotes": lotes,
            "s": total,
            "us_por_cambio": {k: v * 1e6 / max(1, cambios_total) for k, v in t.items()},
            "us_sqlite_por_cambio": sqlite * 1e6 / max(1, cambios_total),
        }
    finally:
        await a.cerrar()
        await b.cerrar()
        limpiar()


def filas(r: dict[str, Any]) -> list[c.Fila]:
    u = r["us_por_cambio"]
    resto = u["fusionar"] - r["us_sqlite_por_cambio"]
    return [
        c.Fila(
            f"merge, in process: {r['cambios']:,} changes in {r['lotes']} batches",
            f"{r['cambios'] / r['s']:,.0f} changes/s",
            "one core, no sockets",
        ),
        c.Fila("merge: node 1 reads the batch it sends (stored JSON), per change", f"{u['leer']:.1f} µs"),
        c.Fila("merge: node 2 decodes the message, per change", f"{u['decodificar']:.1f} µs"),
        c.Fila("merge: node 2 checks every change against the vocabulary, per change", f"{u['validar']:.1f} µs"),
        c.Fila(
            "merge: node 2 applies it (Almacen.fusionar), per change",
            f"{u['fusionar']:.1f} µs",
            f"SQLite {r['us_sqlite_por_cambio']:.1f} µs, the rest {resto:.1f} µs",
        ),
    ]


def main() -> int:
    def argumentos(a: argparse.ArgumentParser) -> None:
        a.add_argument("--n", type=int, default=10_000, help="orders to merge (default 10000)")
        a.add_argument("--por-tx", type=int, default=200, help="orders per transaction when preparing (default 200)")

    return c.principal(
        "bench.fusion",
        "Where a merge's time goes, per change.",
        argumentos,
        lambda x: medir(x.n, x.por_tx, x.keep),
        "merge, step by step",
        filas,
    )


if __name__ == "__main__":
    raise SystemExit(main())
