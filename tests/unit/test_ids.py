"""Entity ids: UUID version 7, unique, and in creation order within a process."""

from __future__ import annotations

import uuid

from servidor.dominio import ids
from servidor.dominio.ids import nuevo_id


def test_ids_made_in_a_row_sort_in_the_order_they_were_made() -> None:
    hechos = [nuevo_id() for _ in range(5000)]  # many share a millisecond
    assert hechos == sorted(hechos)
    assert len(set(hechos)) == len(hechos)
    for texto in hechos[:50]:
        u = uuid.UUID(texto)
        assert u.version == 7 and u.variant == uuid.RFC_4122


def test_an_id_made_after_the_clock_stepped_back_still_sorts_after() -> None:
    antes = nuevo_id()
    ms_antes = int(antes.replace("-", "")[:12], 16)
    guardado = ids._ultimo
    ids._ultimo = (ms_antes + 5_000, guardado[1])  # as if the last id were made 5 s ahead
    try:
        despues = nuevo_id()
    finally:
        ids._ultimo = guardado
    assert despues > antes
    assert int(despues.replace("-", "")[:12], 16) == ms_antes + 5_000


def test_an_explicit_time_is_kept() -> None:
    assert nuevo_id(ms=1).startswith("00000000-0001-7")
