"""GraphQL mutations: each one, partial updates, the order walkthrough and fresh reads after a write."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from tests.integration.ayudas import datos, escribe, valores

CLIENTE = "id nombre email telefono direccion creadoEn"
PRODUCTO = "id nombre descripcion precio stock"
PEDIDO = (
    "id clienteId estado total nodoOrigen cliente { nombre } items { productoId cantidad subtotal producto { stock } }"
)


async def crear_cliente(http: httpx.AsyncClient, **campos: Any) -> dict[str, Any]:
    d = {"nombre": "Ana", "email": "ana@example.com", **campos}
    r = await datos(http, f"mutation($d: ClienteEntrada!) {{ crearCliente(datos: $d) {{ {CLIENTE} }} }}", d=d)
    cliente: dict[str, Any] = r["crearCliente"]
    return cliente


async def crear_producto(http: httpx.AsyncClient, **campos: Any) -> dict[str, Any]:
    d = {"nombre": "Taza", "precio": "12.50", "stock": 10, **campos}
    r = await datos(http, f"mutation($d: ProductoEntrada!) {{ crearProducto(datos: $d) {{ {PRODUCTO} }} }}", d=d)
    producto: dict[str, Any] = r["crearProducto"]
    return producto


async def crear_pedido(http: httpx.AsyncClient, cliente_id: str, *lineas: tuple[str, int]) -> dict[str, Any]:
    d = {"clienteId": cliente_id, "items": [{"productoId": p, "cantidad": n} for p, n in lineas]}
    r = await datos(http, f"mutation($d: PedidoEntrada!) {{ crearPedido(datos: $d) {{ {PEDIDO} }} }}", d=d)
    pedido: dict[str, Any] = r["crearPedido"]
    return pedido


async def cambiar_estado(http: httpx.AsyncClient, pedido_id: str, estado: str) -> dict[str, Any]:
    consulta = f"mutation($id: ID!, $e: EstadoPedido!) {{ cambiarEstadoPedido(id: $id, estado: $e) {{ {PEDIDO} }} }}"
    pedido: dict[str, Any] = (await datos(http, consulta, id=pedido_id, e=estado))["cambiarEstadoPedido"]
    return pedido


async def stock(http: httpx.AsyncClient, producto_id: str) -> int:
    unidades: int = (await datos(http, "query($id: ID!) { producto(id: $id) { stock } }", id=producto_id))["producto"][
        "stock"
    ]
    return unidades


async def test_order_walkthrough_confirmed_then_cancelled_gives_its_units_back(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, precio="12.50", stock=10)

    pedido = await crear_pedido(http, ana["id"], (taza["id"], 3))
    assert pedido["estado"] == "PENDIENTE"
    assert pedido["total"] == "37.50"
    assert pedido["nodoOrigen"] == "nodo1"
    assert pedido["cliente"] == {"nombre": "Ana"}
    assert pedido["items"] == [{"productoId": taza["id"], "cantidad": 3, "subtotal": "37.50", "producto": {"stock": 7}}]

    confirmado = await cambiar_estado(http, pedido["id"], "CONFIRMADO")
    assert confirmado["estado"] == "CONFIRMADO"
    assert confirmado["items"][0]["producto"] == {"stock": 7}

    cancelado = await cambiar_estado(http, pedido["id"], "CANCELADO")
    assert cancelado["estado"] == "CANCELADO"
    assert cancelado["items"][0]["producto"] == {"stock": 10}
    assert await stock(http, taza["id"]) == 10


async def test_crear_cliente_answers_the_new_client_and_logs_its_fields(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    async with escribe(app) as cambios:
        ana = await crear_cliente(http, email="  Ana@Example.com ", telefono="600 000 000")
    assert ana["nombre"] == "Ana" and ana["email"] == "Ana@example.com"
    assert ana["telefono"] == "600 000 000" and ana["direccion"] is None
    assert ana["creadoEn"].endswith("Z")
    assert {c.clave for c in cambios} == {ana["id"]}


async def test_actualizar_cliente_changes_only_the_fields_given(http: httpx.AsyncClient, app: Starlette) -> None:
    ana = await crear_cliente(http, telefono="600", direccion="Calle Mayor 1")
    consulta = f"mutation($id: ID!, $d: ClienteCambios!) {{ actualizarCliente(id: $id, datos: $d) {{ {CLIENTE} }} }}"

    async with escribe(app, ana["id"]) as cambios:
        r = await datos(http, consulta, id=ana["id"], d={"nombre": "Ana María"})

    assert r["actualizarCliente"] == {**ana, "nombre": "Ana María"}
    assert [c.campo for c in cambios] == ["nombre"]


async def test_null_clears_telefono_and_direccion_and_leaves_the_rest(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http, telefono="600", direccion="Calle Mayor 1")
    r = await datos(
        http,
        "mutation($id: ID!) { actualizarCliente(id: $id, datos: {telefono: null, direccion: null}) { nombre email"
        " telefono direccion } }",
        id=ana["id"],
    )
    assert r["actualizarCliente"] == {"nombre": "Ana", "email": "ana@example.com", "telefono": None, "direccion": None}


async def test_eliminar_cliente_answers_true_and_hides_the_client(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    luis = await crear_cliente(http, nombre="Luis", email="luis@example.com")
    r = await datos(http, "mutation($id: ID!) { eliminarCliente(id: $id) }", id=ana["id"])
    assert r == {"eliminarCliente": True}
    assert await datos(http, "{ clientes { id } }") == {"clientes": [{"id": luis["id"]}]}


async def test_crear_producto_answers_the_new_product(http: httpx.AsyncClient) -> None:
    taza = await crear_producto(http, precio=3, descripcion="de barro")
    assert taza["nombre"] == "Taza" and taza["descripcion"] == "de barro"
    assert taza["precio"] == "3.00" and taza["stock"] == 10
    r = await datos(http, 'mutation { crearProducto(datos: {nombre: "Plato", precio: "1.00"}) { descripcion stock } }')
    assert r["crearProducto"] == {"descripcion": None, "stock": 0}


async def test_actualizar_producto_changes_only_the_fields_given(http: httpx.AsyncClient, app: Starlette) -> None:
    taza = await crear_producto(http, descripcion="de barro")
    consulta = f"mutation($id: ID!, $d: ProductoCambios!) {{ actualizarProducto(id: $id, datos: $d) {{ {PRODUCTO} }} }}"

    async with escribe(app, taza["id"]) as cambios:
        r = await datos(http, consulta, id=taza["id"], d={"precio": "9.99"})
    assert r["actualizarProducto"] == {**taza, "precio": "9.99"}
    assert [c.campo for c in cambios] == ["precio"]

    r = await datos(http, consulta, id=taza["id"], d={"descripcion": None, "stock": 4})
    assert r["actualizarProducto"] == {**taza, "precio": "9.99", "descripcion": None, "stock": 4}


async def test_actualizar_producto_stock_becomes_an_adjustment_by_the_difference(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    taza = await crear_producto(http, stock=10)
    consulta = "mutation($id: ID!) { actualizarProducto(id: $id, datos: {stock: 4}) { stock } }"
    async with escribe(app, taza["id"]) as cambios:
        assert await datos(http, consulta, id=taza["id"]) == {"actualizarProducto": {"stock": 4}}
    assert valores(cambios, "stock", "salidas") == [6]


async def test_ajustar_stock_adds_and_removes_units(http: httpx.AsyncClient) -> None:
    taza = await crear_producto(http, stock=10)
    consulta = "mutation($id: ID!, $n: Int!) { ajustarStock(productoId: $id, cantidad: $n) { id stock } }"
    assert (await datos(http, consulta, id=taza["id"], n=5))["ajustarStock"] == {"id": taza["id"], "stock": 15}
    assert (await datos(http, consulta, id=taza["id"], n=-12))["ajustarStock"] == {"id": taza["id"], "stock": 3}


async def test_crear_pedido_merges_lines_of_the_same_product_and_prices_them(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, precio="1.25", stock=10)
    plato = await crear_producto(http, nombre="Plato", precio="0.10", stock=10)

    pedido = await crear_pedido(http, ana["id"], (taza["id"], 1), (plato["id"], 3), (taza["id"], 2))

    assert pedido["total"] == "4.05"
    assert pedido["items"] == [
        {"productoId": taza["id"], "cantidad": 3, "subtotal": "3.75", "producto": {"stock": 7}},
        {"productoId": plato["id"], "cantidad": 3, "subtotal": "0.30", "producto": {"stock": 7}},
    ]


async def test_cambiar_estado_pedido_moves_an_order_to_delivered(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=2)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 2))
    for estado in ("CONFIRMADO", "ENVIADO", "ENTREGADO"):
        assert (await cambiar_estado(http, pedido["id"], estado))["estado"] == estado
    assert await stock(http, taza["id"]) == 0


async def test_eliminar_pedido_answers_true_and_a_pending_order_returns_its_units(http: httpx.AsyncClient) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=5)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 5))
    assert await stock(http, taza["id"]) == 0

    assert await datos(http, "mutation($id: ID!) { eliminarPedido(id: $id) }", id=pedido["id"]) == {
        "eliminarPedido": True
    }
    assert await datos(http, "{ pedidos { id } }") == {"pedidos": []}
    assert await stock(http, taza["id"]) == 5


async def test_a_later_field_of_the_same_document_reads_what_an_earlier_mutation_wrote(
    http: httpx.AsyncClient,
) -> None:
    ana = await crear_cliente(http)
    taza = await crear_producto(http, stock=10)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 1))

    r = await datos(
        http,
        """mutation($p: ID!, $c: ID!, $t: ID!) {
            antes: cambiarEstadoPedido(id: $p, estado: CONFIRMADO) { cliente { nombre } items { producto { stock } } }
            renombrar: actualizarCliente(id: $c, datos: {nombre: "Ana María"}) { nombre }
            reponer: ajustarStock(productoId: $t, cantidad: 5) { stock }
            despues: cambiarEstadoPedido(id: $p, estado: ENVIADO) { cliente { nombre } items { producto { stock } } }
        }""",
        p=pedido["id"],
        c=ana["id"],
        t=taza["id"],
    )

    assert r["antes"] == {"cliente": {"nombre": "Ana"}, "items": [{"producto": {"stock": 9}}]}
    assert r["despues"] == {"cliente": {"nombre": "Ana María"}, "items": [{"producto": {"stock": 14}}]}
