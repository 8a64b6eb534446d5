"""Checking what a client sent, before anything is read or written.

Each function takes the decoded body (any JSON value) and returns clean
values or raises :class:`Validacion` naming the field. Unknown fields are
refused rather than ignored: a typo in a field name should not silently
drop the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from email_validator import EmailNotValidError, validate_email

from servidor.errores import Validacion
from sync.cambios import ESTADOS, MAX_DINERO, MAX_ITEMS, es_id

MAX_NOMBRE = 200
MAX_EMAIL = 254
MAX_TELEFONO = 50
MAX_TEXTO_LARGO = 2000
MAX_PRECIO = MAX_DINERO
MAX_CANTIDAD = 1_000_000
MAX_STOCK = 1_000_000_000
# Every list the APIs answer is a page: at most MAX_PAGINA items, PAGINA_POR_DEFECTO unless asked.
PAGINA_POR_DEFECTO = 100
MAX_PAGINA = 1000
MAX_DESDE = 1_000_000_000
TEXTO_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_JSON = json.JSONEncoder(ensure_ascii=False)  # built once: json.dumps with options builds one per call


@dataclass(frozen=True)
class Pagina:
    """Which part of a list: ``limite`` items after skipping ``desde``, in the list's own order."""

    limite: int = PAGINA_POR_DEFECTO
    desde: int = 0

    @property
    def siguiente(self) -> Pagina:
        return Pagina(self.limite, self.desde + self.limite)


def es_texto(valor: str) -> bool:
    """Whether ``valor`` is Unicode text: JSON's ``"\\ud800"`` decodes to half a surrogate pair, which is not."""
    try:
        valor.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unicode_valido(datos: Any) -> Any:
    """``datos`` (decoded JSON) if every string in it, names of fields too, is Unicode text.

    A lone surrogate can be neither stored, nor logged, nor sent back; it is
    refused naming where it is (``items[0].producto_id``). Checked once for
    the whole request, before anything looks at the values: one encoding in
    C when all is well, a walk only to name the culprit.
    """
    try:
        _JSON.encode(datos).encode("utf-8")
        return datos
    except UnicodeEncodeError:
        pass
    pila: list[tuple[Any, str | None]] = [(datos, None)]
    while pila:
        valor, ruta = pila.pop()
        if isinstance(valor, str) and not es_texto(valor):
            raise Validacion(f"{ruta or 'body'!r} is not valid Unicode text", {"campo": ruta})
        if isinstance(valor, Mapping):
            for nombre, otro in valor.items():
                if not es_texto(nombre):
                    raise Validacion(f"a field name in {ruta or 'body'!r} is not valid Unicode text", {"campo": ruta})
                pila.append((otro, nombre if ruta is None else f"{ruta}.{nombre}"))
        elif isinstance(valor, list):
            pila.extend((otro, f"{ruta or ''}[{n}]") for n, otro in enumerate(valor))
    return datos


def objeto(datos: Any, permitidos: set[str], que: str) -> Mapping[str, Any]:
    if not isinstance(datos, Mapping):
        raise Validacion(f"{que} must be a JSON object", {"campo": None})
    desconocidos = sorted(set(datos) - permitidos)
    if desconocidos:
        raise Validacion(
            f"unknown field {desconocidos[0]!r} in {que}",
            {"campo": desconocidos[0], "permitidos": sorted(permitidos)},
        )
    return datos


def requeridos(datos: Mapping[str, Any], campos: tuple[str, ...]) -> None:
    for campo in campos:
        if datos.get(campo) is None:
            raise Validacion(f"{campo!r} is required", {"campo": campo})


def texto(valor: Any, campo: str, maximo: int, nulo: bool = False) -> str | None:
    if valor is None and nulo:
        return None
    if not isinstance(valor, str):
        raise Validacion(f"{campo!r} must be a string", {"campo": campo})
    if not es_texto(valor):
        raise Validacion(f"{campo!r} is not valid Unicode text", {"campo": campo})
    limpio = valor.strip()
    if not limpio and not nulo:
        raise Validacion(f"{campo!r} must not be empty", {"campo": campo})
    if len(limpio) > maximo:
        raise Validacion(f"{campo!r} is longer than {maximo} characters", {"campo": campo})
    return limpio or None


def email(valor: Any) -> str:
    bruto = texto(valor, "email", MAX_EMAIL)
    assert bruto is not None
    try:
        return validate_email(bruto, check_deliverability=False).normalized
    except EmailNotValidError as e:
        raise Validacion(f"'email' is not a valid address: {e}", {"campo": "email"}) from None


def entero(valor: Any, campo: str, minimo: int, maximo: int) -> int:
    if not isinstance(valor, int) or isinstance(valor, bool):
        raise Validacion(f"{campo!r} must be an integer", {"campo": campo})
    if not minimo <= valor <= maximo:
        raise Validacion(f"{campo!r} must be between {minimo} and {maximo}", {"campo": campo})
    return valor


def decimal(valor: Any) -> Decimal | None:
    """The exact value of a JSON number or of a money string (``DINERO``); None for anything else.

    A string must be ASCII digits, with an optional minus and decimals
    (``TEXTO_DECIMAL``): ``Decimal`` alone would also read ``"4_50"`` as
    450, digits of other scripts, exponents, spaces, ``"NaN"``. A float is
    read through its repr, the shortest exact decimal of what was typed.
    Which values are acceptable is the caller's to say: :func:`dinero` then
    takes at most two decimals, so the money strings it accepts are those of
    ``sync.cambios.DINERO``.
    """
    if isinstance(valor, str):
        return Decimal(valor) if TEXTO_DECIMAL.fullmatch(valor) else None
    if isinstance(valor, bool):
        return None
    if isinstance(valor, int):
        return Decimal(valor)
    if isinstance(valor, float):
        return Decimal(repr(valor))
    return valor if isinstance(valor, Decimal) else None


def dinero(valor: Any, campo: str) -> Decimal:
    """Money from a JSON number or a decimal string such as ``"4.50"``; at most two decimals."""
    d = decimal(valor)
    if d is None:
        raise Validacion(f"{campo!r} must be a number or a decimal string such as '4.50'", {"campo": campo})
    if not d.is_finite() or d < 0 or d > MAX_PRECIO:
        raise Validacion(f"{campo!r} must be between 0 and {MAX_PRECIO}", {"campo": campo})
    if d != d.quantize(Decimal("0.01")):
        raise Validacion(f"{campo!r} has more than two decimals", {"campo": campo})
    return abs(d.quantize(Decimal("0.01")))  # abs: "-0" is 0.00, not -0.00


def identificador(valor: Any, campo: str) -> str:
    if not es_id(valor):
        raise Validacion(f"{campo!r} must be an id", {"campo": campo})
    assert isinstance(valor, str)
    return valor


def pagina(limite: Any = PAGINA_POR_DEFECTO, desde: Any = 0) -> Pagina:
    return Pagina(entero(limite, "limite", 1, MAX_PAGINA), entero(desde, "desde", 0, MAX_DESDE))


def estado(valor: Any) -> str:
    if valor not in ESTADOS:
        raise Validacion(
            f"'estado' must be one of {', '.join(ESTADOS)}", {"campo": "estado", "permitidos": list(ESTADOS)}
        )
    assert isinstance(valor, str)
    return valor


CAMPOS_CLIENTE = {"nombre", "email", "telefono", "direccion"}
CAMPOS_PRODUCTO = {"nombre", "descripcion", "precio", "stock"}


def cliente(datos: Any, parcial: bool = False) -> dict[str, Any]:
    datos = objeto(datos, CAMPOS_CLIENTE, "cliente")
    if not parcial:
        requeridos(datos, ("nombre", "email"))
    elif not datos:
        raise Validacion("nothing to update", {"campo": None})
    limpio: dict[str, Any] = {}
    for campo, valor in datos.items():
        if campo == "nombre":
            limpio[campo] = texto(valor, campo, MAX_NOMBRE)
        elif campo == "email":
            limpio[campo] = email(valor)
        elif campo == "telefono":
            limpio[campo] = texto(valor, campo, MAX_TELEFONO, nulo=True)
        else:
            limpio[campo] = texto(valor, campo, MAX_TEXTO_LARGO, nulo=True)
    return limpio


def producto(datos: Any, parcial: bool = False) -> dict[str, Any]:
    datos = objeto(datos, CAMPOS_PRODUCTO, "producto")
    if not parcial:
        requeridos(datos, ("nombre", "precio"))
    elif not datos:
        raise Validacion("nothing to update", {"campo": None})
    limpio: dict[str, Any] = {}
    for campo, valor in datos.items():
        if campo == "nombre":
            limpio[campo] = texto(valor, campo, MAX_NOMBRE)
        elif campo == "descripcion":
            limpio[campo] = texto(valor, campo, MAX_TEXTO_LARGO, nulo=True)
        elif campo == "precio":
            limpio[campo] = dinero(valor, campo)
        else:
            limpio[campo] = entero(valor, campo, 0, MAX_STOCK)
    return limpio


def pedido(datos: Any) -> tuple[str, dict[str, int]]:
    """Answer the client id and the units asked per product (lines merged)."""
    datos = objeto(datos, {"cliente_id", "items"}, "pedido")
    requeridos(datos, ("cliente_id", "items"))
    cliente_id = identificador(datos["cliente_id"], "cliente_id")
    items = datos["items"]
    if not isinstance(items, list) or not items:
        raise Validacion("'items' must be a non-empty list", {"campo": "items"})
    if len(items) > MAX_ITEMS:
        raise Validacion(f"an order has at most {MAX_ITEMS} lines", {"campo": "items"})
    unidades: dict[str, int] = {}
    for n, item in enumerate(items):
        item = objeto(item, {"producto_id", "cantidad"}, f"items[{n}]")
        requeridos(item, ("producto_id", "cantidad"))
        pid = identificador(item["producto_id"], f"items[{n}].producto_id")
        cantidad = entero(item["cantidad"], f"items[{n}].cantidad", 1, MAX_CANTIDAD)
        unidades[pid] = unidades.get(pid, 0) + cantidad
    return cliente_id, unidades
