"""REST routes about peers: their health, what they still lack, sync now, and a digest.

Thin handlers over the peer manager (``app.state.pares``) and the store.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from servidor.acceso import Rol
from servidor.almacen import consultas
from servidor.rest import Recurso, RespuestaJSON


async def salud_nodos(request: Request) -> Response:
    """One entry per peer: ``id, url, activo, ultimo_contacto, pendientes, lag_ms``."""
    return RespuestaJSON(await request.app.state.pares.salud())


async def logs_pendientes(request: Request) -> Response:
    """Per peer: how many of our changes it has not acknowledged, and the first of them."""
    return RespuestaJSON(await request.app.state.pares.pendientes())


async def replicar(request: Request) -> Response:
    """A pull round with every peer now; per peer what it gave or why it could not."""
    resultados = await request.app.state.pares.replicar()
    return RespuestaJSON({"nodo": request.app.state.almacen.nodo_id, "pares": resultados})


async def digest(request: Request) -> Response:
    """The canonical digest of this node's replicated state, with its version vector.

    Converged nodes answer the same pair; comparing them is how an operator
    (or a test) knows that the cluster has settled.
    """
    almacen = request.app.state.almacen
    vector = almacen.vector
    valor = await almacen.leer(consultas.digest)
    return RespuestaJSON({"nodo": almacen.nodo_id, "digest": valor, "vector": vector})


def rutas() -> list[Recurso]:
    """Peers' health is for any reader (the page learns where to fail over from it); replication, admin only."""
    return [
        ("/health/nodos", {"GET": (Rol.LECTURA, salud_nodos)}),
        ("/replicacion/logs/pendientes", {"GET": (Rol.ADMIN, logs_pendientes)}),
        ("/replicacion/replicar", {"POST": (Rol.ADMIN, replicar)}),
        ("/replicacion/digest", {"GET": (Rol.ADMIN, digest)}),
    ]
