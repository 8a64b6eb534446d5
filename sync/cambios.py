"""A change, and the vocabulary of what a change may say.

A change is ``(origen, seq, hlc, entidad, clave, campo, valor)``: node
``origen`` set field ``campo`` of ``entidad`` ``clave`` to ``valor``, as its
``seq``-th change, at clock ``hlc``. Fields are last-writer-wins registers,
except those of the ``stock`` entity (``clave`` is a product), which are the
origin's own grow-only entries of the product's bounded counter, each
carrying its new total so that merging is ``max``:

- ``entradas``: units the origin added (product creation, restocks);
- ``salidas``: units the origin sold or removed;
- ``cedidas``: ``{"destino": node, "unidades": total}``, the rights to units
  the origin has transferred to ``destino`` so far (one entry per pair).

Entity ``ajuste`` is a stock adjustment made with an idempotency key: its
``movimiento`` (``{"producto_id", "cantidad"}``) moves units once per key,
however many nodes took the key (see ``sync.reglas``, credits). ``huella``
is the fingerprint of the request that created an entity with a key.

``base`` is set on ``pedido.estado`` writes only: the writer's knowledge of
the order's earlier ``estado`` writes (``sync.reglas.contexto_texto``), by
which concurrent writes are recognised causally.

Everything a peer sends passes :func:`validar` before it reaches ``apply``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sync import reglas
from sync.errores import CambioInvalido

ESTADOS = ("pendiente", "confirmado", "enviado", "entregado", "cancelado")
MAX_ID = 64
MAX_TEXTO = 2000
MAX_ITEMS = 200
MAX_UNIDADES = 10**12
MAX_DINERO = Decimal("9999999999.99")  # DECIMAL(12,2)
MAX_BASE = 2000
# fullmatch, never match with "$": "$" also matches before a final newline.
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_HUELLA = re.compile(r"[0-9a-f]{64}")
# Money as text: ASCII digits only. Decimal() alone also takes "4_50", other scripts' digits,
# exponents, spaces, "NaN" and "Infinity".
DINERO = re.compile(r"-?[0-9]+(?:\.[0-9]{1,2})?")


@dataclass(frozen=True, slots=True)
class Cambio:
    origen: str
    seq: int
    hlc: int
    entidad: str
    clave: str
    campo: str
    valor: Any
    base: str | None = None

    @property
    def sello(self) -> tuple[int, str]:
        """LWW order: the stamp, then the origin id to break ties."""
        return (self.hlc, self.origen)

    @classmethod
    def desde_fila(cls, fila: Any) -> Cambio:
        return cls(
            origen=fila.origen,
            seq=fila.seq,
            hlc=fila.hlc,
            entidad=fila.entidad,
            clave=fila.clave,
            campo=fila.campo,
            valor=json.loads(fila.valor),
            base=fila.base,
        )

    def a_json(self) -> dict[str, Any]:
        """The change as a peer message carries it."""
        return {
            "origen": self.origen,
            "seq": self.seq,
            "hlc": self.hlc,
            "entidad": self.entidad,
            "clave": self.clave,
            "campo": self.campo,
            "valor": self.valor,
            "base": self.base,
        }


# Built once: json.dumps with options builds a new encoder on every call.
_CODIFICADOR = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def codificar(valor: Any) -> str:
    """The JSON text of a value as the log stores it: compact, keys sorted, UTF-8 as is."""
    return _CODIFICADOR.encode(valor)


def es_id(valor: Any) -> bool:
    return isinstance(valor, str) and bool(_ID.fullmatch(valor))


# --- value checks: each returns True when the value is acceptable -----------


def _unicode(v: str) -> bool:
    """Whether ``v`` is Unicode text.

    JSON's ``"\\ud800"`` decodes to half a surrogate pair, which no driver can
    store: refused here, with the batch, not by the driver mid-transaction.
    """
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _texto(v: Any) -> bool:
    return isinstance(v, str) and 0 < len(v) <= MAX_TEXTO and _unicode(v)


def _texto_o_nulo(v: Any) -> bool:
    return v is None or (isinstance(v, str) and len(v) <= MAX_TEXTO and _unicode(v))


def _booleano(v: Any) -> bool:
    return isinstance(v, bool)


def _dinero(v: Any) -> bool:
    if not isinstance(v, str) or len(v) > 32 or not DINERO.fullmatch(v):
        return False
    return 0 <= Decimal(v) <= MAX_DINERO


def _unidades(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= MAX_UNIDADES


def _cesion(v: Any) -> bool:
    if not isinstance(v, dict) or set(v) != {"destino", "unidades"}:
        return False
    return es_id(v["destino"]) and _unidades(v["unidades"])


def _estado(v: Any) -> bool:
    return isinstance(v, str) and v in ESTADOS


def _verdadero(v: Any) -> bool:
    """Flags that are only ever set: a write of ``false`` has no meaning."""
    return v is True


def _huella(v: Any) -> bool:
    return isinstance(v, str) and bool(_HUELLA.fullmatch(v))


def _movimiento(v: Any) -> bool:
    if not isinstance(v, dict) or set(v) != {"producto_id", "cantidad"}:
        return False
    n = v["cantidad"]
    return es_id(v["producto_id"]) and isinstance(n, int) and not isinstance(n, bool) and 0 < abs(n) <= MAX_UNIDADES


def _items(v: Any) -> bool:
    if not isinstance(v, list) or not 0 < len(v) <= MAX_ITEMS:
        return False
    for item in v:
        if not isinstance(item, dict) or set(item) != {
            "producto_id",
            "cantidad",
            "precio_unitario",
            "subtotal",
        }:
            return False
        if not es_id(item["producto_id"]) or not _dinero(item["precio_unitario"]):
            return False
        if not _unidades(item["cantidad"]) or item["cantidad"] == 0 or not _dinero(item["subtotal"]):
            return False
    return True


VOCABULARIO: dict[str, dict[str, Callable[[Any], bool]]] = {
    "cliente": {
        "nombre": _texto,
        "email": _texto,
        "telefono": _texto_o_nulo,
        "direccion": _texto_o_nulo,
        "creado_en": _texto,
        "eliminado": _booleano,
        "huella": _huella,
    },
    "producto": {
        "nombre": _texto,
        "descripcion": _texto_o_nulo,
        "precio": _dinero,
        "creado_en": _texto,
        "huella": _huella,
    },
    "pedido": {
        "cliente_id": es_id,
        "estado": _estado,
        "total": _dinero,
        "creado_en": _texto,
        "nodo_origen": es_id,
        "eliminado_en": _estado,
        "devuelto": _verdadero,
        "items": _items,
        "huella": _huella,
    },
    "ajuste": {
        "movimiento": _movimiento,
        "creado_en": _texto,
        "firme": es_id,
        "huella": _huella,
    },
    "stock": {
        "entradas": _unidades,
        "salidas": _unidades,
        "cedidas": _cesion,
    },
}


def validar(c: Any) -> Cambio:
    """Check a change against the vocabulary; raise :class:`CambioInvalido`."""
    if not isinstance(c, Cambio):
        raise CambioInvalido("not a change")
    if not es_id(c.origen) or not es_id(c.clave):
        raise CambioInvalido(f"bad origin or key in change {c.origen}:{c.seq}")
    for nombre in ("seq", "hlc"):
        n = getattr(c, nombre)
        if not isinstance(n, int) or isinstance(n, bool) or not 0 < n < 2**63:
            raise CambioInvalido(f"bad {nombre} in change {c.origen}:{c.seq}")
    campos = VOCABULARIO.get(c.entidad)
    if campos is None:
        raise CambioInvalido(f"unknown entity {c.entidad!r} in change {c.origen}:{c.seq}")
    regla = campos.get(c.campo)
    if regla is None:
        raise CambioInvalido(f"unknown field {c.entidad}.{c.campo} in change {c.origen}:{c.seq}")
    if not regla(c.valor):
        raise CambioInvalido(f"bad value for {c.entidad}.{c.campo} in change {c.origen}:{c.seq}")
    if c.campo == "cedidas" and c.valor["destino"] == c.origen:
        raise CambioInvalido(f"a node cannot transfer rights to itself in change {c.origen}:{c.seq}")
    if c.base is not None:
        if (c.entidad, c.campo) != ("pedido", "estado") or not isinstance(c.base, str) or len(c.base) > MAX_BASE:
            raise CambioInvalido(f"bad base in change {c.origen}:{c.seq}")
        try:
            visto = reglas.contexto(c.base)
        except ValueError:
            raise CambioInvalido(f"bad base in change {c.origen}:{c.seq}") from None
        if any(not es_id(o) or not 0 < s < 2**63 for o, s in visto.items()):
            raise CambioInvalido(f"bad base in change {c.origen}:{c.seq}")
    return c


CLAVES_JSON = {"origen", "seq", "hlc", "entidad", "clave", "campo", "valor", "base"}


def desde_json(datos: Any) -> Cambio:
    """Build a change from a peer's JSON object, validating every field."""
    if not isinstance(datos, dict):
        raise CambioInvalido("a change must be a JSON object")
    extra = set(datos) - CLAVES_JSON
    if extra:
        raise CambioInvalido(f"change with unknown key {sorted(extra)[0]!r}")
    try:
        c = Cambio(
            origen=datos["origen"],
            seq=datos["seq"],
            hlc=datos["hlc"],
            entidad=datos["entidad"],
            clave=datos["clave"],
            campo=datos["campo"],
            valor=datos["valor"],
            base=datos.get("base"),
        )
    except KeyError as e:
        raise CambioInvalido(f"change without {e.args[0]!r}") from None
    return validar(c)
