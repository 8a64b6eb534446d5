"""Merge rules as pure functions."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from sync import reglas


def test_the_higher_stamp_wins_a_register() -> None:
    assert reglas.gana((20, "nodo1"), (10, "nodo9"))
    assert not reglas.gana((10, "nodo9"), (20, "nodo1"))


def test_equal_stamps_are_broken_by_origin_id() -> None:
    assert reglas.gana((10, "nodo2"), (10, "nodo1"))
    assert not reglas.gana((10, "nodo1"), (10, "nodo2"))


def test_a_write_does_not_replace_itself() -> None:
    assert not reglas.gana((10, "nodo1"), (10, "nodo1"))


def test_the_first_write_of_a_field_always_wins() -> None:
    assert reglas.gana((1, "a"), None)


@given(st.lists(st.tuples(st.integers(0, 50), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=6, unique=True))
def test_every_arrival_order_picks_the_same_register_winner(escrituras: list[tuple[int, str]]) -> None:
    ganadores = set()
    for orden in itertools.islice(itertools.permutations(escrituras), 120):
        actual = None
        for s in orden:
            if reglas.gana(s, actual):
                actual = s
        ganadores.add(actual)
    assert ganadores == {max(escrituras)}


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=20))
def test_counter_entries_merge_by_max_so_duplicates_and_order_do_not_matter(valores: list[int]) -> None:
    actual = None
    for v in valores + valores[::-1]:
        actual = reglas.fusionar_contador(actual, v)
    assert actual == max(valores)
