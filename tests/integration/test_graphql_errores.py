"""GraphQL errors: domain codes in ``extensions``, nothing written on a refusal, internal errors masked."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from esquema import Limites
from servidor.acceso import Rol
from servidor.dominio import Dominio
from tests.credenciales import cabecera
from tests.integration.ayudas import error, gql, sin_cambios
from tests.integration.test_graphql_consultas import websocket
from tests.integration.test_graphql_limites import fragmentos_encadenados

NINGUNO = "01a00000-0000-7000-8000-000000000000"


def error_unico(cuerpo: dict[str, Any], codigo: str) -> dict[str, Any]:
    """Assert one error with ``codigo``; answer its ``detalle``."""
    [error] = cuerpo["errors"]
    assert error["extensions"]["codigo"] == codigo, error
    assert error["message"]
    detalle: dict[str, Any] = error["extensions"].get("detalle", {})
    return detalle


async def base(app: Starlette, stock: int = 5) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A client, a product and a pending order of 2 units of it."""
    dominio = app.state.dominio
    cliente = await dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    producto = await dominio.crear_producto({"nombre": "Taza", "precio": "1.00", "stock": stock})
    pedido = await dominio.crear_pedido(
        {"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 2}]}
    )
    return cliente, producto, pedido


async def test_updating_an_unknown_client_is_no_encontrado_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    async with sin_cambios(app):
        cuerpo = await gql(
            http, 'mutation($id: ID!) { actualizarCliente(id: $id, datos: {nombre: "X"}) { id } }', id=NINGUNO
        )
    assert cuerpo["data"] is None
    assert error_unico(cuerpo, "NO_ENCONTRADO") == {"entidad": "cliente", "id": NINGUNO}
    assert cuerpo["errors"][0]["path"] == ["actualizarCliente"]


async def test_reading_an_unknown_order_is_null_with_no_encontrado(http: httpx.AsyncClient) -> None:
    cuerpo = await gql(http, "query($id: ID!) { pedido(id: $id) { id } nodo { id } }", id=NINGUNO)
    assert cuerpo["data"] == {"pedido": None, "nodo": {"id": "nodo1"}}
    assert error_unico(cuerpo, "NO_ENCONTRADO") == {"entidad": "pedido", "id": NINGUNO}


async def test_an_order_for_an_unknown_product_is_no_encontrado_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    cliente, _, _ = await base(app)
    async with sin_cambios(app):
        cuerpo = await gql(
            http,
            "mutation($c: ID!, $p: ID!) { crearPedido(datos: {clienteId: $c, items: [{productoId: $p, cantidad: 1}]})"
            " { id } }",
            c=cliente["id"],
            p=NINGUNO,
        )
    assert error_unico(cuerpo, "NO_ENCONTRADO") == {"entidad": "producto", "id": NINGUNO}


@pytest.mark.parametrize(
    ("datos", "campo"),
    [
        ({"nombre": "Ana", "email": "no es un email"}, "email"),
        ({"nombre": "   ", "email": "ana@example.com"}, "nombre"),
        ({"nombre": "Ana", "email": "ana@example.com", "telefono": "6" * 51}, "telefono"),
    ],
    ids=["bad-email", "blank-name", "long-phone"],
)
async def test_a_bad_client_is_validacion_naming_the_field_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette, datos: dict[str, Any], campo: str
) -> None:
    async with sin_cambios(app):
        cuerpo = await gql(http, "mutation($d: ClienteEntrada!) { crearCliente(datos: $d) { id } }", d=datos)
    assert error_unico(cuerpo, "VALIDACION")["campo"] == campo


async def test_null_for_a_required_field_of_an_update_is_validacion(http: httpx.AsyncClient, app: Starlette) -> None:
    cliente, _, _ = await base(app)
    async with sin_cambios(app):
        cuerpo = await gql(
            http, "mutation($id: ID!) { actualizarCliente(id: $id, datos: {nombre: null}) { id } }", id=cliente["id"]
        )
    assert error_unico(cuerpo, "VALIDACION")["campo"] == "nombre"


async def test_an_update_with_no_fields_is_validacion(http: httpx.AsyncClient, app: Starlette) -> None:
    _, producto, _ = await base(app)
    async with sin_cambios(app):
        cuerpo = await gql(
            http, "mutation($id: ID!) { actualizarProducto(id: $id, datos: {}) { id } }", id=producto["id"]
        )
    error_unico(cuerpo, "VALIDACION")


async def test_a_price_with_three_decimals_is_validacion(http: httpx.AsyncClient, app: Starlette) -> None:
    async with sin_cambios(app):
        cuerpo = await gql(http, 'mutation { crearProducto(datos: {nombre: "Taza", precio: "1.005"}) { id } }')
    assert error_unico(cuerpo, "VALIDACION") == {"campo": "precio"}


@pytest.mark.parametrize("precio", ["4_50", "\u0664.\u0665\u0660", " 4.50", "4.5e1", "NaN"])
async def test_a_price_not_written_as_plain_digits_is_validacion(
    http: httpx.AsyncClient, app: Starlette, precio: str
) -> None:
    literal = 'mutation { crearProducto(datos: {nombre: "Taza", precio: ' + json.dumps(precio) + "}) { id } }"
    variable = "mutation($d: ProductoEntrada!) { crearProducto(datos: $d) { id } }"
    async with sin_cambios(app):
        error_unico(await gql(http, literal), "VALIDACION")
        error_unico(await gql(http, variable, d={"nombre": "Taza", "precio": precio}), "VALIDACION")


async def test_a_price_of_minus_zero_is_zero(http: httpx.AsyncClient) -> None:
    cuerpo = await gql(http, 'mutation { crearProducto(datos: {nombre: "Taza", precio: "-0"}) { precio } }')
    assert cuerpo == {"data": {"crearProducto": {"precio": "0.00"}}}


@pytest.mark.parametrize(
    ("peticion", "campo"),
    [
        ({"variables": {"d": {"nombre": "\ud800", "email": "ana@example.com"}}}, "variables.d.nombre"),
        (
            {"variables": {"d": {"nombre": "Ana", "email": "ana@example.com", "direccion": "\udfff"}}},
            "variables.d.direccion",
        ),
        (
            {"variables": {"d": {"nombre": "Ana", "email": "ana@example.com"}}, "operationName": "\ud800"},
            "operationName",
        ),
    ],
)
async def test_a_lone_surrogate_in_a_request_is_422_validacion_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette, peticion: dict[str, Any], campo: str
) -> None:
    consulta = "mutation($d: ClienteEntrada!) { crearCliente(datos: $d) { id } }"
    # ensure_ascii: the JSON escapes the surrogate, as a client's encoder would.
    cuerpo = json.dumps({"query": consulta, **peticion}).encode()
    async with sin_cambios(app):
        r = await http.post("/graphql", content=cuerpo, headers={"content-type": "application/json"})
    assert error(r, 422, "VALIDACION") == {"campo": campo}


async def test_an_order_beyond_the_stock_is_stock_insuficiente_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    cliente, producto, _ = await base(app, stock=5)
    async with sin_cambios(app):
        cuerpo = await gql(
            http,
            "mutation($c: ID!, $p: ID!) { crearPedido(datos: {clienteId: $c, items: [{productoId: $p, cantidad: 4}]})"
            " { id } }",
            c=cliente["id"],
            p=producto["id"],
        )
    assert error_unico(cuerpo, "STOCK_INSUFICIENTE") == {
        "producto_id": producto["id"],
        "pedido": 4,
        "disponible_aqui": 3,
        "disponible_global": 3,
        "motivo": "agotado",
    }


async def test_removing_more_units_than_in_stock_is_stock_insuficiente(http: httpx.AsyncClient, app: Starlette) -> None:
    _, producto, _ = await base(app, stock=5)
    async with sin_cambios(app):
        cuerpo = await gql(
            http, "mutation($p: ID!) { ajustarStock(productoId: $p, cantidad: -4) { stock } }", p=producto["id"]
        )
    assert error_unico(cuerpo, "STOCK_INSUFICIENTE")["disponible_global"] == 3


async def test_an_illegal_transition_is_transicion_invalida_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    _, _, pedido = await base(app)
    await app.state.dominio.cambiar_estado(pedido["id"], "cancelado")
    async with sin_cambios(app):
        cuerpo = await gql(
            http, "mutation($id: ID!) { cambiarEstadoPedido(id: $id, estado: ENVIADO) { estado } }", id=pedido["id"]
        )
    assert cuerpo["data"] is None
    assert error_unico(cuerpo, "TRANSICION_INVALIDA") == {"actual": "cancelado", "pedido": "enviado", "permitidos": []}


async def test_a_wrong_argument_type_is_refused_before_running_with_code_validacion(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    _, producto, _ = await base(app)
    async with sin_cambios(app):
        literal = await gql(
            http, 'mutation($p: ID!) { ajustarStock(productoId: $p, cantidad: "x") { stock } }', p=producto["id"]
        )
        variable = await gql(
            http,
            "mutation($p: ID!, $n: Int!) { ajustarStock(productoId: $p, cantidad: $n) { stock } }",
            p=producto["id"],
            n="x",
        )
        estado = await gql(http, 'mutation { cambiarEstadoPedido(id: "x", estado: PERDIDO) { estado } }')
    for cuerpo in (literal, variable, estado):
        assert cuerpo["data"] is None
        error_unico(cuerpo, "VALIDACION")
        assert "path" not in cuerpo["errors"][0]


async def test_a_syntax_error_or_an_unknown_field_has_code_validacion(http: httpx.AsyncClient) -> None:
    sintaxis = await gql(http, "{ clientes { id ")
    desconocido = await gql(http, "{ clientes { apellido } }")
    assert "Syntax Error" in sintaxis["errors"][0]["message"]
    error_unico(sintaxis, "VALIDACION")
    assert "apellido" in desconocido["errors"][0]["message"]
    error_unico(desconocido, "VALIDACION")


async def test_an_internal_error_is_masked_logged_and_leaks_nothing(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def roto(self: Dominio, *args: Any) -> list[dict[str, Any]]:
        raise RuntimeError("tabla_secreta: disk I/O error")

    monkeypatch.setattr(Dominio, "listar_clientes", roto)
    with caplog.at_level(logging.ERROR, logger="esquema.errores"):
        r = await http.post("/graphql", json={"query": "{ clientes { id } nodo { id } }"})

    assert r.status_code == 200
    assert "tabla_secreta" not in r.text and "RuntimeError" not in r.text
    cuerpo = r.json()
    assert cuerpo["data"] is None  # ``clientes`` is a non-null list, so the null reaches the root
    [error] = cuerpo["errors"]
    assert error["message"] == "Unexpected error."
    assert "codigo" not in error.get("extensions", {})
    [registro] = [x for x in caplog.records if x.name == "esquema.errores"]
    assert "tabla_secreta" in registro.getMessage() and registro.exc_info is not None


# --- on the websocket -------------------------------------------------------------


async def respuesta_ws(ws: Any, id: str) -> dict[str, Any]:
    """The ``next`` or ``error`` message of operation ``id``; ``complete`` and the other operations' are skipped."""
    while True:
        mensaje: dict[str, Any] = await ws.recibir()
        if mensaje.get("id") == id and mensaje["type"] in ("next", "error"):
            return mensaje


def codigos(errores: list[dict[str, Any]]) -> list[str]:
    return [e.get("extensions", {}).get("codigo") for e in errores]


async def test_errors_on_the_websocket_carry_their_code_as_over_http(app: Starlette) -> None:
    operaciones = {
        "documento": ("subscription { pedidoCambiado { nada } }", {}, "VALIDACION"),
        "limites": (fragmentos_encadenados(25, 2), {}, "VALIDACION"),
        "dominio": ("query($id: ID!) { pedido(id: $id) { id } }", {"id": NINGUNO}, "NO_ENCONTRADO"),
        "rol": ('mutation { eliminarCliente(id: "x") }', {}, "PROHIBIDO"),
    }
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera(Rol.LECTURA)})
        assert await ws.recibir() == {"type": "connection_ack"}
        for id, (consulta, variables, codigo) in operaciones.items():
            await ws.enviar({"id": id, "type": "subscribe", "payload": {"query": consulta, "variables": variables}})
            mensaje = await respuesta_ws(ws, id)
            errores = mensaje["payload"] if mensaje["type"] == "error" else mensaje["payload"]["errors"]
            assert codigos(errores) == [codigo], mensaje


async def test_a_lone_surrogate_in_websocket_variables_is_validacion_naming_the_field(app: Starlette) -> None:
    crear = "mutation($d: ClienteEntrada!) { crearCliente(datos: $d) { id } }"
    variables = {"d": {"nombre": "Ana", "email": "ana@example.com", "direccion": "\udfff"}}
    async with sin_cambios(app), websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera()})
        assert await ws.recibir() == {"type": "connection_ack"}
        await ws.enviar({"id": "1", "type": "subscribe", "payload": {"query": crear, "variables": variables}})
        [error] = (await respuesta_ws(ws, "1"))["payload"]["errors"]
    assert error["extensions"]["codigo"] == "VALIDACION"
    assert error["extensions"]["detalle"] == {"campo": "direccion"}


async def test_an_operation_past_the_limit_of_a_websocket_is_refused_with_validacion(app: Starlette) -> None:
    async with websocket(app, "/graphql", "graphql-transport-ws") as ws:
        await ws.enviar({"type": "connection_init", "payload": cabecera()})
        assert await ws.recibir() == {"type": "connection_ack"}
        for i in range(Limites().suscripciones + 1):
            consulta = "subscription { pedidoCambiado { tipo } }"
            await ws.enviar({"id": str(i), "type": "subscribe", "payload": {"query": consulta}})
        refusada = await respuesta_ws(ws, str(Limites().suscripciones))
    assert refusada["type"] == "error"
    assert codigos(refusada["payload"]) == ["VALIDACION"]
