"""Idempotency keys: a create retried anywhere, any time, happens once.

A client that lost the answer to a create retries it with the same key, on
the same node or on another. The entity's id is a function of the key
(:func:`~servidor.dominio.ids.id_de_clave`), and the creation stores the
request's fingerprint (``huella``), so:

- a node that holds the entity answers it as it stands (``Repeticion``),
  writing nothing, when the fingerprint matches, and refuses with
  ``IDEMPOTENCIA_CONFLICTO`` when the key came with another request;
- two nodes cut off from each other both create the id; the merge keeps one
  creation (every field of one write shares its stamp, ``sync.reglas``), the
  losing creation's units go back to the node that moved them, and a clash
  of different requests is listed in ``conflictos`` (campo ``huella``).

Keys live as long as the entity they created: an order's key answers that
order for as long as the order exists.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from servidor.errores import IdempotenciaConflicto, Validacion
from sync.cambios import es_id

CABECERA = "Idempotency-Key"
CABECERA_REPETIDA = "Idempotent-Replayed"


class Repeticion(dict[str, Any]):
    """An entity answered again for a key that already created it (nothing was written)."""


def clave(valor: Any) -> str | None:
    """A key as the client sent it: 1–64 characters of ``[A-Za-z0-9_.:-]``, or None."""
    if valor is None:
        return None
    if not es_id(valor):
        raise Validacion(
            f"{CABECERA} must be 1 to 64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'", {"campo": CABECERA}
        )
    assert isinstance(valor, str)
    return valor


def huella(ruta: str, datos: Any) -> str:
    """Fingerprint of a request: its kind and its validated values, canonically encoded."""
    texto = json.dumps({"ruta": ruta, "datos": datos}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(texto.encode()).hexdigest()


def repetir(guardada: str | None, nueva: str, entidad: str, id: str) -> None:
    """Refuse a key that created ``entidad`` ``id`` from another request."""
    if guardada != nueva:
        raise IdempotenciaConflicto(
            f"the {CABECERA} of {entidad} {id!r} was used with another request",
            {"campo": CABECERA, "entidad": entidad, "id": id},
        )
