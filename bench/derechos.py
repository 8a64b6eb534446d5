"""``python -m bench.derechos``: stock rights (escrow) under partition, and what a transfer costs.

Three real nodes, every directed link through its own TCP proxy
(``tests.proxy``), so links can be cut. Two figures:

1. **Availability during a partition.** A product's ``U`` units arrive a
   third at each node, so each holds rights to ``U/3``. ``nodo3`` is cut off
   from the other two; then ``1.5 U`` orders of one unit arrive, each at a node
   drawn with given weights, from eight concurrent clients. Availability is
   accepted / the orders the cluster's stock could have served
   (``min(orders, U)``). Two demand mixes: even, and skewed to the cut-off
   node. After heal, every node must agree, with stock never below zero and
   equal to ``U`` minus the units sold.
2. **Latency of an order that needed a transfer.** ``K`` products are created
   on ``nodo1``, so ``nodo2`` holds no rights to any; one order of one unit
   per product is sent to ``nodo2``, one at a time, timed at the client. The
   reference is ``K`` orders on ``nodo2`` of a product whose units it holds.

::

    .venv/bin/python -m bench.derechos [--unidades 300] [--k 200] [--keep] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import random
from typing import Any

import httpx

from bench import comun as c
from tests.procesos import Cluster
from tests.proxy import Proxies, abrir_proxies

MEZCLAS = {"even": (1 / 3, 1 / 3, 1 / 3), "skewed to the cut-off node": (1 / 6, 1 / 6, 2 / 3)}
CLIENTES_CONCURRENTES = 8


async def _post(http: httpx.AsyncClient, ruta: str, cuerpo: dict[str, Any]) -> tuple[int, Any]:
    r = await http.post(ruta, json=cuerpo)
    return r.status_code, r.json()


async def _producto_repartido(c3: Cluster, unidades: int) -> str:
    """A product whose units arrived a third at each node."""
    tercio = unidades // 3
    async with c3["nodo1"].cliente() as http:
        estado, p = await _post(http, "/api/productos", {"nombre": "Lámpara", "precio": "20.00", "stock": tercio})
        assert estado == 201, p
    await c.esperar_vector(list(c3), await c.vector(c3["nodo1"]))
    for nodo_id in ("nodo2", "nodo3"):
        async with c3[nodo_id].cliente() as http:
            estado, _ = await _post(http, f"/api/productos/{p['id']}/stock", {"cantidad": tercio})
            assert estado == 200
    objetivo: dict[str, int] = {}
    for n in c3:
        for origen, seq in (await c.vector(n)).items():
            objetivo[origen] = max(objetivo.get(origen, 0), seq)
    await c.esperar_vector(list(c3), objetivo)
    return str(p["id"])


async def _disponibilidad(
    c3: Cluster, proxies: Proxies, cliente: str, unidades: int, pesos: tuple[float, ...]
) -> dict[str, Any]:
    producto = await _producto_repartido(c3, unidades)
    for a, b in (("nodo3", "nodo1"), ("nodo3", "nodo2")):
        proxies[(a, b)].cortar()
        proxies[(b, a)].cortar()
    pedidos = int(unidades * 1.5)
    azar = random.Random(7)
    destinos = azar.choices(["nodo1", "nodo2", "nodo3"], weights=pesos, k=pedidos)
    http = {n.id: n.cliente(timeout=30.0) for n in c3}
    resultados: dict[str, dict[str, int]] = {n: {"ok": 0, "sin_derechos": 0, "agotado": 0} for n in http}
    cola: asyncio.Queue[str] = asyncio.Queue()
    for d in destinos:
        cola.put_nowait(d)

    async def cliente_http() -> None:
        while not cola.empty():
            nodo = cola.get_nowait()
            cuerpo = {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 1}]}
            estado, respuesta = await _post(http[nodo], "/api/pedidos", cuerpo)
            if estado == 201:
                resultados[nodo]["ok"] += 1
            else:
                assert estado == 409, respuesta
                resultados[nodo][respuesta["error"]["detalle"]["motivo"]] += 1

    try:
        inicio = c.ahora()
        await asyncio.gather(*(cliente_http() for _ in range(CLIENTES_CONCURRENTES)))
        duracion = c.ahora() - inicio
    finally:
        for p in proxies.values():
            p.restaurar()
        for cliente_h in http.values():
            await cliente_h.aclose()
    vendidas = sum(r["ok"] for r in resultados.values())
    # What no policy could beat: each side of the cut serves at most its own demand and its own units.
    lados = {"nodo1": 0, "nodo2": 0, "nodo3": 1}
    demanda = [sum(sum(resultados[n].values()) for n in lados if lados[n] == lado) for lado in (0, 1)]
    posibles = min(demanda[0], 2 * (unidades // 3)) + min(demanda[1], unidades // 3)
    # Heal, then every node must tell the same, conserved story.
    vistas: list[Any] = []

    async def convergido() -> bool:
        vistas.clear()
        for n in c3:
            async with n.cliente() as h:
                salud = (await h.get("/api/health")).json()
                vistas.append((salud["vector"], (await h.get(f"/api/productos/{producto}")).json()))
        return all(v == vistas[0] for v in vistas)

    await c.esperar(convergido, 30.0, que="nodes converge after heal")
    final = vistas[0][1]
    assert final["stock"] == unidades - vendidas >= 0, final
    return {
        "pedidos": pedidos,
        "servibles": min(pedidos, unidades),
        "vendidas": vendidas,
        "posibles": posibles,
        "por_nodo": resultados,
        "duracion_s": duracion,
        "derechos_al_final": final["derechos"],
    }


async def _latencias(http: httpx.AsyncClient, cliente: str, productos: list[str]) -> tuple[list[float], int]:
    tiempos, fallos = [], 0
    for producto in productos:
        cuerpo = {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 1}]}
        t0 = c.ahora()
        r = await http.post("/api/pedidos", json=cuerpo)
        tiempos.append(c.ahora() - t0)
        fallos += r.status_code != 201
    return tiempos, fallos


async def _coste_de_cesion(c3: Cluster, k: int) -> dict[str, Any]:
    uno, dos = c3["nodo1"], c3["nodo2"]
    [cliente], ajenos = await c.catalogo(uno, 1, k, 3)
    _, [propio] = await c.catalogo(dos, 0, 1, 10**6)
    objetivo = {**await c.vector(uno), **{"nodo2": (await c.vector(dos))["nodo2"]}}
    await c.esperar_vector([uno, dos], objetivo)
    async with dos.cliente(timeout=30.0) as http:
        await _latencias(http, cliente, [propio] * 20)  # warm up the connection and the node
        con_cesion, fallos = await _latencias(http, cliente, ajenos)
        sin_cesion, fallos_ref = await _latencias(http, cliente, [propio] * k)
    return {
        "k": k,
        "con_cesion": c.resumen_ms(con_cesion),
        "sin_cesion": c.resumen_ms(sin_cesion),
        "fallos": fallos + fallos_ref,
    }


async def medir(unidades: int, k: int, conservar: bool) -> dict[str, Any]:
    carpeta, limpiar = c.carpeta_temporal(conservar)
    c3 = c.cluster(carpeta, 3)
    proxies: Proxies = {}
    try:
        await abrir_proxies(c3, proxies)
        await c3.arrancar()
        [cliente], _ = await c.catalogo(c3["nodo1"], 1, 0, 0)
        await c.esperar_vector(list(c3), await c.vector(c3["nodo1"]))
        r: dict[str, Any] = {"unidades": unidades, "disponibilidad": {}}
        for nombre, pesos in MEZCLAS.items():
            r["disponibilidad"][nombre] = await _disponibilidad(c3, proxies, cliente, unidades, pesos)
        r["cesion"] = await _coste_de_cesion(c3, k)
        return r
    finally:
        await c3.cerrar()
        await asyncio.gather(*(p.cerrar() for p in proxies.values()))
        limpiar()


def filas(r: dict[str, Any]) -> list[c.Fila]:
    f = []
    for nombre, d in r["disponibilidad"].items():
        f.append(
            c.Fila(
                f"escrow: availability, nodo3 cut off, demand {nombre} ({d['pedidos']} orders of 1 unit)",
                f"{d['vendidas'] / d['servibles']:.0%} ({d['vendidas']} of {d['servibles']} servable)",
                referencia=f"{d['posibles']} is the most the cut allows",
                objetivo="no oversell",
                cumple=d["vendidas"] <= r["unidades"],
            )
        )
    s = r["cesion"]
    con, sin = s["con_cesion"], s["sin_cesion"]
    f.append(
        c.Fila(
            f"escrow: order needing a transfer, at the client, p50/p99/max (n={s['k']})",
            f"{c.ms(con['p50'])} / {c.ms(con['p99'])} / {c.ms(con['max'])}",
            referencia=f"no transfer: {c.ms(sin['p50'])} / {c.ms(sin['p99'])} / {c.ms(sin['max'])}",
        )
    )
    f.append(
        c.Fila(
            "escrow: added latency of a transfer, p50/p99",
            f"{c.ms(con['p50'] - sin['p50'])} / {c.ms(con['p99'] - sin['p99'])}",
            objetivo="well under 1 s",
            cumple=con["p99"] < 1000 and s["fallos"] == 0,
        )
    )
    return f


def notas(r: dict[str, Any]) -> list[str]:
    n = []
    for nombre, d in r["disponibilidad"].items():
        por_nodo = "; ".join(
            f"{nodo} {x['ok']} ok, {x['sin_derechos']} sin_derechos, {x['agotado']} agotado"
            for nodo, x in d["por_nodo"].items()
        )
        n.append(f"escrow ({nombre}): {por_nodo}; {d['duracion_s']:.1f} s; rights after heal {d['derechos_al_final']}")
    n.append(f"escrow: orders refused in the latency runs: {r['cesion']['fallos']}")
    return n


def main() -> int:
    def argumentos(a: argparse.ArgumentParser) -> None:
        a.add_argument("--unidades", type=int, default=300, help="units of the product (default 300)")
        a.add_argument("--k", type=int, default=200, help="orders timed for the transfer latency (default 200)")

    return c.principal(
        "bench.derechos",
        "Stock rights under partition.",
        argumentos,
        lambda x: medir(x.unidades, x.k, x.keep),
        "stock rights (escrow)",
        filas,
        notas,
    )


if __name__ == "__main__":
    raise SystemExit(main())
