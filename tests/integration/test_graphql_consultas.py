"""GraphQL queries: every root field, related entities in batches, GraphiQL and the websocket route."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.types import Message

from servidor.almacen import consultas
from tests.credenciales import cabecera
from tests.integration.ayudas import cancelacion_concurrente, datos


async def poblar(app: Starlette, pedidos: int) -> list[dict[str, Any]]:
    """``pedidos`` orders, each of its own client with two products of its own."""
    dominio = app.state.dominio
    creados = []
    for n in range(pedidos):
        cliente = await dominio.crear_cliente({"nombre": f"Cliente {n}", "email": f"c{n}@example.com"})
        a = await dominio.crear_producto({"nombre": f"A{n}", "precio": "1.00", "stock": 10})
        b = await dominio.crear_producto({"nombre": f"B{n}", "precio": "2.50", "stock": 10})
        datos_pedido = {
            "cliente_id": cliente["id"],
            "items": [{"producto_id": a["id"], "cantidad": 1}, {"producto_id": b["id"], "cantidad": 2}],
        }
        creados.append(await dominio.crear_pedido(datos_pedido))
    return creados


@contextmanager
def sentencias(app: Starlette) -> Iterator[list[str]]:
    """Collect the SQL statements the read engine runs inside the block."""
    vistas: list[str] = []
    motor = app.state.almacen.motores.lectura.sync_engine

    def anotar(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        vistas.append(sql)

    event.listen(motor, "before_cursor_execute", anotar)
    try:
        yield vistas
    finally:
        event.remove(motor, "before_cursor_execute", anotar)


LISTA = "{ pedidos { id total cliente { id nombre } items { cantidad producto { id nombre stock } } } }"


async def test_clientes_lists_every_client_oldest_first(http: httpx.AsyncClient, app: Starlette) -> None:
    assert await datos(http, "{ clientes { id } }") == {"clientes": []}
    ana = await app.state.dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com", "telefono": "600"})
    luis = await app.state.dominio.crear_cliente({"nombre": "Luis", "email": "luis@example.com"})

    r = await datos(http, "{ clientes { id nombre email telefono direccion creadoEn } }")

    assert r["clientes"] == [
        {
            "id": ana["id"],
            "nombre": "Ana",
            "email": "ana@example.com",
            "telefono": "600",
            "direccion": None,
            "creadoEn": ana["creado_en"],
        },
        {
            "id": luis["id"],
            "nombre": "Luis",
            "email": "luis@example.com",
            "telefono": None,
            "direccion": None,
            "creadoEn": luis["creado_en"],
        },
    ]


async def test_cliente_answers_one_client_by_id(http: httpx.AsyncClient, app: Starlette) -> None:
    ana = await app.state.dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    r = await datos(http, "query($id: ID!) { cliente(id: $id) { id nombre } }", id=ana["id"])
    assert r == {"cliente": {"id": ana["id"], "nombre": "Ana"}}


async def test_productos_and_producto_show_money_as_a_decimal_string(http: httpx.AsyncClient, app: Starlette) -> None:
    taza = await app.state.dominio.crear_producto({"nombre": "Taza", "precio": "12.50", "stock": 3})
    await app.state.dominio.crear_producto({"nombre": "Plato", "precio": 4, "descripcion": "llano"})

    lista = await datos(http, "{ productos { nombre descripcion precio stock } }")
    uno = await datos(http, "query($id: ID!) { producto(id: $id) { id nombre precio stock creadoEn } }", id=taza["id"])

    assert lista["productos"] == [
        {"nombre": "Taza", "descripcion": None, "precio": "12.50", "stock": 3},
        {"nombre": "Plato", "descripcion": "llano", "precio": "4.00", "stock": 0},
    ]
    assert uno["producto"] == {
        "id": taza["id"],
        "nombre": "Taza",
        "precio": "12.50",
        "stock": 3,
        "creadoEn": taza["creado_en"],
    }


async def test_a_product_shows_each_nodes_rights_adding_up_to_its_stock(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    dominio = app.state.dominio
    taza = await dominio.crear_producto({"nombre": "Taza", "precio": "12.50", "stock": 7})
    await dominio.ceder_derechos("nodo2", taza["id"], 3, 0)
    await dominio.crear_producto({"nombre": "Plato", "precio": 4})

    r = await datos(http, "{ productos { nombre stock derechos { nodo unidades } } }")

    assert r["productos"] == [
        {
            "nombre": "Taza",
            "stock": 7,
            "derechos": [{"nodo": "nodo1", "unidades": 4}, {"nodo": "nodo2", "unidades": 3}],
        },
        {"nombre": "Plato", "stock": 0, "derechos": []},
    ]


async def test_pedido_shows_its_fields_client_and_the_products_of_its_items(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    [pedido] = await poblar(app, 1)
    consulta = """query($id: ID!) { pedido(id: $id) {
        id clienteId estado total creadoEn nodoOrigen cliente { nombre }
        items { productoId cantidad precioUnitario subtotal producto { nombre stock } } } }"""

    r = await datos(http, consulta, id=pedido["id"])

    a, b = pedido["items"]
    assert r["pedido"] == {
        "id": pedido["id"],
        "clienteId": pedido["cliente_id"],
        "estado": "PENDIENTE",
        "total": "6.00",
        "creadoEn": pedido["creado_en"],
        "nodoOrigen": "nodo1",
        "cliente": {"nombre": "Cliente 0"},
        "items": [
            {
                "productoId": a["producto_id"],
                "cantidad": 1,
                "precioUnitario": "1.00",
                "subtotal": "1.00",
                "producto": {"nombre": "A0", "stock": 9},
            },
            {
                "productoId": b["producto_id"],
                "cantidad": 2,
                "precioUnitario": "2.50",
                "subtotal": "5.00",
                "producto": {"nombre": "B0", "stock": 8},
            },
        ],
    }


async def test_pedido_of_a_deleted_client_shows_the_client_as_null(http: httpx.AsyncClient, app: Starlette) -> None:
    [pedido] = await poblar(app, 1)
    await app.state.dominio.eliminar_cliente(pedido["cliente_id"])
    r = await datos(http, "query($id: ID!) { pedido(id: $id) { clienteId cliente { id } } }", id=pedido["id"])
    assert r["pedido"] == {"clienteId": pedido["cliente_id"], "cliente": None}


async def test_pedidos_filters_by_estado_and_by_client(http: httpx.AsyncClient, app: Starlette) -> None:
    primero, segundo, tercero = await poblar(app, 3)
    await app.state.dominio.cambiar_estado(segundo["id"], "confirmado")

    todos = await datos(http, "{ pedidos { id } }")
    pendientes = await datos(http, "{ pedidos(estado: PENDIENTE) { id estado } }")
    de_uno = await datos(http, "query($c: ID) { pedidos(clienteId: $c) { id } }", c=tercero["cliente_id"])
    ninguno = await datos(
        http, "query($c: ID) { pedidos(estado: CONFIRMADO, clienteId: $c) { id } }", c=tercero["cliente_id"]
    )

    assert [p["id"] for p in todos["pedidos"]] == [primero["id"], segundo["id"], tercero["id"]]
    assert pendientes["pedidos"] == [
        {"id": primero["id"], "estado": "PENDIENTE"},
        {"id": tercero["id"], "estado": "PENDIENTE"},
    ]
    assert de_uno["pedidos"] == [{"id": tercero["id"]}]
    assert ninguno["pedidos"] == []


async def test_nodo_reports_its_id_clock_database_vector_and_uptime(http: httpx.AsyncClient, app: Starlette) -> None:
    await app.state.dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})

    r = await datos(http, "{ nodo { id hlc baseDeDatos vector { origen seq } uptimeS } }")

    nodo = r["nodo"]
    assert nodo["id"] == "nodo1"
    assert nodo["hlc"] == str(app.state.almacen.reloj.ultimo) and int(nodo["hlc"]) > 2**40
    assert nodo["baseDeDatos"] == app.state.almacen.motores.dialecto
    assert nodo["vector"] == [{"origen": o, "seq": s} for o, s in sorted(app.state.almacen.vector.items())]
    assert nodo["vector"][0]["origen"] == "nodo1" and nodo["vector"][0]["seq"] > 0
    assert nodo["uptimeS"] >= 0


async def test_conflictos_lists_a_concurrent_estado_change_and_its_winner(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    assert await datos(http, "{ conflictos { pedidoId } }") == {"conflictos": []}
    [pedido] = await poblar(app, 1)
    alta = [
        c
        for c in await app.state.almacen.leer(consultas.cambios_de, "nodo1")
        if c.clave == pedido["id"] and c.campo == "estado"
    ][0]
    await app.state.dominio.cambiar_estado(pedido["id"], "confirmado")
    confirmacion = (await app.state.almacen.leer(consultas.cambios_de, "nodo1"))[-1]
    # nodo2 cancelled the same pending order having seen its creation, not the confirmation.
    [remoto] = (await cancelacion_concurrente(app, pedido["id"], {"nodo1": alta.seq})).aplicados

    r = await datos(
        http, "{ conflictos { entidad pedidoId campo ganador perdedor valorGanador valorPerdedor base } }"
    )

    assert r["conflictos"] == [
        {
            "entidad": "pedido",
            "pedidoId": pedido["id"],
            "campo": "estado",
            "ganador": f"{remoto.hlc}:nodo2",
            "perdedor": f"{confirmacion.hlc}:nodo1",
            "valorGanador": "cancelado",
            "valorPerdedor": "confirmado",
            "base": confirmacion.base,
        }
    ]


async def test_a_list_of_orders_costs_the_same_statements_for_3_and_12_orders(app: Starlette) -> None:
    transporte = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transporte, base_url="http://test", headers=cabecera()) as http:
        await poblar(app, 3)
        with sentencias(app) as pocas:
            r = await datos(http, LISTA)
        assert len(r["pedidos"]) == 3
        await poblar(app, 9)
        with sentencias(app) as muchas:
            r = await datos(http, LISTA)

    assert len(r["pedidos"]) == 12
    assert all(p["cliente"] and all(i["producto"] for i in p["items"]) for p in r["pedidos"])
    assert len(muchas) == len(pocas), muchas
    # the orders, their items, then one batch of clients and one of products (SQLite adds BEGINs)
    consultadas = [s.split("FROM ")[1].split()[0] for s in muchas if s.startswith("SELECT")]
    assert sorted(consultadas) == ["clientes", "pedido_items", "pedidos", "productos"]


async def test_graphiql_is_served_to_a_browser(http: httpx.AsyncClient) -> None:
    r = await http.get("/graphql", headers={"accept": "text/html"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "graphiql" in r.text.lower()


async def test_graphiql_loads_every_script_and_style_from_the_node_itself(http: httpx.AsyncClient) -> None:
    pagina = (await http.get("/graphql", headers={"accept": "text/html"})).text
    archivos = [a for a in re.findall(r'(?:src|href)="([^"]+)"', pagina) if not a.startswith("data:")]
    assert any(a.endswith("/graphiql.min.js") for a in archivos), archivos
    for archivo in archivos:
        assert archivo.startswith("/graphiql/"), archivo
        r = await http.get(archivo)
        assert r.status_code == 200 and len(r.content) > 1000, archivo


async def test_a_query_can_be_sent_by_get(http: httpx.AsyncClient) -> None:
    r = await http.get("/graphql", params={"query": "{ nodo { id } }"})
    assert r.status_code == 200
    assert r.json() == {"data": {"nodo": {"id": "nodo1"}}}


class WebSocketEnMemoria:
    """An ASGI websocket client without sockets: the app runs as a task of the test's loop."""

    def __init__(self) -> None:
        self.al_servidor: asyncio.Queue[Message] = asyncio.Queue()
        self.al_cliente: asyncio.Queue[Message] = asyncio.Queue()

    async def recibir(self) -> dict[str, Any]:
        mensaje = await asyncio.wait_for(self.al_cliente.get(), timeout=10)
        assert mensaje["type"] == "websocket.send", mensaje
        recibido: dict[str, Any] = json.loads(mensaje["text"])
        return recibido

    async def enviar(self, mensaje: dict[str, Any]) -> None:
        await self.al_servidor.put({"type": "websocket.receive", "text": json.dumps(mensaje)})


@asynccontextmanager
async def websocket(app: Starlette, ruta: str, subprotocolo: str) -> AsyncIterator[WebSocketEnMemoria]:
    ws = WebSocketEnMemoria()
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": ruta,
        "raw_path": ruta.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"test")],
        "subprotocols": [subprotocolo],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }
    tarea = asyncio.create_task(app(scope, ws.al_servidor.get, ws.al_cliente.put))
    await ws.al_servidor.put({"type": "websocket.connect"})
    aceptado = await asyncio.wait_for(ws.al_cliente.get(), timeout=10)
    assert aceptado == {"type": "websocket.accept", "subprotocol": subprotocolo, "headers": []}, aceptado
    try:
        yield ws
    finally:
        await ws.al_servidor.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(tarea, timeout=10)


async def test_the_websocket_path_speaks_graphql_transport_ws(app: Starlette) -> None:
    [pedido] = await poblar(app, 1)
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera()})
        assert await ws.recibir() == {"type": "connection_ack"}
        consulta = "query($id: ID!) { pedido(id: $id) { cliente { nombre } } }"
        await ws.enviar(
            {"id": "1", "type": "subscribe", "payload": {"query": consulta, "variables": {"id": pedido["id"]}}}
        )
        assert await ws.recibir() == {
            "id": "1",
            "type": "next",
            "payload": {"data": {"pedido": {"cliente": {"nombre": "Cliente 0"}}}},
        }
        assert await ws.recibir() == {"id": "1", "type": "complete"}


async def test_each_operation_on_one_websocket_reads_fresh_rows(app: Starlette) -> None:
    [pedido] = await poblar(app, 1)
    consulta = {
        "query": "query($id: ID!) { pedido(id: $id) { cliente { nombre } } }",
        "variables": {"id": pedido["id"]},
    }
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera()})
        assert await ws.recibir() == {"type": "connection_ack"}
        nombres = []
        for n in ("1", "2"):
            await ws.enviar({"id": n, "type": "subscribe", "payload": consulta})
            siguiente = await ws.recibir()
            nombres.append(siguiente["payload"]["data"]["pedido"]["cliente"]["nombre"])
            assert await ws.recibir() == {"id": n, "type": "complete"}
            await app.state.dominio.actualizar_cliente(pedido["cliente_id"], {"nombre": "Renombrado"})

    assert nombres == ["Cliente 0", "Renombrado"]
