"""The ASGI application at ``/graphql``: Strawberry's view with our context and access rules.

One instance serves both transports: HTTP (queries and mutations by POST,
queries by GET, GraphiQL on a browser GET that accepts ``text/html``) and
websocket (``graphql-transport-ws`` and ``graphql-ws``), so the app routes
the same object for both (see ``servidor.app``). Mutations over GET are
refused by Strawberry.

GraphiQL's page is ours (``graphiql.html``, next to this module), not
Strawberry's, which loads React and GraphiQL from a CDN and so never leaves
"Loading..." on a machine without internet. Ours loads pinned copies of the
same kind of files from the node itself, under ``/graphiql/`` (``web/graphiql/``,
whose README says which versions and where they come from).

Access (``servidor.acceso``):

- HTTP: a request that carries a document needs a valid bearer token; one
  without is refused with 401 (the REST error shape, from the app's error
  handlers) before the document is parsed. A GET without a ``query`` (the
  GraphiQL page) needs none: it runs nothing.
- Websocket: the ``connection_init`` payload carries
  ``{"authorization": "Bearer <token>"}`` (browsers cannot set headers on a
  websocket; an ``Authorization`` header on the handshake is accepted too).
  Without a valid one the connection is closed with 4403 before it is
  acknowledged, so no operation ever runs on it.
- Each root field then checks the role (``esquema.permisos``).

At most ``suscripciones`` operations run at once on one websocket; another
is refused with an error message, the connection stays up.

A request over HTTP whose document, variables or operation name hold a
string that is not Unicode text (a lone surrogate, ``"\\ud800"`` in JSON) is
refused with 422 ``VALIDACION`` in the REST error shape, as REST bodies are:
no answer, log line or row could hold it. On the websocket, text inputs are
refused by the domain's own check, as an error of the operation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cross_web import AsyncHTTPRequestAdapter
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.schema import BaseSchema
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types.unset import UnsetType

from esquema.contexto import Contexto
from servidor.acceso import Identidad, identificar
from servidor.dominio import validacion as v
from servidor.errores import NoAutenticado, Validacion

log = logging.getLogger(__name__)
PAGINA_GRAPHIQL = Path(__file__).with_name("graphiql.html")


class TransporteWS(BaseGraphQLTransportWSHandler[Contexto, None]):
    """graphql-transport-ws, coding the errors the protocol sends of its own accord.

    The schema's errors are coded by ``esquema.errores.CodigosDeError``; a
    subscription past the limit of a connection is refused here, before
    the schema sees it, and gets ``VALIDACION`` like the other limits.
    """

    async def send_message(self, message: Message) -> None:
        if message["type"] == "error":
            message = {**message, "payload": [_con_codigo(e) for e in message["payload"]]}  # type: ignore[typeddict-item]
        await super().send_message(message)


def _con_codigo(error: Any) -> Any:
    extensiones = error.get("extensions") or {}
    if "codigo" in extensiones:
        return error
    return {**error, "extensions": {**extensiones, "codigo": Validacion.codigo, "code": "GRAPHQL_VALIDATION_FAILED"}}


class VistaGraphQL(GraphQL[Contexto, None]):
    graphql_transport_ws_handler_class = TransporteWS

    def __init__(self, schema: BaseSchema, suscripciones: int, origenes: Sequence[str] = ()) -> None:
        super().__init__(
            schema, graphql_ide="graphiql", allowed_origins=origenes, max_subscriptions_per_connection=suscripciones
        )
        self._graphiql = PAGINA_GRAPHIQL.read_text(encoding="utf-8")

    @property
    def graphql_ide_html(self) -> str:
        return self._graphiql

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Contexto:
        # Once per HTTP request, but once per *connection* on a websocket: see esquema.contexto.
        identidad = None
        if isinstance(request, Request) and _lleva_documento(request):
            identidad = _identificar(request, request.headers.get("authorization"))
        return Contexto.desde(request, response, identidad)

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData | list[GraphQLRequestData]:
        datos = await super().parse_http_body(request)
        for d in datos if isinstance(datos, list) else [datos]:
            partes = {"query": d.query, "variables": d.variables, "operationName": d.operation_name}
            v.unicode_valido({**partes, "extensions": d.extensions})
        return datos

    async def on_ws_connect(self, context: Contexto) -> UnsetType | dict[str, object] | None:
        parametros = context.connection_params or {}
        cabecera = parametros.get("authorization")
        if not isinstance(cabecera, str):
            cabecera = context.request.headers.get("authorization")
        try:
            context.identidad = _identificar(context.request, cabecera)
        except NoAutenticado as e:
            log.info("%s: graphql websocket refused: %s", context.nodo_id, e.mensaje)
            raise ConnectionRejectionError() from None
        return await super().on_ws_connect(context)


def _lleva_documento(request: Request) -> bool:
    """Whether the request may run something: any POST, a GET with a ``query``."""
    return request.method != "GET" or "query" in request.query_params


def _identificar(request: Request | WebSocket, cabecera: Any) -> Identidad:
    tokens = request.app.state.ajustes.cluster.tokens
    return identificar(tokens, cabecera if isinstance(cabecera, str) else None)
