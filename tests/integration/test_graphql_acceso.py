"""GraphQL's doors: the token over HTTP and on the websocket, each root field's role, websocket limits."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from strawberry.types.base import get_object_definition

from esquema import Limites, crear_esquema
from servidor.acceso import Rol
from servidor.limites import MAX_MENSAJE_WS
from tests.credenciales import cabecera
from tests.integration.ayudas import error, sin_cambios
from tests.integration.test_graphql_consultas import websocket

CREAR = 'mutation { crearCliente(datos: {nombre: "Eva", email: "eva@example.com"}) { id } }'


def test_every_root_field_names_the_role_it_needs() -> None:
    esquema = crear_esquema()
    raices = [esquema.query, esquema.mutation, esquema.subscription]
    campos = [(t.__name__, c) for t in raices if t is not None for c in get_object_definition(t, strict=True).fields]
    assert len(campos) > 20
    assert [f"{tipo}.{c.python_name}" for tipo, c in campos if not c.permission_classes] == []


async def test_a_document_without_a_valid_token_is_refused_with_401_before_it_is_read(app: Starlette) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anonimo:
        async with sin_cambios(app):
            for cabeceras in ({}, {"authorization": "Bearer no-es-nuestro"}):
                error(await anonimo.post("/graphql", json={"query": CREAR}, headers=cabeceras), 401, "NO_AUTENTICADO")
                r = await anonimo.get("/graphql", params={"query": "{ nodo { id } }"}, headers=cabeceras)
                error(r, 401, "NO_AUTENTICADO")
        pagina = await anonimo.get("/graphql", headers={"accept": "text/html"})
        assert pagina.status_code == 200 and "graphiql" in pagina.text.lower(), "GraphiQL's page runs nothing"


async def test_a_reader_may_query_but_not_mutate(http: httpx.AsyncClient, app: Starlette) -> None:
    lectura = cabecera(Rol.LECTURA)
    r = await http.post("/graphql", json={"query": "{ clientes { id } nodo { id } }"}, headers=lectura)
    assert r.json() == {"data": {"clientes": [], "nodo": {"id": "nodo1"}}}
    async with sin_cambios(app):
        r = await http.post("/graphql", json={"query": CREAR}, headers=lectura)
    [fallo] = r.json()["errors"]
    assert r.json()["data"] is None
    assert fallo["extensions"] == {
        "codigo": "PROHIBIDO",
        "code": "FORBIDDEN",
        "detalle": {"rol": "lectura", "necesita": "operador"},
    }


async def test_an_operator_may_mutate(http: httpx.AsyncClient) -> None:
    r = await http.post("/graphql", json={"query": CREAR}, headers=cabecera(Rol.OPERADOR))
    assert r.json()["data"]["crearCliente"]["id"]


async def recibir_cierre(ws: Any) -> dict[str, Any]:
    """The next ASGI message the app sends, which must be a close."""
    mensaje: dict[str, Any] = await asyncio.wait_for(ws.al_cliente.get(), timeout=10)
    assert mensaje["type"] == "websocket.close", mensaje
    return mensaje


@pytest.mark.parametrize("payload", [{}, {"authorization": "Bearer no-es-nuestro"}, {"authorization": 7}])
async def test_a_websocket_without_a_valid_token_in_connection_init_is_closed_before_any_operation(
    app: Starlette, payload: dict[str, Any]
) -> None:
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": payload})
        assert (await recibir_cierre(ws))["code"] == 4403


async def test_a_websocket_with_a_readers_token_may_subscribe(app: Starlette) -> None:
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera(Rol.LECTURA)})
        assert await ws.recibir() == {"type": "connection_ack"}
        await ws.enviar({"id": "1", "type": "subscribe", "payload": {"query": "{ nodo { id } }"}})
        assert await ws.recibir() == {"id": "1", "type": "next", "payload": {"data": {"nodo": {"id": "nodo1"}}}}


async def test_a_websocket_message_over_the_limit_closes_the_connection(app: Starlette) -> None:
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera()})
        assert await ws.recibir() == {"type": "connection_ack"}
        await ws.enviar({"id": "1", "type": "subscribe", "payload": {"query": "#" + "x" * MAX_MENSAJE_WS}})
        assert (await recibir_cierre(ws))["code"] == 1009


async def test_subscriptions_past_the_limit_of_a_connection_are_refused_and_the_others_go_on(app: Starlette) -> None:
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera()})
        assert await ws.recibir() == {"type": "connection_ack"}
        for i in range(Limites().suscripciones + 1):
            await ws.enviar(
                {"id": str(i), "type": "subscribe", "payload": {"query": "subscription { pedidoCambiado { tipo } }"}}
            )
        refusada = await ws.recibir()
        assert refusada["id"] == str(Limites().suscripciones) and refusada["type"] == "error"
        assert refusada["payload"][0]["message"] == "Subscription limit reached"
        await ws.enviar({"id": "0", "type": "complete"})
        await ws.enviar({"id": "otra", "type": "subscribe", "payload": {"query": "{ nodo { id } }"}})
        assert await ws.recibir() == {"id": "otra", "type": "next", "payload": {"data": {"nodo": {"id": "nodo1"}}}}
