"""The one object every resolver gets: what a GraphQL operation depends on.

:class:`Contexto` carries the node's domain, store and settings (taken from
``app.state``, opened in the lifespan) and the :class:`Cargadores`, the
DataLoaders that batch the reads of related clients and products. Resolvers
reach nothing else: no module globals, no ``request.app`` lookups of their
own.

Lifetime of the loaders, and why it matters:

- Over HTTP, Strawberry calls ``get_context`` once per request, so each
  request gets fresh loaders. Their cache lives as long as the request:
  a list of N orders asks for its clients and products in one batch each,
  and nothing cached outlives the answer.
- Over a websocket, ``get_context`` runs once per *connection*. Loaders made
  there would cache rows for as long as the socket stays open and serve
  stale clients and products to every later operation. So
  :class:`CargadoresPorOperacion` gives each websocket operation a copy of
  the context with loaders of its own. A subscription is one operation
  that resolves many events: it must also renew the loaders per event
  (:meth:`Contexto.con_cargadores_nuevos`), or the second event would see
  the rows of the first.
- A mutation changes rows that the loaders may already hold (a mutation
  that returns an order, then one that renames its client, in the same
  document), so mutations call :meth:`Cargadores.olvidar` after writing.

Who is calling (:attr:`Contexto.identidad`, see ``servidor.acceso``) is known
when the context is made over HTTP; on a websocket it is set once, from the
``connection_init`` payload, before any operation runs (``esquema.vista``).
That is why the context is not frozen: Strawberry hands the payload over by
setting ``connection_params`` on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader
from strawberry.extensions import SchemaExtension

from servidor.acceso import Identidad
from servidor.ajustes import Ajustes
from servidor.almacen import Almacen, consultas
from servidor.dominio import Dominio
from servidor.eventos import Difusion
from sync.pares import GestorPares

Fila = dict[str, Any]


@dataclass(frozen=True)
class Cargadores:
    """Batched reads of clients and products by id; ``None`` for unknown or deleted ids."""

    clientes: DataLoader[str, Fila | None]
    productos: DataLoader[str, Fila | None]
    derechos: DataLoader[str, dict[str, int]]  # by product: each node's rights to its units

    @classmethod
    def crear(cls, almacen: Almacen) -> Cargadores:
        async def clientes(ids: Sequence[str]) -> list[Fila | None]:
            encontrados = await almacen.leer(consultas.clientes_por_ids, ids)
            return [encontrados.get(i) for i in ids]

        async def productos(ids: Sequence[str]) -> list[Fila | None]:
            encontrados = await almacen.leer(consultas.productos_por_ids, ids, con_derechos=False)
            return [encontrados.get(i) for i in ids]

        async def derechos(ids: Sequence[str]) -> list[dict[str, int]]:
            encontrados = await almacen.leer(consultas.derechos, ids)
            return [encontrados.get(i, {}) for i in ids]

        return cls(
            clientes=DataLoader(load_fn=clientes),
            productos=DataLoader(load_fn=productos),
            derechos=DataLoader(load_fn=derechos),
        )

    def olvidar(self) -> None:
        """Drop every cached row, after a write that may have changed them."""
        self.clientes.clear_all()
        self.productos.clear_all()
        self.derechos.clear_all()


@dataclass
class Contexto:
    dominio: Dominio
    almacen: Almacen
    ajustes: Ajustes
    pares: GestorPares
    difusion: Difusion
    inicio: float
    cargadores: Cargadores
    request: Request | WebSocket
    response: Response | WebSocket | None = None
    identidad: Identidad | None = None
    connection_params: dict[str, Any] | None = None  # the websocket's connection_init payload

    @classmethod
    def desde(
        cls, request: Request | WebSocket, response: Response | WebSocket | None, identidad: Identidad | None = None
    ) -> Contexto:
        """Build the context from what the lifespan put on ``app.state``."""
        estado = request.app.state
        return cls(
            dominio=estado.dominio,
            almacen=estado.almacen,
            ajustes=estado.ajustes,
            pares=estado.pares,
            difusion=estado.difusion,
            inicio=estado.inicio,
            cargadores=Cargadores.crear(estado.almacen),
            request=request,
            response=response,
            identidad=identidad,
        )

    @property
    def nodo_id(self) -> str:
        return self.ajustes.nodo.id

    def con_cargadores_nuevos(self) -> Contexto:
        """The same context with empty loaders: one per websocket operation."""
        return dataclasses.replace(self, cargadores=Cargadores.crear(self.almacen))


class CargadoresPorOperacion(SchemaExtension):
    """Fresh loaders for every operation on a websocket; over HTTP the context is already new."""

    def on_operation(self) -> Iterator[None]:
        contexto = self.execution_context.context
        if isinstance(contexto, Contexto) and isinstance(contexto.request, WebSocket):
            self.execution_context.context = contexto.con_cargadores_nuevos()
        yield
