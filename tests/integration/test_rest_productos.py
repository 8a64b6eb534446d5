"""REST: /api/productos, create, list, read, update, stock adjustments, and refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.integration.ayudas import crear_producto, error, escribe, registro, sin_cambios, stock, valores

CAMPOS = {"id", "nombre", "descripcion", "precio", "stock", "por_devolver", "por_confirmar", "derechos", "creado_en"}


@pytest.mark.parametrize(("precio", "esperado"), [("12.5", "12.50"), (3, "3.00"), (0.1, "0.10"), ("0", "0.00")])
async def test_created_product_renders_its_price_as_a_two_decimal_string(
    http: httpx.AsyncClient, precio: Any, esperado: str
) -> None:
    r = await http.post("/api/productos", json={"nombre": "Taza", "precio": precio})
    assert r.status_code == 201
    producto = r.json()
    assert set(producto) == CAMPOS
    assert producto["precio"] == esperado
    assert producto["stock"] == 0
    assert producto["descripcion"] is None
    assert r.headers["location"] == f"/api/productos/{producto['id']}"


# Decimal() and int() read all of these; money is written with ASCII digits, a point and two decimals at most.
PRECIOS_SUELTOS = ["4_50", "\u0664\u0665\u0660", "4.5e1", " 4.50", "4.50 ", "+4.50", "4.", ".50", "Infinity", "0x10"]


@pytest.mark.parametrize("precio", PRECIOS_SUELTOS)
async def test_a_price_not_written_as_plain_digits_is_refused(
    http: httpx.AsyncClient, app: Starlette, precio: str
) -> None:
    async with sin_cambios(app):
        detalle = error(await http.post("/api/productos", json={"nombre": "Taza", "precio": precio}), 422, "VALIDACION")
    assert detalle["campo"] == "precio"


@pytest.mark.parametrize("precio", ["-0", "-0.00", -0.0])
async def test_a_price_of_minus_zero_is_stored_as_zero(http: httpx.AsyncClient, app: Starlette, precio: Any) -> None:
    async with escribe(app) as cambios:
        r = await http.post("/api/productos", json={"nombre": "Taza", "precio": precio})
    assert r.status_code == 201 and r.json()["precio"] == "0.00"
    assert valores(cambios, "producto", "precio") == ["0.00"]


async def test_created_products_are_listed_and_readable_by_id(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/productos")).json() == []
    taza = await crear_producto(http, nombre="Taza", descripcion="Cerámica blanca", stock=5)
    plato = await crear_producto(http, nombre="Plato", precio="9999999999.99")
    assert taza["stock"] == 5
    assert (await http.get("/api/productos")).json() == [taza, plato]
    assert (await http.get(f"/api/productos/{plato['id']}")).json() == plato
    assert plato["precio"] == "9999999999.99"


async def test_product_update_changes_name_description_and_price(http: httpx.AsyncClient, app: Starlette) -> None:
    taza = await crear_producto(http)
    async with escribe(app, taza["id"]) as cambios:
        r = await http.put(f"/api/productos/{taza['id']}", json={"nombre": "Taza XL", "descripcion": "", "precio": 15})
    assert r.status_code == 200
    assert r.json() == {**taza, "nombre": "Taza XL", "descripcion": None, "precio": "15.00"}
    assert (await http.get(f"/api/productos/{taza['id']}")).json() == r.json()
    assert valores(cambios, "producto", "precio") == ["15.00"]


async def test_setting_stock_through_put_adjusts_it_by_the_difference(http: httpx.AsyncClient, app: Starlette) -> None:
    taza = await crear_producto(http, stock=10)
    async with escribe(app, taza["id"]) as bajada:
        r = await http.put(f"/api/productos/{taza['id']}", json={"stock": 4})
    assert r.json()["stock"] == 4
    # The counter entries only grow: lowering stock is 6 more units out, not a new absolute value.
    assert valores(bajada, "stock", "salidas") == [6]
    assert valores(bajada, "stock", "entradas") == []

    async with escribe(app, taza["id"]) as subida:
        r = await http.put(f"/api/productos/{taza['id']}", json={"stock": 15})
    assert r.json()["stock"] == 15
    assert valores(subida, "stock", "entradas") == [21]
    assert await stock(http, taza["id"]) == 15


async def test_putting_the_same_stock_writes_no_stock_change(http: httpx.AsyncClient, app: Starlette) -> None:
    taza = await crear_producto(http, stock=7)
    async with sin_cambios(app):
        r = await http.put(f"/api/productos/{taza['id']}", json={"stock": 7})
    assert r.status_code == 200
    assert r.json() == taza


async def test_stock_endpoint_adds_and_removes_units(http: httpx.AsyncClient, app: Starlette) -> None:
    taza = await crear_producto(http, stock=10)
    async with escribe(app, taza["id"]) as entrada:
        r = await http.post(f"/api/productos/{taza['id']}/stock", json={"cantidad": 5})
    assert r.status_code == 200
    assert r.json() == {**taza, "stock": 15, "derechos": {"nodo1": 15}}
    assert valores(entrada, "stock", "entradas") == [15]

    r = await http.post(f"/api/productos/{taza['id']}/stock", json={"cantidad": -15})
    assert r.status_code == 200
    assert r.json()["stock"] == 0
    assert await stock(http, taza["id"]) == 0


async def test_removing_more_units_than_in_stock_is_409_and_changes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    taza = await crear_producto(http, stock=3)
    async with sin_cambios(app):
        detalle = error(
            await http.post(f"/api/productos/{taza['id']}/stock", json={"cantidad": -4}), 409, "STOCK_INSUFICIENTE"
        )
        error(await http.put(f"/api/productos/{taza['id']}", json={"stock": -1}), 422, "VALIDACION")
    assert detalle == {
        "producto_id": taza["id"],
        "pedido": 4,
        "disponible_aqui": 3,
        "disponible_global": 3,
        "motivo": "agotado",
    }
    assert await stock(http, taza["id"]) == 3


@pytest.mark.parametrize(
    "cuerpo",
    [
        {"cantidad": 0},
        {"cantidad": 1.5},
        {"cantidad": "3"},
        {"cantidad": True},
        {"cantidad": None},
        {"cantidad": 10**10},
        {},
        {"cantidad": 1, "motivo": "inventario"},
        [{"cantidad": 1}],
        5,
    ],
)
async def test_stock_adjustment_that_is_not_a_nonzero_integer_is_422(
    http: httpx.AsyncClient, app: Starlette, cuerpo: Any
) -> None:
    taza = await crear_producto(http, stock=3)
    async with sin_cambios(app):
        error(await http.post(f"/api/productos/{taza['id']}/stock", json=cuerpo), 422, "VALIDACION")
    assert await stock(http, taza["id"]) == 3


@pytest.mark.parametrize(
    ("datos", "campo"),
    [
        ({"precio": "1.00"}, "nombre"),
        ({"nombre": "Taza"}, "precio"),
        ({"nombre": "Taza", "precio": -1}, "precio"),
        ({"nombre": "Taza", "precio": "doce"}, "precio"),
        ({"nombre": "Taza", "precio": "1.234"}, "precio"),
        ({"nombre": "Taza", "precio": True}, "precio"),
        ({"nombre": "Taza", "precio": "NaN"}, "precio"),
        ({"nombre": "Taza", "precio": "10000000000.00"}, "precio"),
        ({"nombre": "Taza", "precio": 1, "stock": -1}, "stock"),
        ({"nombre": "Taza", "precio": 1, "stock": 2.5}, "stock"),
        ({"nombre": "Taza", "precio": 1, "color": "rojo"}, "color"),
        ({"nombre": ["Taza"], "precio": 1}, "nombre"),
    ],
)
async def test_product_with_a_missing_wrong_or_unknown_field_is_422_naming_it(
    http: httpx.AsyncClient, app: Starlette, datos: dict[str, Any], campo: str
) -> None:
    async with sin_cambios(app):
        detalle = error(await http.post("/api/productos", json=datos), 422, "VALIDACION")
    assert detalle["campo"] == campo
    assert (await http.get("/api/productos")).json() == []


@pytest.mark.parametrize("datos", [{}, {"precio": "gratis"}, {"stock": "mucho"}, {"id": "x"}, ["nombre"]])
async def test_bad_product_update_is_422_and_leaves_the_product_as_it_was(
    http: httpx.AsyncClient, app: Starlette, datos: Any
) -> None:
    taza = await crear_producto(http)
    async with sin_cambios(app):
        error(await http.put(f"/api/productos/{taza['id']}", json=datos), 422, "VALIDACION")
    assert (await http.get(f"/api/productos/{taza['id']}")).json() == taza


async def test_unknown_product_is_404_for_read_update_and_stock(http: httpx.AsyncClient, app: Starlette) -> None:
    async with sin_cambios(app):
        assert error(await http.get("/api/productos/no-existe"), 404, "NO_ENCONTRADO") == {
            "entidad": "producto",
            "id": "no-existe",
        }
        error(await http.put("/api/productos/no-existe", json={"precio": 1}), 404, "NO_ENCONTRADO")
        error(await http.post("/api/productos/no-existe/stock", json={"cantidad": 1}), 404, "NO_ENCONTRADO")


async def test_every_product_write_is_logged_gap_free_with_increasing_hlc(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    taza = await crear_producto(http, stock=2)
    await http.put(f"/api/productos/{taza['id']}", json={"precio": "3.00", "stock": 5})
    await http.post(f"/api/productos/{taza['id']}/stock", json={"cantidad": -1})
    filas = await registro(app)
    assert [(c.entidad, c.campo) for c in filas[-3:]] == [
        ("producto", "precio"),
        ("stock", "entradas"),
        ("stock", "salidas"),
    ]
    assert valores(filas, "stock", "entradas") == [2, 5]
    assert valores(filas, "stock", "salidas") == [1]
