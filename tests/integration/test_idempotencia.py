"""Idempotency keys over REST and GraphQL on one node: a retry answers the first result and writes nothing.

Across nodes and partitions (the same key taken twice) see
``tests/integration/test_estado_cluster.py``.
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from servidor.dominio.ids import id_de_clave
from tests.integration.ayudas import crear_cliente, crear_producto, datos, error, gql, sin_cambios, stock

CLAVE = {"Idempotency-Key": "pedido-2026-0001"}


async def test_a_retried_order_with_its_key_answers_the_first_and_sells_once(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=10)
    cuerpo = {"cliente_id": ana["id"], "items": [{"producto_id": taza["id"], "cantidad": 3}]}
    primera = await http.post("/api/pedidos", json=cuerpo, headers=CLAVE)
    assert primera.status_code == 201 and "idempotent-replayed" not in primera.headers
    assert primera.json()["id"] == id_de_clave("pedido", CLAVE["Idempotency-Key"])
    async with sin_cambios(app):
        otra = await http.post("/api/pedidos", json=cuerpo, headers=CLAVE)
    assert otra.status_code == 201
    assert otra.headers["idempotent-replayed"] == "true"
    assert otra.headers["location"] == primera.headers["location"]
    assert otra.json() == primera.json()
    assert await stock(http, taza["id"]) == 7


async def test_a_key_reused_with_another_body_is_refused_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=10)
    cuerpo = {"cliente_id": ana["id"], "items": [{"producto_id": taza["id"], "cantidad": 3}]}
    assert (await http.post("/api/pedidos", json=cuerpo, headers=CLAVE)).status_code == 201
    cuerpo["items"][0]["cantidad"] = 4
    async with sin_cambios(app):
        r = await http.post("/api/pedidos", json=cuerpo, headers=CLAVE)
    assert error(r, 422, "IDEMPOTENCIA_CONFLICTO")["campo"] == "Idempotency-Key"
    assert await stock(http, taza["id"]) == 7


async def test_keys_of_clients_products_and_restocks_are_honoured_too(http: httpx.AsyncClient, app: Starlette) -> None:
    clave = {"Idempotency-Key": "alta-ana"}
    ana = await http.post("/api/clientes", json={"nombre": "Ana", "email": "ana@example.com"}, headers=clave)
    async with sin_cambios(app):
        otra = await http.post("/api/clientes", json={"nombre": "Ana", "email": "ana@example.com"}, headers=clave)
    assert (otra.status_code, otra.headers["idempotent-replayed"], otra.json()) == (201, "true", ana.json())

    clave = {"Idempotency-Key": "alta-taza"}
    taza = await http.post("/api/productos", json={"nombre": "Taza", "precio": "4.50", "stock": 10}, headers=clave)
    assert taza.status_code == 201 and taza.json()["stock"] == 10  # one node: settled at once
    async with sin_cambios(app):
        otra = await http.post("/api/productos", json={"nombre": "Taza", "precio": "4.50", "stock": 10}, headers=clave)
    assert otra.headers["idempotent-replayed"] == "true" and otra.json()["stock"] == 10

    ruta = f"/api/productos/{taza.json()['id']}/stock"
    clave = {"Idempotency-Key": "reposicion-7"}
    for _ in range(3):
        r = await http.post(ruta, json={"cantidad": 5}, headers=clave)
        assert r.status_code == 200 and r.json()["stock"] == 15
    assert r.headers["idempotent-replayed"] == "true"
    r = await http.post(ruta, json={"cantidad": -5}, headers={"Idempotency-Key": "retirada-1"})
    r = await http.post(ruta, json={"cantidad": -5}, headers={"Idempotency-Key": "retirada-1"})
    assert (r.json()["stock"], r.headers["idempotent-replayed"]) == (10, "true")
    assert error(await http.post(ruta, json={"cantidad": 6}, headers=clave), 422, "IDEMPOTENCIA_CONFLICTO")


async def test_a_malformed_key_is_refused_before_anything_is_read(http: httpx.AsyncClient, app: Starlette) -> None:
    for malo in ("", "x" * 65, "con espacio", "a/b", "clave?"):
        async with sin_cambios(app):
            r = await http.post(
                "/api/clientes", json={"nombre": "A", "email": "a@example.com"}, headers={"Idempotency-Key": malo}
            )
        assert error(r, 422, "VALIDACION")["campo"] == "Idempotency-Key"


CREAR = """mutation ($datos: PedidoEntrada!, $clave: String) {
  crearPedido(datos: $datos, claveIdempotencia: $clave) { id estado }
}"""


async def test_graphql_takes_the_same_keys_as_rest(http: httpx.AsyncClient, app: Starlette) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=10)
    entrada = {"clienteId": ana["id"], "items": [{"productoId": taza["id"], "cantidad": 2}]}
    primera = await datos(http, CREAR, datos=entrada, clave="gql-1")
    async with sin_cambios(app):
        otra = await datos(http, CREAR, datos=entrada, clave="gql-1")
    assert otra == primera
    rest = await http.post(
        "/api/pedidos",
        json={"cliente_id": ana["id"], "items": [{"producto_id": taza["id"], "cantidad": 2}]},
        headers={"Idempotency-Key": "gql-1"},
    )
    assert rest.json()["id"] == primera["crearPedido"]["id"]  # one key, one order, whichever API
    entrada["items"][0]["cantidad"] = 3
    malo = await gql(http, CREAR, datos=entrada, clave="gql-1")
    assert malo["errors"][0]["extensions"]["codigo"] == "IDEMPOTENCIA_CONFLICTO"
    assert await stock(http, taza["id"]) == 8


async def test_openapi_describes_the_key_and_the_replayed_header(http: httpx.AsyncClient) -> None:
    documento = (await http.get("/api/openapi.json")).json()
    for ruta in ("/api/pedidos", "/api/clientes", "/api/productos", "/api/productos/{id}/stock"):
        operacion = documento["paths"][ruta]["post"]
        assert "Idempotency-Key" in {p["name"] for p in operacion["parameters"] if p["in"] == "header"}
        respuesta = operacion["responses"]["201" if not ruta.endswith("stock") else "200"]
        assert "Idempotent-Replayed" in respuesta["headers"]
