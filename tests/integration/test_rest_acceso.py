"""REST role boundaries: 401 without a valid token, 403 for a role too low, nothing read or written."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from servidor import replicacion, rest
from servidor.acceso import Rol
from tests.credenciales import cabecera
from tests.integration.ayudas import crear_cliente, crear_pedido, crear_producto, error, sin_cambios

# Every route that needs a token, with the least role it needs, as the app declares them.
PROTEGIDAS = [
    (metodo, rest.PREFIJO + ruta.replace("{id}", "x-1"), rol)
    for ruta, metodos in rest.recursos_rest(replicacion.rutas())
    for metodo, (rol, _) in metodos.items()
    if rol is not None
]


def test_every_route_but_ping_and_the_openapi_document_needs_a_token() -> None:
    abiertas = sorted(
        rest.PREFIJO + ruta
        for ruta, metodos in rest.recursos_rest(replicacion.rutas())
        for rol, _ in metodos.values()
        if rol is None
    )
    assert abiertas == ["/api/health/ping", "/api/openapi.json"]


@pytest.mark.parametrize(("metodo", "ruta", "rol"), PROTEGIDAS, ids=[f"{m} {r}" for m, r, _ in PROTEGIDAS])
@pytest.mark.parametrize("autorizacion", [None, "Bearer no-es-un-token-nuestro"], ids=["none", "unknown"])
async def test_a_request_without_a_valid_token_is_401_before_anything_is_read(
    app: Starlette, metodo: str, ruta: str, rol: Rol, autorizacion: str | None
) -> None:
    cabeceras = {} if autorizacion is None else {"authorization": autorizacion}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anonimo:
        async with sin_cambios(app):
            r = await anonimo.request(metodo, ruta, headers=cabeceras, json={"nombre": "Ana"})
    error(r, 401, "NO_AUTENTICADO")
    assert r.headers["www-authenticate"] == 'Bearer realm="pedidos"'


async def test_ping_and_the_openapi_document_answer_without_a_token(app: Starlette) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anonimo:
        assert (await anonimo.get("/api/health/ping")).json() == {"pong": True, "nodo": "nodo1"}
        assert (await anonimo.get("/api/openapi.json")).json()["openapi"].startswith("3.")


async def test_without_a_token_an_existing_id_and_an_unknown_one_get_the_same_answer(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    pedido = await crear_pedido(http, (await crear_cliente(http))["id"], ((await crear_producto(http))["id"], 1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as anonimo:
        existe = await anonimo.get(f"/api/pedidos/{pedido['id']}")
        no_existe = await anonimo.get("/api/pedidos/no-existe")
    assert (existe.status_code, existe.json()) == (no_existe.status_code, no_existe.json())
    assert existe.status_code == 401


@pytest.mark.parametrize(
    ("rol", "puede_escribir", "puede_replicar"),
    [(Rol.LECTURA, False, False), (Rol.OPERADOR, True, False), (Rol.ADMIN, True, True)],
    ids=["lectura", "operador", "admin"],
)
async def test_each_role_reads_writes_and_replicates_as_far_as_it_may(
    http: httpx.AsyncClient, app: Starlette, rol: Rol, puede_escribir: bool, puede_replicar: bool
) -> None:
    cliente = await crear_cliente(http)
    producto = await crear_producto(http)
    pedido = await crear_pedido(http, cliente["id"], (producto["id"], 1))
    como = cabecera(rol)

    for ruta in (
        "/api/clientes",
        f"/api/pedidos/{pedido['id']}",
        "/api/conflictos",
        "/api/health",
        "/api/health/nodos",
    ):
        assert (await http.get(ruta, headers=como)).status_code == 200, ruta

    escrituras = [
        ("POST", "/api/clientes", {"nombre": "Eva", "email": "eva@example.com"}),
        ("PUT", f"/api/clientes/{cliente['id']}", {"telefono": "600"}),
        ("POST", f"/api/productos/{producto['id']}/stock", {"cantidad": 2}),
        (
            "POST",
            "/api/pedidos",
            {"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 1}]},
        ),
        ("PUT", f"/api/pedidos/{pedido['id']}/estado", {"estado": "confirmado"}),
    ]
    for metodo, ruta, cuerpo in escrituras:
        if puede_escribir:
            assert (await http.request(metodo, ruta, headers=como, json=cuerpo)).is_success, ruta
        else:
            async with sin_cambios(app):
                detalle = error(await http.request(metodo, ruta, headers=como, json=cuerpo), 403, "PROHIBIDO")
            assert detalle == {"rol": "lectura", "necesita": "operador"}

    for metodo, ruta in (("POST", "/api/replicacion/replicar"), ("GET", "/api/replicacion/logs/pendientes")):
        r = await http.request(metodo, ruta, headers=como)
        if puede_replicar:
            assert r.status_code == 200, r.text
        else:
            assert error(r, 403, "PROHIBIDO")["necesita"] == "admin"


async def test_a_role_too_low_gets_the_same_403_for_an_existing_id_and_an_unknown_one(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    pedido = await crear_pedido(http, (await crear_cliente(http))["id"], ((await crear_producto(http))["id"], 1))
    lectura = cabecera(Rol.LECTURA)
    async with sin_cambios(app):
        existe = await http.put(f"/api/pedidos/{pedido['id']}/estado", headers=lectura, json={"estado": "cancelado"})
        no_existe = await http.put("/api/pedidos/no-existe/estado", headers=lectura, json={"estado": "cancelado"})
        borrado = await http.delete(f"/api/pedidos/{pedido['id']}", headers=lectura)
    assert existe.json() == no_existe.json() == borrado.json()
    assert existe.status_code == no_existe.status_code == borrado.status_code == 403
