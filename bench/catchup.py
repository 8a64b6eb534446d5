"""Catch-up: how fast a node that was down merges what it missed.

``python -m bench.catchup [--n 20000] [--por-tx 200] [--dominio] [--keep]``

1. Three node processes on loopback (SQLite); a catalogue created on node 1
   and synced to all three. Then every node is stopped: node 2 is the one
   that will catch up; node 3 stays down so that node 1 is its only source
   and the two processes have the two cores to themselves.
2. ``--n`` orders are written into node 1's database in this process,
   through ``Almacen.escribir`` (the one write path: stamping, ``apply``, the
   change log). The first goes through ``Dominio.crear_pedido``; the others
   declare exactly the changes it declared (six order fields, then node 1's
   stock entry with its new total), ``--por-tx`` orders per transaction, so
   the log node 2 must merge is change for change what ``--n`` API orders
   make, without ``--n`` HTTP round trips to wait for. The shape of the last
   order is checked against the first. ``--dominio`` writes every order
   through ``Dominio.crear_pedido`` instead (exact, ~10 ms per order).
3. Node 1 is started, then node 2; node 2's ``/api/health`` vector is read
   every 50 ms until it equals node 1's. Figures: time from node 2's spawn to
   convergence; merge rate from the moment node 2 logged ``linked to nodo1``
   to convergence, in changes/s and orders/s; node 2's peak RSS (``VmHWM``).
4. Reference, measured: the same change rows bulk-inserted into a fresh
   database opened by the store's own ``motor.abrir`` (same schema, WAL,
   ``synchronous=FULL``) with ``conn.execute(insert(cambios), rows)``, 500 rows
   per transaction like a merge batch: the store's ceiling. Reference,
   quoted, not measured here: cr-sqlite merging the equivalent changes
   through Python's sqlite3 on this machine type, ~43,000 rows/s. Targets:
   at least 25% of the bulk insert and at least cr-sqlite's rate; node 2's
   peak RSS under 200 MiB, and not growing with ``--n``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from bench import comun as c
from servidor.ajustes import cargar
from servidor.almacen import Almacen, Escritura, consultas
from servidor.almacen import modelos as m
from servidor.almacen.motor import abrir
from servidor.dominio import Dominio
from servidor.dominio.ids import nuevo_id
from tests.credenciales import cabecera
from tests.procesos import Cluster, ProcesoNodo

CRSQLITE_FILAS_S = 43_000
OBJETIVO_FRACCION = 0.25
OBJETIVO_RSS_MB = 200
LOTE_REFERENCIA = 500


async def medir(n: int, por_tx: int, dominio: bool, clientes: int, productos: int, conservar: bool) -> dict[str, Any]:
    carpeta, limpiar = c.carpeta_temporal(conservar)
    cl = c.cluster(carpeta, 3)
    n1, n2 = cl["nodo1"], cl["nodo2"]
    r: dict[str, Any] = {"n": n}
    try:
        await cl.arrancar()
        ids_c, ids_p = await c.catalogo(n1, clientes, productos, stock=1_000_000_000)
        await c.esperar_vector([cl["nodo2"], cl["nodo3"]], await c.vector(n1))
        base = await c.vector(n2)
        await cl.parar()

        t = time.monotonic()
        r["preparacion"] = await _escribir_pedidos(cl, n, por_tx, dominio, ids_c, ids_p)
        r["preparacion"]["s"] = time.monotonic() - t

        await n1.arrancar()
        objetivo = await c.vector(n1)
        r["cambios"] = sum(objetivo.values()) - sum(base.values())
        cpu1 = c.cpu_s(n1.pid) or 0.0
        r.update(await _alcanzar(n2, objetivo))
        r["cpu_s"] = {"nodo1": (c.cpu_s(n1.pid) or 0.0) - cpu1, "nodo2": c.cpu_s(n2.pid)}
        r["rss_mb"] = {"nodo1": c.pico_rss_mb(n1.pid), "nodo2": c.pico_rss_mb(n2.pid)}
        await cl.parar()
        r["referencia"] = await _insercion_en_bloque(n1.database, base.get("nodo1", 0), carpeta / "referencia.db")
    finally:
        await cl.cerrar()
        limpiar()
    return r


async def _escribir_pedidos(
    cl: Cluster, n: int, por_tx: int, dominio_exacto: bool, ids_c: list[str], ids_p: list[str]
) -> dict[str, Any]:
    ajustes = cargar(str(cl.config), "nodo1", {})
    almacen = await Almacen.abrir(ajustes.nodo.database, "nodo1", ajustes.cluster.max_clock_drift_ms)
    dominio = Dominio(almacen)
    try:
        antes = almacen.vector.get("nodo1", 0)
        await dominio.crear_pedido(c.cuerpo_pedido(0, ids_c, ids_p))
        forma = await _forma(almacen, antes, almacen.vector["nodo1"])
        hechos = 1
        if dominio_exacto:
            for i in range(1, n):
                await dominio.crear_pedido(c.cuerpo_pedido(i, ids_c, ids_p))
        else:
            precios = {p["id"]: p["precio"] for p in await dominio.listar_productos()}
            while hechos < n:
                cuantos = min(por_tx, n - hechos)
                await almacen.escribir(_lote_de_pedidos(almacen, hechos, cuantos, ids_c, ids_p, precios))
                hechos += cuantos
            final = almacen.vector["nodo1"]
            copia = await _forma(almacen, final - len(forma), final)
            if copia != forma:
                raise AssertionError(f"synthetic order {copia} differs from the domain's {forma}")
        return {"modo": "dominio" if dominio_exacto else f"{por_tx} por tx", "cambios_por_pedido": len(forma)}
    finally:
        await almacen.cerrar()


async def _forma(almacen: Almacen, desde: int, hasta: int) -> list[tuple[str, str]]:
    """(entidad, campo) of node 1's changes ``desde < seq <= hasta``, in seq order."""
    filas = await almacen.leer(consultas.cambios_de, "nodo1")
    return [(f.entidad, f.campo) for f in filas if desde < f.seq <= hasta]


def _lote_de_pedidos(
    almacen: Almacen, desde: int, cuantos: int, ids_c: list[str], ids_p: list[str], precios: dict[str, Decimal]
) -> Any:
    """A write declaring, for each order, what ``Dominio.crear_pedido`` declares for it."""

    def op(tx: Escritura) -> None:
        t = m.contadores_stock.c
        filas = tx.conn.execute(select(t.producto_id, t.salidas).where(t.nodo == tx.nodo_id))
        salidas = {f.producto_id: f.salidas for f in filas}
        for i in range(desde, desde + cuantos):
            cuerpo = c.cuerpo_pedido(i, ids_c, ids_p)
            (linea,) = cuerpo["items"]
            pid, cantidad = linea["producto_id"], linea["cantidad"]
            subtotal = precios[pid] * cantidad
            id_ = nuevo_id()
            tx.poner("pedido", id_, "cliente_id", cuerpo["cliente_id"])
            item = {"producto_id": pid, "cantidad": cantidad, "precio_unitario": str(precios[pid])}
            tx.poner("pedido", id_, "items", [{**item, "subtotal": str(subtotal)}])
            tx.poner("pedido", id_, "total", str(Decimal("0.00") + subtotal))
            tx.poner("pedido", id_, "estado", "pendiente")
            tx.poner("pedido", id_, "nodo_origen", tx.nodo_id)
            tx.poner("pedido", id_, "creado_en", _iso(almacen.reloj.ahora_ms()))
            salidas[pid] = salidas.get(pid, 0) + cantidad
            tx.poner("stock", pid, "salidas", salidas[pid])

    return op


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _alcanzar(n2: ProcesoNodo, objetivo: dict[str, int], plazo: float = 600.0) -> dict[str, Any]:
    """Start node 2 and read its vector every 50 ms until it equals ``objetivo``."""
    reloj_pared, t0 = time.time(), c.ahora()
    n2.iniciar()
    listo = None
    async with httpx.AsyncClient(timeout=5.0, headers=cabecera()) as http:
        while True:
            if not n2.vivo:
                raise RuntimeError(f"nodo2 exited while catching up:\n{n2.cola()}")
            try:
                v = (await c.salud(n2, http))["vector"]
                listo = listo or c.ahora()
                if all(v.get(o, 0) >= s for o, s in objetivo.items()):
                    break
            except httpx.TransportError:
                pass
            if c.ahora() - t0 > plazo:
                raise TimeoutError(f"nodo2 did not catch up within {plazo:g}s:\n{n2.cola()}")
            await asyncio.sleep(0.05)
    fin = c.ahora()
    enlazado = _hora_en_registro(n2, r"linked to nodo1", desde=reloj_pared)
    desde_enlace = fin - t0 - (enlazado - reloj_pared) if enlazado else fin - t0
    return {
        "converge_s": fin - t0,
        "responde_s": (listo or fin) - t0,
        "enlace_s": (enlazado - reloj_pared) if enlazado else None,
        "fusion_s": desde_enlace,
    }


def _hora_en_registro(nodo: ProcesoNodo, patron: str, desde: float) -> float | None:
    """Wall-clock time (epoch s) of the first log line matching ``patron`` after ``desde``."""
    for linea in nodo.registro().splitlines():
        if not re.search(patron, linea):
            continue
        hallado = re.search(r"\] (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ", linea)
        if hallado:
            t = datetime.strptime(hallado.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if t >= desde - 0.01:
                return t
    return None


async def _insercion_en_bloque(url_origen: str, desde_seq: int, destino: Path) -> dict[str, Any]:
    """Bulk-insert node 1's change rows past ``desde_seq`` into a fresh store database."""
    origen = await abrir(url_origen)
    try:
        async with origen.lectura.connect() as conn:
            t = m.cambios.c
            resultado = await conn.execute(
                select(m.cambios).where(t.origen == "nodo1", t.seq > desde_seq).order_by(t.seq)
            )
            filas = [dict(f._mapping) for f in resultado]
    finally:
        await origen.cerrar()
    motores = await abrir(f"sqlite+aiosqlite:///{destino}")
    try:
        t0 = time.perf_counter()
        for i in range(0, len(filas), LOTE_REFERENCIA):
            parte = filas[i : i + LOTE_REFERENCIA]

            def insertar(conn: Connection, parte: list[dict[str, Any]] = parte) -> None:
                conn.execute(insert(m.cambios), parte)

            await motores.transaccion(insertar)
        dt = time.perf_counter() - t0
    finally:
        await motores.cerrar()
    return {"filas": len(filas), "s": dt, "filas_s": len(filas) / dt}


def filas(r: dict[str, Any]) -> list[c.Fila]:
    cambios_s = r["cambios"] / r["fusion_s"]
    pedidos_s = r["n"] / r["fusion_s"]
    ref = r["referencia"]
    n = f"{r['n']:,}"
    return [
        c.Fila(
            f"catch-up {n}: {r['n']:,} orders ({r['cambios']:,} changes), node 2 spawn → vector equal",
            f"{r['converge_s']:.1f} s",
        ),
        c.Fila(
            f"catch-up {n}: merge rate, changes/s (linked → equal)",
            f"{cambios_s:,.0f} ({pedidos_s:,.0f} orders/s)",
            f"{cambios_s / ref['filas_s']:.0%} of bulk insert; cr-sqlite ~{CRSQLITE_FILAS_S:,} rows/s",
            f">= {OBJETIVO_FRACCION:.0%} of bulk insert and >= {CRSQLITE_FILAS_S:,}/s",
            cambios_s >= OBJETIVO_FRACCION * ref["filas_s"] and cambios_s >= CRSQLITE_FILAS_S,
        ),
        c.Fila(
            f"catch-up {n}: node 2 peak RSS (VmHWM)",
            f"{r['rss_mb']['nodo2']:.0f} MiB",
            objetivo=f"< {OBJETIVO_RSS_MB} MiB",
            cumple=r["rss_mb"]["nodo2"] < OBJETIVO_RSS_MB,
        ),
        c.Fila(
            f"reference {n}: bulk insert of the same {ref['filas']:,} change rows, Core, {LOTE_REFERENCIA}/tx",
            f"{ref['filas_s']:,.0f} rows/s",
            "the store's ceiling",
        ),
    ]


def notas(r: dict[str, Any]) -> list[str]:
    p = r["preparacion"]
    enlace = f"{r['enlace_s']:.2f} s" if r["enlace_s"] is not None else "not found in its log"
    return [
        f"catch-up: node 2 answered /api/health {r['responde_s']:.2f} s after spawn, linked to node 1 at {enlace}, "
        f"merged for {r['fusion_s']:.2f} s; node 1 peak RSS {r['rss_mb']['nodo1']:.0f} MiB",
        f"catch-up: CPU used from node 2's spawn to convergence: node 1 {r['cpu_s']['nodo1']:.1f} s, "
        f"node 2 {r['cpu_s']['nodo2']:.1f} s (of {r['converge_s']:.1f} s wall): "
        f"{r['cambios'] / r['cpu_s']['nodo2']:,.0f} changes per node-2 CPU second, start-up included",
        f"catch-up: node 1's log written in-process ({p['modo']}, {p['cambios_por_pedido']} changes per order) "
        f"in {p['s']:.1f} s; node 3 down throughout",
    ]


def argumentos(a: argparse.ArgumentParser) -> None:
    a.add_argument("--n", type=int, default=20_000, help="orders written while node 2 is down (default 20000)")
    a.add_argument("--por-tx", type=int, default=200, help="orders per transaction when preparing (default 200)")
    a.add_argument("--dominio", action="store_true", help="write every order through Dominio.crear_pedido (slow)")
    a.add_argument("--clientes", type=int, default=20)
    a.add_argument("--productos", type=int, default=20)


def main() -> int:
    return c.principal(
        "bench.catchup",
        "Catch-up of a node that was down.",
        argumentos,
        lambda x: medir(x.n, x.por_tx, x.dominio, x.clientes, x.productos, x.keep),
        "catch-up",
        filas,
        notas,
    )


if __name__ == "__main__":
    raise SystemExit(main())
