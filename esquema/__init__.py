"""The GraphQL schema (Strawberry), served at ``/graphql``.

The package, one idea per module:

- ``tipos``: output types built from the domain's dicts; ``Pedido.cliente``
  and ``ItemPedido.producto`` resolved through batched loaders;
- ``entradas``: mutation inputs, passed to the domain as snake_case dicts
  with only the fields the client set;
- ``consultas`` and ``mutaciones``: thin resolvers, one domain call each;
- ``suscripciones``: live orders, stock and peers, fed by ``servidor.eventos``;
- ``contexto``: the one object resolvers get (domain, store, settings,
  loaders), made per request;
- ``errores``: domain errors with their code in ``extensions.codigo``,
  internal errors masked;
- ``extensiones``: limits and caches, built once and shared by requests;
- ``medidas``: a document's depth, aliases and fields, measured in linear
  time for the limits;
- ``permisos``: the role each root field needs (``servidor.acceso``);
- ``vista``: the ASGI app (Strawberry's view with our context), which
  identifies the caller over HTTP and on the websocket.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from esquema.consultas import Consulta
from esquema.entradas import DECIMAL
from esquema.errores import EsquemaPedidos
from esquema.extensiones import Limites, crear_extensiones
from esquema.mutaciones import Mutacion
from esquema.suscripciones import Suscripcion
from esquema.vista import VistaGraphQL


def crear_esquema(limites: Limites | None = None) -> EsquemaPedidos:
    return EsquemaPedidos(
        query=Consulta,
        mutation=Mutacion,
        subscription=Suscripcion,
        extensions=crear_extensiones(limites or Limites()),
        scalar_overrides={Decimal: DECIMAL},
    )


def crear_graphql(limites: Limites | None = None, origenes: Sequence[str] = ()) -> VistaGraphQL:
    """The ASGI app for ``/graphql``, over HTTP and websocket alike.

    ``origenes``: pages on these origins may open the websocket too (Strawberry
    refuses a cross-origin handshake otherwise); the cluster's node URLs, so
    that the page of one node can move to another (``web/graphql.js``).
    """
    limites = limites or Limites()
    return VistaGraphQL(crear_esquema(limites), limites.suscripciones, origenes)


__all__ = ["Limites", "crear_esquema", "crear_graphql"]
