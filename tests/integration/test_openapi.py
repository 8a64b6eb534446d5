"""The OpenAPI document at /api/openapi.json tells the truth about the REST routes.

Two halves: the document names exactly the routes and methods the app
serves, each described and with the role it needs; and Schemathesis, driven
by that document against a live node, finds no server error, no answer that
breaks the schema, no invalid input accepted and no protected route open
without a valid token (``tests/integration/test_schemathesis.py``).
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from servidor import replicacion, rest
from servidor.openapi import SIN_DESCRIBIR


def rutas_de_la_app(app: Starlette) -> set[tuple[str, str]]:
    servidas = set()
    for ruta in app.routes:
        if isinstance(ruta, Mount) and ruta.path == rest.PREFIJO:
            for dentro in ruta.routes:
                assert isinstance(dentro, Route)
                servidas |= {(rest.PREFIJO + dentro.path, m) for m in dentro.methods or () if m != "HEAD"}
    return servidas


async def test_the_document_names_every_route_and_method_the_app_serves_and_no_other(
    http: httpx.AsyncClient, app: Starlette
) -> None:
    documento = (await http.get("/api/openapi.json")).json()
    descritas = {(camino, m.upper()) for camino, ops in documento["paths"].items() for m in ops}
    assert descritas == rutas_de_la_app(app)
    assert len(descritas) == sum(len(m) for _, m in rest.recursos_rest(replicacion.rutas()))


async def test_every_operation_is_described_with_its_role_and_its_refusals(http: httpx.AsyncClient) -> None:
    documento = (await http.get("/api/openapi.json")).json()
    for camino, operaciones in documento["paths"].items():
        for metodo, op in operaciones.items():
            donde = f"{metodo.upper()} {camino}"
            assert op["summary"] != SIN_DESCRIBIR, f"{donde} has no description in servidor/openapi.py"
            assert any(c.startswith("2") for c in op["responses"]), donde
            if op.get("security") == []:
                assert "401" not in op["responses"], donde
            else:
                assert op["x-rol"] in ("lectura", "operador", "admin"), donde
                assert {"401", "403"} <= set(op["responses"]), donde
    assert documento["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
