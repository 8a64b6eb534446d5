"""``crear_app(ajustes)``: one node as an ASGI application.

The store, the domain and (later) the peer manager are opened in the
lifespan and live on ``app.state``; nothing mutable lives at module level,
so several nodes can run in one process (the tests do).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from esquema import crear_graphql
from servidor import rest
from servidor.ajustes import Ajustes
from servidor.almacen import Almacen
from servidor.dominio import Dominio
from servidor.limites import LimiteCuerpo

log = logging.getLogger(__name__)
RUTA_WEB = Path(__file__).resolve().parent.parent / "web"


def crear_app(ajustes: Ajustes) -> Starlette:
    @asynccontextmanager
    async def vida(app: Starlette) -> AsyncIterator[None]:
        almacen = await Almacen.abrir(
            ajustes.nodo.database,
            ajustes.nodo.id,
            max_deriva_ms=ajustes.cluster.max_clock_drift_ms,
        )
        app.state.ajustes = ajustes
        app.state.almacen = almacen
        app.state.dominio = Dominio(almacen)
        app.state.inicio = time.monotonic()
        log.info("%s: serving on %s", ajustes.nodo.id, ajustes.nodo.url)
        try:
            yield
        finally:
            await almacen.cerrar()
            log.info("%s: stopped", ajustes.nodo.id)

    rutas = [
        *rest.rutas(),
        Route("/graphql", crear_graphql(), methods=["GET", "POST"]),
        Mount("/", StaticFiles(directory=RUTA_WEB, html=True), name="web"),
    ]
    return Starlette(routes=rutas, lifespan=vida, middleware=[Middleware(LimiteCuerpo)])
