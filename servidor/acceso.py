"""Who may call the API: bearer tokens, each with a role.

The contract, the same for REST, GraphQL over HTTP and the GraphQL websocket:

- A client sends ``Authorization: Bearer <token>`` (on the websocket, the
  same text as ``authorization`` in the ``connection_init`` payload).
- The node keeps only each token's SHA-256 (a token written in plain in the
  settings is hashed as it is loaded): :func:`identificar` hashes what was
  sent and compares it with
  every known hash in constant time (``hmac.compare_digest``), without
  stopping at the first match, so the answer takes as long whichever token
  matches or none does.
- Missing, malformed or unknown token: :class:`NoAutenticado` (401). A known
  token whose role is too low: :class:`Prohibido` (403). Both are raised
  before the operation reads anything, so neither says whether an id exists.

Roles are ordered; each may do what the ones below it may:

==========  ===============================================================
``lectura``   every read: clientes, productos, pedidos, conflictos, this
              node's health and its peers' (REST ``GET``, GraphQL queries
              and subscriptions)
``operador``  and every write of the domain: clientes, productos, stock,
              pedidos and their estado
``admin``     and the replication endpoints (``/api/replicacion/*``)
==========  ===============================================================

Open to anyone: ``GET /api/health/ping`` (for process supervisors and the
page's failover), ``GET /api/openapi.json``, the page's static files and
GraphiQL's HTML. Peers do not use tokens: ``/sync`` has its own proof of
the cluster secret (``sync.protocolo``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from enum import IntEnum

from servidor.errores import NoAutenticado, Prohibido

ESQUEMA = "bearer"
MAX_TOKEN = 512  # longer is no token of ours; not worth hashing


class Rol(IntEnum):
    LECTURA = 1
    OPERADOR = 2
    ADMIN = 3

    @property
    def nombre(self) -> str:
        return self.name.lower()

    @classmethod
    def desde(cls, texto: str) -> Rol:
        """The role named ``texto`` (``lectura``, ``operador``, ``admin``); ``ValueError`` otherwise."""
        for rol in cls:
            if rol.nombre == texto:
                return rol
        raise ValueError(f"unknown role {texto!r} (known: {', '.join(r.nombre for r in cls)})")


@dataclass(frozen=True)
class Token:
    """A client token as the settings declare it: a name for the logs, its hash, its role."""

    nombre: str
    sha256: bytes
    rol: Rol

    @classmethod
    def desde_texto(cls, nombre: str, token: str, rol: Rol) -> Token:
        return cls(nombre, resumen(token), rol)


@dataclass(frozen=True)
class Identidad:
    """Who a request comes from: the name of its token and the token's role."""

    nombre: str
    rol: Rol


def resumen(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def token_de(cabecera: str | None) -> str | None:
    """The token of an ``Authorization`` value, if it is ``Bearer <token>``."""
    if not cabecera:
        return None
    esquema, _, token = cabecera.strip().partition(" ")
    token = token.strip()
    if esquema.lower() != ESQUEMA or not token or len(token) > MAX_TOKEN:
        return None
    return token


def identificar(tokens: tuple[Token, ...], cabecera: str | None) -> Identidad:
    """Who sent ``Authorization: cabecera``; :class:`NoAutenticado` when nobody we know."""
    token = token_de(cabecera)
    if token is None:
        raise NoAutenticado("a bearer token is required: send 'Authorization: Bearer <token>'")
    enviado = resumen(token)
    hallado: Token | None = None
    for conocido in tokens:
        # Every hash is compared, so the time taken does not depend on which one matches.
        if hmac.compare_digest(enviado, conocido.sha256) and hallado is None:
            hallado = conocido
    if hallado is None:
        raise NoAutenticado("the bearer token is not valid")
    return Identidad(hallado.nombre, hallado.rol)


def exigir(identidad: Identidad, rol: Rol) -> None:
    """:class:`Prohibido` unless ``identidad`` has ``rol`` or a higher one."""
    if identidad.rol < rol:
        raise Prohibido(
            f"role {identidad.rol.nombre!r} may not do this; it needs {rol.nombre!r}",
            {"rol": identidad.rol.nombre, "necesita": rol.nombre},
        )
