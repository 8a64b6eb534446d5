"""``crear_app(ajustes)``: one node as an ASGI application.

The store, the domain and the peer manager are opened in the
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
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from esquema import crear_graphql
from servidor import replicacion, rest
from servidor.ajustes import Ajustes
from servidor.almacen import Almacen
from servidor.asentamiento import Asentador
from servidor.dominio import Dominio
from servidor.dominio.derechos import Reparto
from servidor.eventos import Difusion
from servidor.limites import LimiteCuerpo, LimiteMensajesWS
from sync.pares import GestorPares
from sync.reloj import reloj_desplazado

log = logging.getLogger(__name__)
RUTA_WEB = Path(__file__).resolve().parent.parent / "web"


async def _sync(ws: WebSocket) -> None:
    # Peers are programs, which send no Origin; a page that tries to open the
    # peer link (from any site a browser visits) is refused before the handshake.
    if "origin" in ws.headers:
        log.warning(
            "%s: refused /sync from a browser page (Origin %s)", ws.app.state.ajustes.nodo.id, ws.headers["origin"]
        )
        await ws.close(code=1008)
        return
    await ws.app.state.pares.servir(ws)


def _origenes(ajustes: Ajustes) -> list[str]:
    """Origins whose pages may call this node: the page of any node of the cluster.

    The SPA (``web/graphql.js``) moves to another node when its own stops
    answering, so it calls origins other than its own: over HTTP (CORS, below)
    and over the GraphQL websocket (Strawberry's ``allowed_origins``).
    """
    return [n.url for n in ajustes.cluster.nodes]


def _cors(ajustes: Ajustes) -> Middleware:
    return Middleware(
        CORSMiddleware,
        allow_origins=_origenes(ajustes),
        allow_methods=["GET", "POST", "PUT", "DELETE"],
        allow_headers=["content-type", "authorization", "idempotency-key"],
        expose_headers=["idempotent-replayed", "location"],
        max_age=600,
    )


def crear_app(ajustes: Ajustes) -> Starlette:
    @asynccontextmanager
    async def vida(app: Starlette) -> AsyncIterator[None]:
        almacen = await Almacen.abrir(
            ajustes.nodo.database,
            ajustes.nodo.id,
            max_deriva_ms=ajustes.cluster.max_clock_drift_ms,
            ahora=reloj_desplazado(ajustes.desfase_reloj_ms),
            miembros=frozenset(n.id for n in ajustes.cluster.nodes),
        )
        app.state.ajustes = ajustes
        app.state.almacen = almacen
        app.state.dominio = dominio = Dominio(almacen, nodos=len(ajustes.cluster.nodes))
        app.state.inicio = time.monotonic()
        app.state.pares = GestorPares(ajustes, almacen, cedente=dominio.ceder_derechos)
        dominio.reparto = Reparto(app.state.pares, len(ajustes.cluster.nodes), ajustes.cluster.rights_wait_ms / 1000)
        app.state.difusion = Difusion(almacen, app.state.pares)
        app.state.difusion.iniciar()
        app.state.pares.iniciar()
        app.state.asentador = Asentador(dominio, app.state.pares)
        app.state.asentador.iniciar()
        log.info("%s: serving on %s", ajustes.nodo.id, ajustes.nodo.url)
        try:
            yield
        finally:
            await dominio.reparto.cerrar()
            await app.state.asentador.detener()
            await app.state.pares.detener()
            await app.state.difusion.detener()
            await almacen.cerrar()
            log.info("%s: stopped", ajustes.nodo.id)

    graphql = crear_graphql(origenes=_origenes(ajustes))
    rutas = [
        *rest.rutas(replicacion.rutas()),
        WebSocketRoute("/sync", _sync),
        Route("/graphql", graphql, methods=["GET", "POST"], name="graphql"),
        WebSocketRoute("/graphql", graphql, name="graphql_ws"),
        Mount("/", StaticFiles(directory=RUTA_WEB, html=True), name="web"),
    ]
    return Starlette(
        routes=rutas,
        lifespan=vida,
        middleware=[_cors(ajustes), Middleware(LimiteCuerpo), Middleware(LimiteMensajesWS)],
        exception_handlers=rest.manejadores(),
    )
