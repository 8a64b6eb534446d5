"""REST: /api/clientes, create, list, read, update, delete, and refusals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from tests.integration.ayudas import crear_cliente, error, escribe, registro, sin_cambios, valores

CAMPOS = {"id", "nombre", "email", "telefono", "direccion", "creado_en"}


async def test_created_client_is_answered_with_201_its_id_and_its_location(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    datos = {"nombre": "Ana", "email": "ana@example.com", "telefono": "+34 600 000 000", "direccion": "Calle Mayor 1"}
    async with escribe(app) as cambios:
        r = await http.post("/api/clientes", json=datos)
    assert r.status_code == 201
    cliente = r.json()
    assert set(cliente) == CAMPOS
    assert {k: cliente[k] for k in datos} == datos
    assert cliente["creado_en"].endswith("Z")
    assert r.headers["location"] == f"/api/clientes/{cliente['id']}"
    assert {c.clave for c in cambios} == {cliente["id"]}
    assert {c.entidad for c in cambios} == {"cliente"}


async def test_created_clients_are_listed_in_creation_order_and_readable_by_id(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/clientes")).json() == []
    ana = await crear_cliente(http, nombre="Ana", email="ana@example.com")
    luis = await crear_cliente(http, nombre="Luis", email="luis@example.com")

    r = await http.get("/api/clientes")
    assert r.status_code == 200
    assert r.json() == [ana, luis]
    r = await http.get(f"/api/clientes/{luis['id']}")
    assert r.status_code == 200
    assert r.json() == luis


async def test_client_update_changes_only_the_fields_sent(http: httpx.AsyncClient, app: Starlette) -> None:
    ana = await crear_cliente(http, telefono="111")
    async with escribe(app, ana["id"]) as cambios:
        r = await http.put(f"/api/clientes/{ana['id']}", json={"direccion": "Calle Sol 2", "telefono": None})
    assert r.status_code == 200
    assert r.json() == {**ana, "direccion": "Calle Sol 2", "telefono": None}
    assert (await http.get(f"/api/clientes/{ana['id']}")).json() == r.json()
    assert sorted(c.campo for c in cambios) == ["direccion", "telefono"]


async def test_deleted_client_is_404_is_not_listed_and_cannot_be_updated(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    luis = await crear_cliente(http, email="luis@example.com")
    async with escribe(app, ana["id"]) as cambios:
        r = await http.delete(f"/api/clientes/{ana['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert valores(cambios, "cliente", "eliminado") == [True]

    assert error(await http.get(f"/api/clientes/{ana['id']}"), 404, "NO_ENCONTRADO") == {
        "entidad": "cliente",
        "id": ana["id"],
    }
    assert (await http.get("/api/clientes")).json() == [luis]
    async with sin_cambios(app):
        error(await http.put(f"/api/clientes/{ana['id']}", json={"nombre": "Otra"}), 404, "NO_ENCONTRADO")
        error(await http.delete(f"/api/clientes/{ana['id']}"), 404, "NO_ENCONTRADO")


async def test_unknown_client_id_is_404_for_read_update_and_delete(http: httpx.AsyncClient, app: Starlette) -> None:
    async with sin_cambios(app):
        error(await http.get("/api/clientes/no-existe"), 404, "NO_ENCONTRADO")
        error(await http.put("/api/clientes/no-existe", json={"nombre": "X"}), 404, "NO_ENCONTRADO")
        error(await http.delete("/api/clientes/no-existe"), 404, "NO_ENCONTRADO")


@pytest.mark.parametrize(
    ("datos", "campo"),
    [
        ({"email": "ana@example.com"}, "nombre"),
        ({"nombre": "Ana"}, "email"),
        ({"nombre": None, "email": "ana@example.com"}, "nombre"),
        ({"nombre": "   ", "email": "ana@example.com"}, "nombre"),
        ({"nombre": 7, "email": "ana@example.com"}, "nombre"),
        ({"nombre": "Ana", "email": "not-an-address"}, "email"),
        ({"nombre": "Ana", "email": ["ana@example.com"]}, "email"),
        ({"nombre": "Ana", "email": "ana@example.com", "telefono": 600000000}, "telefono"),
        ({"nombre": "A" * 201, "email": "ana@example.com"}, "nombre"),
        ({"nombre": "Ana", "email": "ana@example.com", "edad": 30}, "edad"),
    ],
)
async def test_client_with_a_missing_wrong_or_unknown_field_is_422_naming_it(
    http: httpx.AsyncClient, app: Starlette, datos: dict[str, Any], campo: str
) -> None:
    async with sin_cambios(app):
        detalle = error(await http.post("/api/clientes", json=datos), 422, "VALIDACION")
    assert detalle["campo"] == campo
    assert (await http.get("/api/clientes")).json() == []


@pytest.mark.parametrize(
    "datos", [{}, {"email": "bad"}, {"nombre": ""}, {"id": "otro"}, {"creado_en": "ayer"}, [], "x"]
)
async def test_bad_client_update_is_422_and_leaves_the_client_as_it_was(
    http: httpx.AsyncClient, app: Starlette, datos: Any
) -> None:
    ana = await crear_cliente(http)
    async with sin_cambios(app):
        error(await http.put(f"/api/clientes/{ana['id']}", json=datos), 422, "VALIDACION")
    assert (await http.get(f"/api/clientes/{ana['id']}")).json() == ana


async def test_every_client_write_is_logged_gap_free_with_increasing_hlc(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ana = await crear_cliente(http)
    await http.put(f"/api/clientes/{ana['id']}", json={"nombre": "Ana María"})
    await http.delete(f"/api/clientes/{ana['id']}")
    filas = await registro(app)
    campos = [c.campo for c in filas]
    assert sorted(campos[:-2]) == ["creado_en", "direccion", "email", "nombre", "telefono"]
    assert campos[-2:] == ["nombre", "eliminado"]
    assert {c.clave for c in filas} == {ana["id"]}
