"""REST: /api/pedidos, the order life cycle, stock, filters, refusals and conflicts."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.integration.ayudas import (
    cancelacion_concurrente,
    crear_cliente,
    crear_pedido,
    crear_producto,
    error,
    escribe,
    mover,
    registro,
    sin_cambios,
    stock,
    valores,
)
from tests.procesos import esperar

CAMPOS = {"id", "cliente_id", "items", "estado", "total", "creado_en", "nodo_origen"}


async def test_order_walkthrough_confirmed_then_cancelled_returns_its_units_to_stock(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, precio="12.50", stock=10)
    plato = await crear_producto(http, nombre="Plato", precio="0.10", stock=5)

    async with escribe(app) as alta:
        r = await http.post(
            "/api/pedidos",
            json={
                "cliente_id": ana["id"],
                "items": [{"producto_id": taza["id"], "cantidad": 3}, {"producto_id": plato["id"], "cantidad": 3}],
            },
        )
    assert r.status_code == 201
    pedido = r.json()
    assert set(pedido) == CAMPOS
    assert r.headers["location"] == f"/api/pedidos/{pedido['id']}"
    assert pedido["estado"] == "pendiente"
    assert pedido["cliente_id"] == ana["id"]
    assert pedido["nodo_origen"] == "nodo1"
    assert pedido["total"] == "37.80"
    assert pedido["items"] == [
        {"producto_id": taza["id"], "cantidad": 3, "precio_unitario": "12.50", "subtotal": "37.50"},
        {"producto_id": plato["id"], "cantidad": 3, "precio_unitario": "0.10", "subtotal": "0.30"},
    ]
    assert {c.clave for c in alta} == {pedido["id"], taza["id"], plato["id"]}
    assert (await stock(http, taza["id"]), await stock(http, plato["id"])) == (7, 2)

    async with escribe(app, pedido["id"]) as confirmacion:
        confirmado = await mover(http, pedido["id"], "confirmado")
    assert confirmado == {**pedido, "estado": "confirmado"}
    assert valores(confirmacion, "pedido", "estado") == ["confirmado"]
    assert await stock(http, taza["id"]) == 7

    async with escribe(app, pedido["id"]) as cancelacion:
        cancelado = await mover(http, pedido["id"], "cancelado")
    assert cancelado["estado"] == "cancelado"
    # Units come back as a function of the order's state: no stock change is written. On a
    # cluster of one node nobody else can ship the order, so the cancel is settled at once.
    assert valores(cancelacion, "pedido", "estado") == ["cancelado"]
    assert valores(cancelacion, "pedido", "devuelto") == [True]
    assert {c.entidad for c in cancelacion} == {"pedido"}
    assert (await stock(http, taza["id"]), await stock(http, plato["id"])) == (10, 5)
    assert (await http.get(f"/api/pedidos/{pedido['id']}")).json() == cancelado
    await registro(app)


async def test_order_moves_forward_to_delivered_keeping_its_units_sold(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=4)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 4))
    entregado = await mover(http, pedido["id"], "confirmado", "enviado", "entregado")
    assert entregado["estado"] == "entregado"
    assert await stock(http, taza["id"]) == 0


async def test_lines_of_the_same_product_are_merged_into_one(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, precio="2.00", stock=10)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 1), (taza["id"], 2))
    assert pedido["items"] == [
        {"producto_id": taza["id"], "cantidad": 3, "precio_unitario": "2.00", "subtotal": "6.00"}
    ]
    assert pedido["total"] == "6.00"
    assert await stock(http, taza["id"]) == 7


async def test_orders_are_listed_and_filtered_by_estado_and_by_client(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    luis = await crear_cliente(http, email="luis@example.com")
    taza = await crear_producto(http, stock=10)
    p1 = await crear_pedido(http, ana["id"], (taza["id"], 1))
    p2 = await crear_pedido(http, luis["id"], (taza["id"], 1))
    p3 = await crear_pedido(http, ana["id"], (taza["id"], 1))
    p3 = await mover(http, p3["id"], "confirmado")

    async def ids(consulta: str) -> list[str]:
        r = await http.get(f"/api/pedidos{consulta}")
        assert r.status_code == 200, r.text
        return [p["id"] for p in r.json()]

    assert (await http.get("/api/pedidos")).json() == [p1, p2, p3]
    assert await ids("?estado=pendiente") == [p1["id"], p2["id"]]
    assert await ids("?estado=confirmado") == [p3["id"]]
    assert await ids("?estado=entregado") == []
    assert await ids(f"?cliente_id={ana['id']}") == [p1["id"], p3["id"]]
    assert await ids(f"?cliente_id={ana['id']}&estado=pendiente") == [p1["id"]]
    assert await ids("?cliente_id=nadie") == []


@pytest.mark.parametrize("estado", ["pagado", "", "PENDIENTE"])
async def test_filtering_by_an_unknown_estado_is_422(http: httpx.AsyncClient, estado: str) -> None:
    detalle = error(await http.get("/api/pedidos", params={"estado": estado}), 422, "VALIDACION")
    assert detalle["campo"] == "estado"
    assert "pendiente" in detalle["permitidos"]


@pytest.mark.parametrize(
    ("camino", "siguiente"),
    [
        ((), "enviado"),
        ((), "entregado"),
        (("confirmado",), "pendiente"),
        (("confirmado",), "entregado"),
        (("confirmado", "enviado"), "cancelado"),
        (("confirmado", "enviado", "entregado"), "cancelado"),
        (("cancelado",), "confirmado"),
        (("confirmado", "enviado", "entregado"), "enviado"),
    ],
)
async def test_illegal_transition_is_409_and_leaves_the_order_as_it_was(
    http: httpx.AsyncClient, app: Starlette, camino: tuple[str, ...], siguiente: str
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 2))
    if camino:
        pedido = await mover(http, pedido["id"], *camino)
    unidades = await stock(http, taza["id"])
    async with sin_cambios(app):
        detalle = error(
            await http.put(f"/api/pedidos/{pedido['id']}/estado", json={"estado": siguiente}),
            409,
            "TRANSICION_INVALIDA",
        )
    assert detalle["actual"] == pedido["estado"]
    assert detalle["pedido"] == siguiente
    assert siguiente not in detalle["permitidos"]
    assert (await http.get(f"/api/pedidos/{pedido['id']}")).json() == pedido
    assert await stock(http, taza["id"]) == unidades


@pytest.mark.parametrize("camino", [(), ("confirmado",), ("cancelado",), ("confirmado", "enviado", "entregado")])
async def test_asking_for_the_estado_an_order_is_in_answers_it_and_writes_nothing(
    http: httpx.AsyncClient, app: Starlette, camino: tuple[str, ...]
) -> None:
    """A client that lost the answer to a transition retries it: the retry must not be refused."""
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 2))
    if camino:
        pedido = await mover(http, pedido["id"], *camino)
    async with sin_cambios(app):
        assert await mover(http, pedido["id"], pedido["estado"]) == pedido


@pytest.mark.parametrize(
    "cuerpo",
    [{}, {"estado": "pagado"}, {"estado": None}, {"estado": "confirmado", "x": 1}, ["confirmado"], "confirmado"],
)
async def test_estado_change_needs_an_object_with_a_known_estado(
    http: httpx.AsyncClient, app: Starlette, cuerpo: Any
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 1))
    async with sin_cambios(app):
        error(await http.put(f"/api/pedidos/{pedido['id']}/estado", json=cuerpo), 422, "VALIDACION")
    assert (await http.get(f"/api/pedidos/{pedido['id']}")).json() == pedido


async def test_insufficient_stock_is_409_and_nothing_is_written(http: httpx.AsyncClient, app: Starlette) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    plato = await crear_producto(http, nombre="Plato", stock=1)
    async with sin_cambios(app):
        r = await http.post(
            "/api/pedidos",
            json={
                "cliente_id": ana["id"],
                "items": [{"producto_id": taza["id"], "cantidad": 2}, {"producto_id": plato["id"], "cantidad": 2}],
            },
        )
        detalle = error(r, 409, "STOCK_INSUFICIENTE")
    assert detalle == {
        "producto_id": plato["id"],
        "pedido": 2,
        "disponible_aqui": 1,
        "disponible_global": 1,
        "motivo": "agotado",
    }
    # The line that could be served was not served either.
    assert (await stock(http, taza["id"]), await stock(http, plato["id"])) == (5, 1)
    assert (await http.get("/api/pedidos")).json() == []


async def test_deleting_a_pending_order_cancels_it_returns_its_units_and_then_it_is_404(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 2))
    assert await stock(http, taza["id"]) == 3

    async with escribe(app, pedido["id"]) as baja:
        r = await http.delete(f"/api/pedidos/{pedido['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert [(c.campo, c.valor) for c in baja] == [
        ("estado", '"cancelado"'),
        ("devuelto", "true"),
        ("eliminado_en", '"cancelado"'),
    ]
    assert await stock(http, taza["id"]) == 5
    error(await http.get(f"/api/pedidos/{pedido['id']}"), 404, "NO_ENCONTRADO")
    assert (await http.get("/api/pedidos")).json() == []
    async with sin_cambios(app):
        error(await http.delete(f"/api/pedidos/{pedido['id']}"), 404, "NO_ENCONTRADO")
        error(
            await http.put(f"/api/pedidos/{pedido['id']}/estado", json={"estado": "confirmado"}), 404, "NO_ENCONTRADO"
        )


async def test_deleting_a_delivered_order_keeps_its_units_sold(http: httpx.AsyncClient, app: Starlette) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 2))
    await mover(http, pedido["id"], "confirmado", "enviado", "entregado")
    async with escribe(app, pedido["id"]) as baja:
        assert (await http.delete(f"/api/pedidos/{pedido['id']}")).status_code == 204
    assert [(c.campo, c.valor) for c in baja] == [("eliminado_en", '"entregado"')]
    assert await stock(http, taza["id"]) == 3
    error(await http.get(f"/api/pedidos/{pedido['id']}"), 404, "NO_ENCONTRADO")


async def test_order_for_an_unknown_or_deleted_client_or_product_is_404_and_changes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    luis = await crear_cliente(http, email="luis@example.com")
    taza = await crear_producto(http, stock=5)
    await http.delete(f"/api/clientes/{luis['id']}")

    casos = [
        ("no-existe", taza["id"], {"entidad": "cliente", "id": "no-existe"}),
        (luis["id"], taza["id"], {"entidad": "cliente", "id": luis["id"]}),
        (ana["id"], "no-existe", {"entidad": "producto", "id": "no-existe"}),
    ]
    for cliente_id, producto_id, esperado in casos:
        async with sin_cambios(app):
            r = await http.post(
                "/api/pedidos", json={"cliente_id": cliente_id, "items": [{"producto_id": producto_id, "cantidad": 1}]}
            )
            assert error(r, 404, "NO_ENCONTRADO") == esperado
    assert await stock(http, taza["id"]) == 5
    error(await http.get("/api/pedidos/no-existe"), 404, "NO_ENCONTRADO")
    error(await http.delete("/api/pedidos/no-existe"), 404, "NO_ENCONTRADO")


@pytest.mark.parametrize(
    ("items", "campo"),
    [
        ([], "items"),
        ({"producto_id": "P", "cantidad": 1}, "items"),
        ([{"producto_id": "P", "cantidad": 0}], "items[0].cantidad"),
        ([{"producto_id": "P", "cantidad": -2}], "items[0].cantidad"),
        ([{"producto_id": "P", "cantidad": 1.5}], "items[0].cantidad"),
        ([{"producto_id": "P", "cantidad": "2"}], "items[0].cantidad"),
        ([{"producto_id": "P", "cantidad": 1}, {"producto_id": "P"}], "cantidad"),
        ([{"producto_id": "P", "cantidad": 1, "precio": "0.01"}], "precio"),
        ([{"producto_id": "no es un id!", "cantidad": 1}], "items[0].producto_id"),
        (["P"], None),
    ],
)
async def test_bad_order_lines_are_422_naming_the_field_and_change_nothing(
    http: httpx.AsyncClient, app: Starlette, items: Any, campo: str | None
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)

    def con_id(valor: Any) -> Any:
        if isinstance(valor, dict):
            return {k: (taza["id"] if v == "P" else v) for k, v in valor.items()}
        if isinstance(valor, list):
            return [con_id(x) for x in valor]
        return valor

    async with sin_cambios(app):
        r = await http.post("/api/pedidos", json={"cliente_id": ana["id"], "items": con_id(items)})
        assert error(r, 422, "VALIDACION")["campo"] == campo
    assert await stock(http, taza["id"]) == 5


@pytest.mark.parametrize(
    "cuerpo",
    [
        {},
        {"items": []},
        {"cliente_id": 7, "items": []},
        {"cliente_id": "C"},
        {"cliente_id": "C", "items": [], "estado": "entregado"},
        [],
        None,
    ],
)
async def test_order_without_its_required_shape_is_422(http: httpx.AsyncClient, app: Starlette, cuerpo: Any) -> None:
    ana = await crear_cliente(http)
    if isinstance(cuerpo, dict) and cuerpo.get("cliente_id") == "C":
        cuerpo = {**cuerpo, "cliente_id": ana["id"]}
    async with sin_cambios(app):
        # Sent as text: httpx would send no body at all for ``json=None``.
        error(await http.post("/api/pedidos", content=json.dumps(cuerpo)), 422, "VALIDACION")
    assert (await http.get("/api/pedidos")).json() == []


async def test_conflicts_list_the_losing_estado_of_a_concurrent_change(http: httpx.AsyncClient, app: Starlette) -> None:
    assert (await http.get("/api/conflictos")).json() == []
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 2))
    alta = [c for c in await registro(app) if c.clave == pedido["id"] and c.campo == "estado"][0]
    await mover(http, pedido["id"], "confirmado")
    confirmacion = (await registro(app))[-1]
    assert confirmacion.campo == "estado" and confirmacion.base == ""

    # nodo2 cancelled the same pending order having seen its creation, not the confirmation.
    [remoto] = (await cancelacion_concurrente(app, pedido["id"], {"nodo1": alta.seq})).aplicados

    r = await http.get("/api/conflictos")
    assert r.status_code == 200
    [conflicto] = r.json()
    assert conflicto["pedido_id"] == pedido["id"]
    assert conflicto["ganador"] == f"{remoto.hlc}:nodo2"
    assert conflicto["perdedor"] == f"{confirmacion.hlc}:nodo1"
    assert (await http.get(f"/api/pedidos/{pedido['id']}")).json()["estado"] == "cancelado"
    # A cancellation merged from elsewhere is settled by the node's background task (no other
    # member here to wait for), and only then are its units back.
    await esperar(lambda: _stock_es(http, taza["id"], 5), 5, que="the merged cancel is settled")
    assert await stock(http, taza["id"]) == 5


async def _stock_es(http: httpx.AsyncClient, producto_id: str, unidades: int) -> bool:
    return await stock(http, producto_id) == unidades
