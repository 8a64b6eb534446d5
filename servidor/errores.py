"""Errors a client can be told about, each with a stable code.

The hierarchy::

    ErrorPedidos                    any expected failure (code, message, detail)
    ├── EntradaInvalida       400   JSON_INVALIDO: the body is not JSON
    ├── NoAutenticado         401   NO_AUTENTICADO: no bearer token, or not one of ours
    ├── Prohibido             403   PROHIBIDO: the token's role may not do this
    ├── NoEncontrado          404   NO_ENCONTRADO: unknown or deleted id
    ├── Validacion            422   VALIDACION: wrong type, missing or bad field
    │   └── IdempotenciaConflicto   IDEMPOTENCIA_CONFLICTO: a key reused with another request
    ├── Conflicto             409   (abstract) the request is valid but the state refuses it
    │   ├── StockInsuficiente       STOCK_INSUFICIENTE
    │   └── TransicionInvalida      TRANSICION_INVALIDA
    ├── CuerpoDemasiadoGrande 413   CUERPO_DEMASIADO_GRANDE
    ├── SuscriptorLento       429   SUSCRIPTOR_LENTO: a subscriber fell too far behind
    ├── CabecerasDemasiadoGrandes 431  CABECERAS_DEMASIADO_GRANDES: a request head over the limit
    └── NoDisponible          503   (abstract) the node cannot take it now; try again later
        ├── Sobrecarga              SOBRECARGA: too many connections open (``Retry-After``)
        └── AlmacenNoDisponible     ALMACEN_NO_DISPONIBLE: the database cannot write
                                    (disk full, I/O error); reads still work

Authentication is checked before anything else, and the role before any
lookup, so a 401 or 403 never says whether an id exists.

Every one of them is *definite*: the request changed nothing (a write
refused with ``ALMACEN_NO_DISPONIBLE`` was rolled back). The 431 and
``SOBRECARGA`` are answered by the connection itself (``servidor.conexiones``),
before any application runs. REST answers
``{"error": {"codigo", "mensaje", "detalle"}}`` with the status above;
GraphQL puts the code in ``extensions.codigo``. Anything else is an internal
error, logged and masked.
"""

from __future__ import annotations

from typing import Any


class ErrorPedidos(Exception):
    codigo = "ERROR"
    estado_http = 400
    cabeceras: tuple[tuple[str, str], ...] = ()  # headers of the HTTP answer

    def __init__(self, mensaje: str, detalle: dict[str, Any] | None = None) -> None:
        super().__init__(mensaje)
        self.mensaje = mensaje
        self.detalle = detalle or {}

    def como_json(self) -> dict[str, Any]:
        return {"error": {"codigo": self.codigo, "mensaje": self.mensaje, "detalle": self.detalle}}


class EntradaInvalida(ErrorPedidos):
    codigo = "JSON_INVALIDO"
    estado_http = 400


class NoAutenticado(ErrorPedidos):
    codigo = "NO_AUTENTICADO"
    estado_http = 401
    # RFC 6750: the scheme a client must use, and that the token it sent (if any) is not valid.
    cabeceras = (("WWW-Authenticate", 'Bearer realm="pedidos"'),)


class Prohibido(ErrorPedidos):
    codigo = "PROHIBIDO"
    estado_http = 403


class NoEncontrado(ErrorPedidos):
    codigo = "NO_ENCONTRADO"
    estado_http = 404

    def __init__(self, entidad: str, id: str) -> None:
        super().__init__(f"{entidad} {id!r} no existe", {"entidad": entidad, "id": id})


class Validacion(ErrorPedidos):
    codigo = "VALIDACION"
    estado_http = 422


class IdempotenciaConflicto(Validacion):
    codigo = "IDEMPOTENCIA_CONFLICTO"


class Conflicto(ErrorPedidos):
    estado_http = 409


class StockInsuficiente(Conflicto):
    codigo = "STOCK_INSUFICIENTE"


class TransicionInvalida(Conflicto):
    codigo = "TRANSICION_INVALIDA"


class CuerpoDemasiadoGrande(ErrorPedidos):
    codigo = "CUERPO_DEMASIADO_GRANDE"
    estado_http = 413


class SuscriptorLento(ErrorPedidos):
    codigo = "SUSCRIPTOR_LENTO"
    estado_http = 429


class CabecerasDemasiadoGrandes(ErrorPedidos):
    codigo = "CABECERAS_DEMASIADO_GRANDES"
    estado_http = 431


class NoDisponible(ErrorPedidos):
    estado_http = 503


class Sobrecarga(NoDisponible):
    codigo = "SOBRECARGA"
    cabeceras = (("Retry-After", "1"),)


class AlmacenNoDisponible(NoDisponible):
    codigo = "ALMACEN_NO_DISPONIBLE"
