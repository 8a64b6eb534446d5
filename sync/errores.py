"""Errors of replication.

The hierarchy::

    ErrorSync                 a change or a peer message was refused
    ├── DerivaReloj           DERIVA_RELOJ: a stamp too far ahead of our clock
    ├── CambioInvalido        CAMBIO_INVALIDO: a change that breaks the vocabulary
    ├── OrigenDesconocido     ORIGEN_DESCONOCIDO: a change of a node that is not a member of the cluster
    ├── OrigenPropio          ORIGEN_PROPIO: a change claiming the receiving node's own origin
    └── CadenaRota            CADENA_ROTA: an earlier batch of the same link was not applied

All are definite: nothing of the refused batch was applied.
"""

from __future__ import annotations


class ErrorSync(Exception):
    codigo = "ERROR_SYNC"

    def __init__(self, mensaje: str) -> None:
        super().__init__(mensaje)
        self.mensaje = mensaje


class DerivaReloj(ErrorSync):
    codigo = "DERIVA_RELOJ"


class CambioInvalido(ErrorSync):
    codigo = "CAMBIO_INVALIDO"


class OrigenDesconocido(ErrorSync):
    codigo = "ORIGEN_DESCONOCIDO"


class OrigenPropio(ErrorSync):
    codigo = "ORIGEN_PROPIO"


class CadenaRota(ErrorSync):
    codigo = "CADENA_ROTA"
