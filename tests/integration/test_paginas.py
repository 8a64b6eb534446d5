"""Every list is a page: at most 500 items, 100 unless asked, and the way to the next one."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from servidor.dominio import validacion as v
from tests.integration.ayudas import datos, error, gql


async def clientes(app: Starlette, n: int) -> list[str]:
    return [
        (await app.state.dominio.crear_cliente({"nombre": f"C{i}", "email": f"c{i}@example.com"}))["id"]
        for i in range(n)
    ]


async def test_a_list_answers_a_page_and_a_full_page_names_the_next_one(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    ids = await clientes(app, 5)

    r = await http.get("/api/clientes", params={"limite": 2})
    assert [c["id"] for c in r.json()] == ids[:2]
    assert r.headers["link"] == '</api/clientes?limite=2&desde=2>; rel="next"'

    r = await http.get("/api/clientes?limite=2&desde=2")
    assert [c["id"] for c in r.json()] == ids[2:4]
    r = await http.get(r.headers["link"].split(">")[0][1:])
    assert [c["id"] for c in r.json()] == ids[4:]
    assert "link" not in r.headers, "a short page is the last"


async def test_without_parameters_a_list_is_its_first_100_items(http: httpx.AsyncClient, app: Starlette) -> None:
    ids = await clientes(app, v.PAGINA_POR_DEFECTO + 1)
    r = await http.get("/api/clientes")
    assert [c["id"] for c in r.json()] == ids[: v.PAGINA_POR_DEFECTO]
    assert "desde=100" in r.headers["link"]


async def test_filters_and_pages_combine(http: httpx.AsyncClient, app: Starlette) -> None:
    r = await http.get("/api/pedidos", params={"estado": "pendiente", "limite": 1, "desde": 0})
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("ruta", ["/api/clientes", "/api/productos", "/api/pedidos", "/api/conflictos"])
@pytest.mark.parametrize(
    ("consulta", "campo"),
    [
        ("limite=0", "limite"),
        (f"limite={v.MAX_PAGINA + 1}", "limite"),
        ("limite=diez", "limite"),
        ("desde=-1", "desde"),
        (f"desde={10**30}", "desde"),
        ("desde=1.5", "desde"),
    ],
)
async def test_a_page_out_of_bounds_is_refused_with_the_parameter_named(
    http: httpx.AsyncClient, ruta: str, consulta: str, campo: str
) -> None:
    assert error(await http.get(f"{ruta}?{consulta}"), 422, "VALIDACION")["campo"] == campo


@pytest.mark.parametrize("consulta", ["limite=5_0", "limite=\u0665\u0660", "limite=+5", "limite=%205", "desde=1_0"])
async def test_a_page_is_written_in_ascii_digits_only(http: httpx.AsyncClient, consulta: str) -> None:
    # int() reads every one of these; "limite=5_0" was a page of 50.
    detalle = error(await http.get(f"/api/clientes?{consulta}"), 422, "VALIDACION")
    assert detalle["campo"] == consulta.split("=")[0]


async def test_graphql_lists_take_the_same_pages(http: httpx.AsyncClient, app: Starlette) -> None:
    ids = await clientes(app, 3)
    r = await datos(http, "{ a: clientes(limite: 2) { id } b: clientes(limite: 2, desde: 2) { id } productos { id } }")
    assert [c["id"] for c in r["a"] + r["b"]] == ids
    assert r["productos"] == []


@pytest.mark.parametrize("argumentos", ["limite: 0", f"limite: {v.MAX_PAGINA + 1}", "desde: -1"])
async def test_a_graphql_page_out_of_bounds_is_a_validation_error(http: httpx.AsyncClient, argumentos: str) -> None:
    cuerpo = await gql(http, f"{{ pedidos({argumentos}) {{ id }} }}")
    assert cuerpo["data"] is None
    assert cuerpo["errors"][0]["extensions"]["codigo"] == "VALIDACION"
