"""``python -m bench.lista``: a GraphQL list of 1,000 orders with their clients and items.

One node, in process (``crear_app`` over httpx's ASGI transport, so the
figure is the node's work, not the network's), holding ``N`` orders of two
lines each, every order with its own client and products. The query asks,
with an admin token, for one page of every order (at most 1,000) with its
client and each item's product; it is run 20 times
after a warm-up. The statements are counted on the read engine for one run;
they must not depend on ``N`` (the GraphQL loaders batch clients and
products), so the count is also taken for ``N / 10`` orders, as a reference.

::

    .venv/bin/python -m bench.lista [--n 1000] [--keep]
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
from sqlalchemy import event

from bench import comun as c
from servidor.ajustes import Ajustes, Cluster, Nodo
from servidor.app import crear_app
from tests.credenciales import cabecera, tokens

LISTA = "{ pedidos(limite: 1000) { id total cliente { id nombre } items { cantidad producto { id nombre stock } } } }"
REPETICIONES = 20


async def _poblar(dominio: Any, desde: int, hasta: int) -> None:
    for n in range(desde, hasta):
        cliente = await dominio.crear_cliente({"nombre": f"Cliente {n}", "email": f"c{n}@example.com"})
        a = await dominio.crear_producto({"nombre": f"A{n}", "precio": "1.00", "stock": 10})
        b = await dominio.crear_producto({"nombre": f"B{n}", "precio": "2.50", "stock": 10})
        items = [{"producto_id": a["id"], "cantidad": 1}, {"producto_id": b["id"], "cantidad": 2}]
        await dominio.crear_pedido({"cliente_id": cliente["id"], "items": items})


async def _consultar(http: httpx.AsyncClient, motor: Any, n: int) -> tuple[int, int]:
    """Run the list once: how many orders it answered, and how many statements it took."""
    vistas: list[str] = []

    def anotar(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        vistas.append(sql)

    event.listen(motor, "before_cursor_execute", anotar)
    try:
        r = (await http.post("/graphql", json={"query": LISTA})).json()
    finally:
        event.remove(motor, "before_cursor_execute", anotar)
    assert "errors" not in r and len(r["data"]["pedidos"]) == n, str(r)[:300]
    return n, len([s for s in vistas if s.lstrip().upper().startswith("SELECT")])


async def medir(n: int, conservar: bool) -> dict[str, Any]:
    carpeta, limpiar = c.carpeta_temporal(conservar)
    nodo = Nodo(id="nodo1", host="127.0.0.1", port=5000, database=f"sqlite+aiosqlite:///{carpeta}/nodo1.db")
    cluster = Cluster(
        name="bench", secret="secreto-de-bench", max_clock_drift_ms=500, nodes=(nodo,), ruta=carpeta, tokens=tokens()
    )
    app = crear_app(Ajustes(cluster=cluster, nodo=nodo))
    try:
        async with app.router.lifespan_context(app):
            transporte = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transporte, base_url="http://bench", timeout=120, headers=cabecera()
            ) as http:
                motor = app.state.almacen.motores.lectura.sync_engine
                await _poblar(app.state.dominio, 0, n // 10)
                _, pocas = await _consultar(http, motor, n // 10)
                await _poblar(app.state.dominio, n // 10, n)
                _, muchas = await _consultar(http, motor, n)
                tiempos = []
                for _ in range(REPETICIONES):
                    t0 = c.ahora()
                    r = await http.post("/graphql", json={"query": LISTA})
                    tiempos.append(c.ahora() - t0)
                    assert r.status_code == 200
                tamano = len(r.content)
    finally:
        limpiar()
    return {"n": n, "sentencias": muchas, "sentencias_n_10": pocas, "latencia": c.resumen_ms(tiempos), "bytes": tamano}


def filas(r: dict[str, Any]) -> list[c.Fila]:
    lat = r["latencia"]
    return [
        c.Fila(
            f"GraphQL list of {r['n']:,} orders with client and items, in process: p50/p99/max",
            f"{c.ms(lat['p50'])} / {c.ms(lat['p99'])} / {c.ms(lat['max'])}",
            referencia=f"{r['bytes'] / 1024:,.0f} KiB answered",
        ),
        c.Fila(
            f"GraphQL list of {r['n']:,} orders: SQL statements",
            str(r["sentencias"]),
            referencia=f"{r['sentencias_n_10']} for {r['n'] // 10} orders",
            objetivo="constant in the number of orders",
            cumple=r["sentencias"] == r["sentencias_n_10"],
        ),
    ]


def main() -> int:
    def argumentos(a: argparse.ArgumentParser) -> None:
        a.add_argument("--n", type=int, default=1000, help="orders in the list (default 1000)")

    return c.principal(
        "bench.lista", "A GraphQL list of many orders.", argumentos, lambda x: medir(x.n, x.keep), "GraphQL list", filas
    )


if __name__ == "__main__":
    raise SystemExit(main())
