"""REST: bad requests, route misses, oversized bodies, internal errors, health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from servidor import rest
from servidor.limites import MAX_CUERPO
from tests.credenciales import cabecera
from tests.integration.ayudas import crear_cliente, crear_pedido, crear_producto, error, registro, sin_cambios

MALFORMADOS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"{", id="truncated"),
    pytest.param(b'{"nombre": "Ana",}', id="trailing-comma"),
    pytest.param(b"{'nombre': 'Ana'}", id="single-quotes"),
    pytest.param(b'{"nombre": "Ana"} {}', id="two-documents"),
    pytest.param(b"\xff\xfe\xfa\x00", id="not-utf8"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-past-the-recursion-limit"),
    pytest.param(b'{"cantidad": 1' + b"0" * 5000 + b"}", id="integer-past-the-digit-limit"),
]


async def _rutas_de_escritura(http: httpx.AsyncClient) -> list[tuple[str, str]]:
    ana = await crear_cliente(http)
    taza = await crear_producto(http)
    pedido = await crear_pedido(http, ana["id"], (taza["id"], 1))
    return [
        ("POST", "/api/clientes"),
        ("PUT", f"/api/clientes/{ana['id']}"),
        ("POST", "/api/productos"),
        ("PUT", f"/api/productos/{taza['id']}"),
        ("POST", f"/api/productos/{taza['id']}/stock"),
        ("POST", "/api/pedidos"),
        ("PUT", f"/api/pedidos/{pedido['id']}/estado"),
    ]


@pytest.mark.parametrize("cuerpo", MALFORMADOS)
async def test_malformed_json_is_400_json_invalido_on_every_write_and_changes_nothing(
    http: httpx.AsyncClient, app: Starlette, cuerpo: bytes
) -> None:
    for metodo, ruta in await _rutas_de_escritura(http):
        async with sin_cambios(app):
            r = await http.request(metodo, ruta, content=cuerpo, headers={"content-type": "application/json"})
            error(r, 400, "JSON_INVALIDO")


async def test_json_syntax_error_says_where_it_is(http: httpx.AsyncClient) -> None:
    detalle = error(await http.post("/api/clientes", content=b'{\n  "nombre": "Ana",\n}'), 400, "JSON_INVALIDO")
    assert detalle == {"linea": 3, "columna": 1}


@pytest.mark.parametrize("cuerpo", [b"[]", b'"Ana"', b"42", b"null", b"true"])
async def test_body_that_is_not_a_json_object_is_422_on_every_write_and_changes_nothing(
    http: httpx.AsyncClient, app: Starlette, cuerpo: bytes
) -> None:
    for metodo, ruta in await _rutas_de_escritura(http):
        async with sin_cambios(app):
            r = await http.request(metodo, ruta, content=cuerpo)
            assert "must be a JSON object" in r.json()["error"]["mensaje"]
            error(r, 422, "VALIDACION")


# JSON escapes half a surrogate pair alone; Python decodes it to a string that no UTF-8 can hold.
SUSTITUTOS = [
    pytest.param(b'{"nombre": "\\ud800"}', "nombre", id="value"),
    pytest.param(b'{"nombre": "Ana", "direccion": "Calle \\udfff 3"}', "direccion", id="second-field"),
    pytest.param(b'{"items": [{"producto_id": "\\ud83d"}]}', "items[0].producto_id", id="nested"),
    pytest.param(b'{"\\ud800": 1}', None, id="field-name"),
]


@pytest.mark.parametrize(("cuerpo", "campo"), SUSTITUTOS)
async def test_a_lone_surrogate_anywhere_in_a_body_is_422_validacion_on_every_write_and_changes_nothing(
    http: httpx.AsyncClient, app: Starlette, cuerpo: bytes, campo: str | None
) -> None:
    for metodo, ruta in await _rutas_de_escritura(http):
        async with sin_cambios(app):
            r = await http.request(metodo, ruta, content=cuerpo, headers={"content-type": "application/json"})
            assert error(r, 422, "VALIDACION") == {"campo": campo}


async def test_a_whole_surrogate_pair_is_text_like_any_other(http: httpx.AsyncClient) -> None:
    cuerpo = b'{"nombre": "Ana \\ud83d\\ude00", "email": "ana@example.com"}'
    r = await http.post("/api/clientes", content=cuerpo, headers={"content-type": "application/json"})
    assert r.status_code == 201 and r.json()["nombre"] == "Ana \U0001f600"


@pytest.mark.parametrize("metodo", ["GET", "POST", "PUT", "DELETE"])
@pytest.mark.parametrize("ruta", ["/api/nada", "/api/clientes/x/y", "/api", "/api/health/pong"])
async def test_unknown_route_under_api_is_a_json_404(http: httpx.AsyncClient, metodo: str, ruta: str) -> None:
    detalle = error(await http.request(metodo, ruta), 404, "NO_ENCONTRADO")
    assert detalle == {"ruta": ruta}


@pytest.mark.parametrize(
    ("metodo", "ruta", "permitidos"),
    [
        ("DELETE", "/api/clientes", {"POST", "GET", "HEAD"}),
        ("POST", "/api/clientes/x", {"GET", "HEAD", "PUT", "DELETE"}),
        ("PATCH", "/api/productos/x", {"GET", "HEAD", "PUT"}),
        ("GET", "/api/productos/x/stock", {"POST"}),
        ("GET", "/api/pedidos/x/estado", {"PUT"}),
        ("POST", "/api/health", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_a_json_405_naming_the_allowed_ones(
    http: httpx.AsyncClient, app: Starlette, metodo: str, ruta: str, permitidos: set[str]
) -> None:
    async with sin_cambios(app):
        r = await http.request(metodo, ruta, json={"nombre": "x"})
    detalle = error(r, 405, "METODO_NO_PERMITIDO")
    assert detalle["metodo"] == metodo
    assert set(detalle["permitidos"]) == permitidos
    assert {m.strip() for m in r.headers["allow"].split(",")} == permitidos


async def test_resources_of_other_modules_share_the_api_mount_and_its_error_answers() -> None:
    async def precio(request: Request) -> Response:
        return rest.RespuestaJSON({"precio": Decimal("1.50"), "lista": [Decimal("0.10")]})

    app = Starlette(routes=rest.rutas([("/precio", {"POST": (None, precio)})]), exception_handlers=rest.manejadores())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http:
        r = await http.post("/api/precio")
        assert r.status_code == 200
        assert r.content == b'{"precio":"1.50","lista":["0.10"]}'
        assert error(await http.get("/api/precio"), 405, "METODO_NO_PERMITIDO")["permitidos"] == ["POST"]
        error(await http.get("/api/precios"), 404, "NO_ENCONTRADO")


def test_a_rest_path_declared_twice_is_refused_when_the_routes_are_built() -> None:
    async def otro(request: Request) -> Response:
        return Response()

    with pytest.raises(ValueError, match="/clientes"):
        rest.rutas([("/clientes", {"DELETE": (None, otro)})])


async def test_paths_outside_api_keep_the_web_apps_plain_answers(http: httpx.AsyncClient) -> None:
    r = await http.get("/no-such-page")
    assert r.status_code == 404
    assert not r.headers["content-type"].startswith("application/json")
    r = await http.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")


async def test_body_over_one_mebibyte_is_413_and_changes_nothing(http: httpx.AsyncClient, app: Starlette) -> None:
    relleno = b'{"nombre": "Ana", "email": "ana@example.com"}'
    async with sin_cambios(app):
        r = await http.post("/api/clientes", content=relleno + b" " * (MAX_CUERPO + 1 - len(relleno)))
        assert error(r, 413, "CUERPO_DEMASIADO_GRANDE") == {"maximo": MAX_CUERPO}

    # Exactly at the limit is still served.
    r = await http.post("/api/clientes", content=relleno + b" " * (MAX_CUERPO - len(relleno)))
    assert r.status_code == 201, r.text


async def test_streamed_body_over_one_mebibyte_is_413_and_changes_nothing(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    async def trozos() -> AsyncIterator[bytes]:
        yield b'{"nombre": "Ana", "email": "ana@example.com"'
        for _ in range(MAX_CUERPO // 65536 + 1):
            yield b" " * 65536
        yield b"}"

    async with sin_cambios(app):
        r = await http.post("/api/clientes", content=trozos())
        assert "content-length" not in r.request.headers
        error(r, 413, "CUERPO_DEMASIADO_GRANDE")


async def test_internal_error_is_a_masked_500_and_is_logged_with_its_traceback(
    app: Starlette, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def roto(*_: Any, **__: Any) -> Any:
        raise RuntimeError("(1064) SELECT secreto FROM clientes WHERE id = 'x'")

    monkeypatch.setattr(app.state.dominio, "listar_clientes", roto)
    # The server error middleware re-raises after answering, for the server to log; here we want the answer.
    transporte = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with caplog.at_level(logging.ERROR, logger="servidor.rest"):
        async with httpx.AsyncClient(transport=transporte, base_url="http://test", headers=cabecera()) as http:
            r = await http.get("/api/clientes")
    assert r.status_code == 500
    assert r.json() == {"error": {"codigo": "ERROR_INTERNO", "mensaje": "internal error", "detalle": {}}}
    assert "SELECT" not in r.text and "Traceback" not in r.text
    [registro_log] = [x for x in caplog.records if x.name == "servidor.rest"]
    assert "nodo1" in registro_log.getMessage() and "/api/clientes" in registro_log.getMessage()
    assert registro_log.exc_info is not None and registro_log.exc_info[0] is RuntimeError


async def test_health_reports_node_database_clock_and_progress(
    http: httpx.AsyncClient, app: Starlette, url_bd: str
) -> None:
    await crear_cliente(http)
    escritos = len(await registro(app))
    r = await http.get("/api/health")
    assert r.status_code == 200
    salud_nodo = r.json()
    assert set(salud_nodo) == {"nodo", "estado", "base_de_datos", "hlc", "vector", "uptime_s"}
    assert salud_nodo["nodo"] == "nodo1"
    assert salud_nodo["estado"] == "ok"
    assert salud_nodo["base_de_datos"] == ("sqlite" if url_bd.startswith("sqlite") else "mysql")
    assert salud_nodo["hlc"] == app.state.almacen.reloj.ultimo > 0
    assert salud_nodo["vector"] == {"nodo1": escritos}
    assert isinstance(salud_nodo["uptime_s"], int | float) and salud_nodo["uptime_s"] >= 0


async def test_health_is_503_degradado_when_the_database_does_not_answer(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def caida(*_: Any, **__: Any) -> Any:
        raise ConnectionRefusedError("database unreachable")

    monkeypatch.setattr(app.state.almacen, "leer", caida)
    r = await http.get("/api/health")
    assert r.status_code == 503
    assert r.json()["estado"] == "degradado"
    assert r.json()["motivo"] == "the database does not answer"
    assert r.json()["nodo"] == "nodo1"
    assert (await http.get("/api/health/ping")).status_code == 200


async def test_health_gives_up_on_a_database_that_hangs(
    http: httpx.AsyncClient, app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    colgada = asyncio.Event()

    async def leer_colgado(*_: Any, **__: Any) -> None:
        await colgada.wait()

    monkeypatch.setattr(app.state.almacen, "leer", leer_colgado)
    monkeypatch.setattr(rest, "LIMITE_SALUD_S", 0.01)
    r = await http.get("/api/health")
    assert r.status_code == 503
    assert r.json()["estado"] == "degradado"


async def test_ping_answers_pong_with_the_node_id(http: httpx.AsyncClient) -> None:
    r = await http.get("/api/health/ping")
    assert r.status_code == 200
    assert r.json() == {"pong": True, "nodo": "nodo1"}
