"""Who may resolve a root field: Strawberry permission classes over ``servidor.acceso``.

Every root field of Query, Mutation and Subscription names one of these
(``tests/integration/test_graphql_acceso.py`` checks that none is left
open). The caller was identified before any field runs: over HTTP from the
``Authorization`` header (a request without a valid token is answered 401
before the document is read, see ``esquema.vista``), over the websocket from
the ``connection_init`` payload. So here only the role is in question: a
role too low is a ``PROHIBIDO`` error on that field (``extensions.codigo``),
raised before its resolver reads anything.
"""

from __future__ import annotations

from typing import Any

from strawberry.permission import BasePermission

from servidor.acceso import Rol, exigir
from servidor.errores import NoAutenticado


class _ConRol(BasePermission):
    rol = Rol.ADMIN
    message = "not allowed"

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        identidad = getattr(info.context, "identidad", None)
        if identidad is None:
            raise NoAutenticado("a bearer token is required")
        exigir(identidad, self.rol)
        return True


class Lectura(_ConRol):
    rol = Rol.LECTURA


class Operador(_ConRol):
    rol = Rol.OPERADOR


class Admin(_ConRol):
    rol = Rol.ADMIN
