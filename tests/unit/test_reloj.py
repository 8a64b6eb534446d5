"""HLC rules with an injected wall clock."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync import reloj
from sync.errores import DerivaReloj
from sync.reloj import Reloj, contador, milisegundos, sello


def test_a_local_event_takes_the_wall_clock_when_it_is_ahead() -> None:
    assert reloj.enviar(sello(1000, 5), ahora_ms=2000) == sello(2000, 0)


def test_a_local_event_counts_up_when_the_wall_clock_has_not_moved() -> None:
    assert reloj.enviar(sello(1000, 5), ahora_ms=1000) == sello(1000, 6)


def test_a_local_event_never_goes_back_when_the_wall_clock_does() -> None:
    assert reloj.enviar(sello(5000, 0), ahora_ms=1000) == sello(5000, 1)


def test_receiving_a_later_stamp_moves_past_it() -> None:
    recibido = sello(1200, 7)
    nuevo = reloj.recibir(sello(1000, 0), recibido, ahora_ms=1100, max_deriva_ms=500)
    assert nuevo > recibido
    assert milisegundos(nuevo) == 1200 and contador(nuevo) == 8


def test_receiving_an_older_stamp_still_moves_forward() -> None:
    actual = sello(3000, 2)
    assert reloj.recibir(actual, sello(1000, 0), ahora_ms=3000, max_deriva_ms=500) == sello(3000, 3)


def test_a_stamp_further_ahead_than_the_allowed_drift_is_refused() -> None:
    with pytest.raises(DerivaReloj, match="501 ms ahead"):
        reloj.recibir(0, sello(1501), ahora_ms=1000, max_deriva_ms=500)


def test_a_stamp_exactly_at_the_allowed_drift_is_accepted() -> None:
    assert reloj.recibir(0, sello(1500), ahora_ms=1000, max_deriva_ms=500) > sello(1500)


def test_the_clock_object_keeps_its_last_stamp_and_refuses_without_moving() -> None:
    ahora = [1000]
    r = Reloj(0, max_deriva_ms=100, ahora=lambda: ahora[0])
    a = r.tic()
    b = r.tic()
    assert b == a + 1
    with pytest.raises(DerivaReloj):
        r.observar(sello(5000))
    assert r.ultimo == b
    ahora[0] = 900
    assert r.tic() == b + 1


def test_a_restarted_clock_continues_above_its_persisted_high_water_mark() -> None:
    r = Reloj(sello(9000, 3), ahora=lambda: 1000)
    assert r.tic() == sello(9000, 4)


@given(
    st.integers(min_value=0, max_value=2**40),
    st.lists(st.tuples(st.booleans(), st.integers(min_value=0, max_value=2**40)), max_size=50),
)
def test_stamps_strictly_increase_whatever_the_wall_clock_and_peers_do(
    inicio: int, eventos: list[tuple[bool, int]]
) -> None:
    ultimo = sello(inicio)
    for local, ms in eventos:
        if local:
            nuevo = reloj.enviar(ultimo, ms)
        else:
            nuevo = reloj.recibir(ultimo, sello(ms), ahora_ms=ms, max_deriva_ms=500)
        assert nuevo > ultimo
        ultimo = nuevo


def test_a_shifted_wall_clock_runs_ahead_by_its_offset_and_no_offset_is_the_wall_clock() -> None:
    assert reloj.reloj_desplazado(0) is reloj.reloj_de_pared
    adelantado = reloj.reloj_desplazado(3000)
    assert 2990 <= adelantado() - reloj.reloj_de_pared() <= 3000


def test_after_the_wall_clock_steps_back_a_peers_stamp_is_judged_against_the_nodes_own_present() -> None:
    """An NTP step back of 2 s: a peer's stamp just past this node's last one is no broken clock."""
    pared = [10_000]
    r = Reloj(0, max_deriva_ms=500, ahora=lambda: pared[0])
    r.tic()
    pared[0] -= 2_000  # stepped back
    del_par = sello(10_100)  # the peer's clock is right: 100 ms after our last stamp
    r.comprobar(del_par)
    assert milisegundos(r.observar(del_par)) == 10_100
    with pytest.raises(DerivaReloj):
        r.comprobar(sello(10_100 + 600))  # still refused past the drift, counted from our present
    assert r.presente_ms() == 10_100 and r.adelanto_ms() == 2_100


def test_a_node_whose_last_stamp_is_far_ahead_of_its_wall_clock_says_how_far() -> None:
    r = Reloj(sello(86_400_000 + 5_000), ahora=lambda: 5_000)
    assert r.adelanto_ms() == 86_400_000
    assert Reloj(sello(1_000), ahora=lambda: 5_000).adelanto_ms() == 0
