"""The restart policy, on a clock the tests move by hand."""

from __future__ import annotations

import signal

from servidor.reinicios import Abandonar, Decision, Politica, Reinicios, Reintentar


class Reloj:
    def __init__(self) -> None:
        self.ahora = 1000.0

    def __call__(self) -> float:
        return self.ahora


POLITICA = Politica(definitivos={2: "a usage or settings error"})
MATADO = -signal.SIGKILL


def reinicios() -> tuple[Reinicios, Reloj]:
    reloj = Reloj()
    return Reinicios(POLITICA, reloj), reloj


def vivir(r: Reinicios, reloj: Reloj, segundos: float, codigo: int = 1) -> Decision:
    """The child starts, runs ``segundos``, ends with ``codigo``; then the policy's wait passes."""
    r.arrancado()
    reloj.ahora += segundos
    decision = r.salida(codigo)
    if isinstance(decision, Reintentar):
        reloj.ahora += decision.espera
    return decision


def test_the_wait_starts_at_half_a_second_and_doubles_up_to_thirty() -> None:
    r, reloj = reinicios()
    # Runs of 20 s: never 5 crashes within a minute, never long enough to reset.
    esperas = [vivir(r, reloj, 20) for _ in range(9)]

    assert esperas == [Reintentar(e, i) for i, e in enumerate([0.5, 1, 2, 4, 8, 16, 30, 30, 30], 1)]


def test_a_run_of_a_minute_resets_the_wait() -> None:
    r, reloj = reinicios()
    for _ in range(4):
        vivir(r, reloj, 20)  # 0.5, 1, 2, 4

    assert vivir(r, reloj, 60) == Reintentar(0.5, 5)
    assert vivir(r, reloj, 20) == Reintentar(1, 6)


def test_a_run_just_short_of_a_minute_does_not_reset_it() -> None:
    r, reloj = reinicios()
    for _ in range(4):
        vivir(r, reloj, 20)

    assert vivir(r, reloj, 59.9) == Reintentar(8, 5)


def test_five_crashes_within_a_minute_give_up_on_the_child() -> None:
    r, reloj = reinicios()
    decisiones = [vivir(r, reloj, 1, MATADO) for _ in range(5)]

    assert decisiones[:4] == [Reintentar(0.5, 1), Reintentar(1, 2), Reintentar(2, 3), Reintentar(4, 4)]
    assert decisiones[4] == Abandonar("5 crashes within 60s")


def test_crashes_older_than_a_minute_do_not_count_towards_giving_up() -> None:
    r, reloj = reinicios()
    for _ in range(4):
        vivir(r, reloj, 1)  # crashes at +1, +2.5, +4.5, +7.5
    reloj.ahora += 60

    assert isinstance(vivir(r, reloj, 1), Reintentar)


def test_a_settings_error_is_never_retried() -> None:
    r, reloj = reinicios()

    decision = vivir(r, reloj, 0.2, 2)

    assert isinstance(decision, Abandonar)
    assert "exit status 2 means a usage or settings error" in decision.motivo


def test_a_settings_error_after_restarts_is_not_retried_either() -> None:
    r, reloj = reinicios()
    vivir(r, reloj, 30, MATADO)

    assert isinstance(vivir(r, reloj, 0.2, 2), Abandonar)


def test_a_clean_exit_is_a_requested_stop_and_not_restarted() -> None:
    r, reloj = reinicios()

    assert vivir(r, reloj, 5, 0) == Abandonar("it was stopped on request")


def test_any_other_status_or_signal_is_a_crash() -> None:
    for codigo in (1, 3, 7, -signal.SIGTERM, -signal.SIGSEGV):
        r, reloj = reinicios()
        assert vivir(r, reloj, 5, codigo) == Reintentar(0.5, 1), codigo
