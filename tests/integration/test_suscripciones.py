"""GraphQL subscriptions over graphql-transport-ws, with real node processes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.credenciales import cabecera
from tests.integration.test_sync_cluster import catalogo, obtener, pedir
from tests.procesos import FabricaClusters, ProcesoNodo, esperar

PEDIDOS = "subscription { pedidoCambiado { tipo pedido { id estado nodoOrigen items { productoId cantidad } } } }"
STOCK = "subscription($p: ID) { stockCambiado(productoId: $p) { id stock } }"
NODOS = "subscription { nodosCambiados { id activo pendientes } }"


@asynccontextmanager
async def suscrito(
    nodo: ProcesoNodo, consulta: str, variables: dict[str, Any] | None = None, **kw: Any
) -> AsyncIterator[ClientConnection]:
    """A graphql-transport-ws connection with one subscription, acknowledged."""
    async with connect(
        f"ws://{nodo.host}:{nodo.port}/graphql", subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None, **kw
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": cabecera()}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": consulta, "variables": variables or {}}})
        )
        yield ws


async def siguiente(ws: ClientConnection, plazo: float = 1.0) -> dict[str, Any]:
    """The next ``next`` payload's data, within ``plazo`` seconds (pings answered)."""
    async with asyncio.timeout(plazo):
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            assert msg["type"] == "next", msg
            return dict(msg["payload"]["data"])


async def pedido_con(ws: ClientConnection, id: str, estado: str, plazo: float = 1.0) -> dict[str, Any]:
    """Read events until the order ``id`` shows in ``estado``."""
    async with asyncio.timeout(plazo):
        while True:
            evento = (await siguiente(ws, plazo))["pedidoCambiado"]
            if evento["pedido"]["id"] == id and evento["pedido"]["estado"] == estado:
                return dict(evento)


async def todos_enlazados(c: Any) -> None:
    async def enlazados() -> bool:
        for n in c:
            if not all(p["activo"] for p in await obtener(n, "/api/health/nodos")):
                return False
        return True

    await esperar(enlazados, 15, que="every link up")


async def test_a_subscriber_on_one_node_sees_orders_created_and_cancelled_on_others_within_a_second(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(3)
    cliente, producto = await catalogo(c["nodo1"])
    await todos_enlazados(c)
    await esperar(lambda: obtener(c["nodo3"], f"/api/productos/{producto}"), 10, que="catalogue on nodo3")
    async with suscrito(c["nodo2"], PEDIDOS) as ws:
        pedido = await pedir(c["nodo1"], cliente, producto, 2)
        creado = await pedido_con(ws, pedido["id"], "PENDIENTE")
        assert creado["tipo"] == "CREADO" and creado["pedido"]["nodoOrigen"] == "nodo1"
        assert creado["pedido"]["items"] == [{"productoId": producto, "cantidad": 2}]

        await esperar(lambda: obtener(c["nodo3"], f"/api/pedidos/{pedido['id']}"), 5, que="order on nodo3")
        async with c["nodo3"].cliente() as http:
            r = await http.put(f"/api/pedidos/{pedido['id']}/estado", json={"estado": "cancelado"})
            assert r.status_code == 200
        cancelado = await pedido_con(ws, pedido["id"], "CANCELADO")
        assert cancelado["tipo"] == "ACTUALIZADO"


async def test_stock_subscribers_for_one_product_hear_only_that_product(clusters: FabricaClusters) -> None:
    c = await clusters(1)
    cliente, taza = await catalogo(c["nodo1"])
    _, plato = await catalogo(c["nodo1"])
    async with suscrito(c["nodo1"], STOCK, {"p": taza}) as ws:
        await pedir(c["nodo1"], cliente, plato, 1)
        await pedir(c["nodo1"], cliente, taza, 3)
        assert (await siguiente(ws))["stockCambiado"] == {"id": taza, "stock": 7}


async def test_peer_health_subscribers_hear_a_peer_go_down(clusters: FabricaClusters) -> None:
    c = await clusters(2)
    await todos_enlazados(c)
    async with suscrito(c["nodo1"], NODOS) as ws:
        assert (await siguiente(ws))["nodosCambiados"][0]["activo"] is True
        await c["nodo2"].parar()
        async with asyncio.timeout(10):
            while (await siguiente(ws, 10))["nodosCambiados"][0]["activo"]:
                pass


async def test_a_subscriber_that_never_reads_neither_blocks_writes_nor_other_subscribers(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(1)
    nodo = c["nodo1"]
    cliente, producto = await catalogo(nodo, stock=1_000)
    n = 150
    # The stalled client lets its library buffer at most one frame, and never reads.
    async with suscrito(nodo, PEDIDOS, max_queue=1, close_timeout=0.5) as parado, suscrito(nodo, PEDIDOS) as atento:
        ids = []
        async with nodo.cliente() as http:
            for _ in range(n):
                r = await http.post(
                    "/api/pedidos", json={"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 1}]}
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
        vistos: set[str] = set()
        while len(vistos) < n:
            vistos.add((await siguiente(atento, 5))["pedidoCambiado"]["pedido"]["id"])
        assert vistos == set(ids)
        assert (await obtener(nodo, f"/api/productos/{producto}"))["stock"] == 1_000 - n
        del parado
