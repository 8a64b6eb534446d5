"""The ASGI application at ``/graphql``: Strawberry's view with our context.

One instance serves both transports: HTTP (queries and mutations by POST,
queries by GET, GraphiQL on a browser GET that accepts ``text/html``) and
websocket (``graphql-transport-ws`` and ``graphql-ws``), so the app routes
the same object for both (see ``servidor.app``). Mutations over GET are
refused by Strawberry.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from esquema.contexto import Contexto


class VistaGraphQL(GraphQL[Contexto, None]):
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Contexto:
        # Once per HTTP request, but once per *connection* on a websocket: see esquema.contexto.
        return Contexto.desde(request, response)
