"""The change vocabulary: what a peer may send."""

from __future__ import annotations

from typing import Any

import pytest

from sync.cambios import Cambio, desde_json
from sync.errores import CambioInvalido


def _cambio(**cambios: Any) -> dict[str, Any]:
    base = {
        "origen": "nodo1",
        "seq": 1,
        "hlc": 1 << 20,
        "entidad": "cliente",
        "clave": "c-1",
        "campo": "nombre",
        "valor": "Ana",
        "base": None,
    }
    base.update(cambios)
    return base


def test_a_well_formed_change_round_trips_through_json() -> None:
    c = desde_json(_cambio())
    assert isinstance(c, Cambio)
    assert desde_json(c.a_json()) == c


@pytest.mark.parametrize(
    "malo",
    [
        {"entidad": "usuarios"},
        {"campo": "password"},
        {"valor": 3},
        {"seq": 0},
        {"seq": "1"},
        {"hlc": -5},
        {"hlc": True},
        {"origen": "nodo 1; DROP TABLE"},
        {"clave": ""},
        {"entidad": "producto", "campo": "precio", "valor": "1.234"},
        {"entidad": "producto", "campo": "precio", "valor": "-1.00"},
        {"entidad": "producto", "campo": "precio", "valor": "NaN"},
        {"entidad": "producto", "campo": "precio", "valor": "4_50"},
        {"entidad": "producto", "campo": "precio", "valor": "\u0664.\u0665\u0660"},
        {"entidad": "producto", "campo": "precio", "valor": "1e2"},
        {"entidad": "producto", "campo": "precio", "valor": " 1.00"},
        {"entidad": "pedido", "campo": "total", "valor": "+1.00"},
        {"entidad": "stock", "campo": "entradas", "valor": -1},
        {"entidad": "stock", "campo": "cedidas", "valor": 3},
        {"entidad": "stock", "campo": "cedidas", "valor": {"destino": "nodo2"}},
        {"entidad": "stock", "campo": "cedidas", "valor": {"destino": "nodo2", "unidades": -1}},
        {"entidad": "stock", "campo": "cedidas", "valor": {"destino": "no es id", "unidades": 1}},
        {"entidad": "stock", "campo": "cedidas", "valor": {"destino": "nodo2", "unidades": 1, "x": 0}},
        {"entidad": "stock", "campo": "cedidas", "valor": {"destino": "nodo1", "unidades": 1}},  # to itself
        {"entidad": "pedido", "campo": "estado", "valor": "perdido"},
        {"entidad": "pedido", "campo": "items", "valor": []},
        {"entidad": "pedido", "campo": "items", "valor": [{"producto_id": "p", "cantidad": 0}]},
        {"base": 7},
        {"valor": "\ud800"},  # a lone surrogate, as JSON's "\\ud800" decodes
        {"valor": "Ana \udfff"},
        {"campo": "telefono", "valor": "\ud83d"},
        {"campo": "direccion", "valor": "Calle \udc00 1"},
        {"entidad": "producto", "campo": "descripcion", "valor": "\ud800"},
        {"entidad": "pedido", "campo": "creado_en", "valor": "\ud800"},
        {"origen": "nodo1\n"},  # "$" in a pattern matches before a final newline
        {"clave": "c-1\n"},
        {"campo": "huella", "valor": "a" * 64 + "\n"},
    ],
)
def test_a_change_that_breaks_the_vocabulary_is_refused(malo: dict[str, Any]) -> None:
    with pytest.raises(CambioInvalido):
        desde_json(_cambio(**malo))


def test_a_transfer_of_rights_names_its_destination_and_running_total() -> None:
    valor = {"destino": "nodo2", "unidades": 4}
    c = desde_json(_cambio(entidad="stock", campo="cedidas", valor=valor))
    assert c.valor == valor and desde_json(c.a_json()) == c


def test_a_change_missing_a_field_is_refused_naming_it() -> None:
    datos = _cambio()
    del datos["hlc"]
    with pytest.raises(CambioInvalido, match="hlc"):
        desde_json(datos)


def test_a_change_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(CambioInvalido):
        desde_json(["nodo1", 1])


def test_a_change_with_an_unknown_key_is_refused() -> None:
    with pytest.raises(CambioInvalido, match="sorpresa"):
        desde_json(_cambio() | {"sorpresa": {"x": 1}})
