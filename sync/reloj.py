"""Hybrid logical clock (Kulkarni et al., 2014), packed in one 64-bit integer.

A stamp is ``ms << 16 | counter``: 48 bits of wall-clock milliseconds and a
16-bit logical counter. Packing makes a stamp comparable as a plain integer;
when the counter overflows it carries into the milliseconds, which keeps
stamps strictly increasing at the cost of running a hair ahead of the wall
clock under a burst of more than 65,536 events in one millisecond.

The rules are pure functions of the last stamp and the wall clock, given as
``ahora_ms``; :class:`Reloj` is the small stateful wrapper a node keeps.
Ties between equal stamps of different nodes are broken by origin id, in the
merge rules, not here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sync.errores import DerivaReloj

BITS_CONTADOR = 16
MAXIMO = (1 << 64) - 1


def sello(ms: int, contador: int = 0) -> int:
    return (ms << BITS_CONTADOR) | contador


def milisegundos(hlc: int) -> int:
    return hlc >> BITS_CONTADOR


def contador(hlc: int) -> int:
    return hlc & ((1 << BITS_CONTADOR) - 1)


def enviar(ultimo: int, ahora_ms: int) -> int:
    """Stamp for a local event: ahead of the last stamp and of the wall clock."""
    return max(ultimo + 1, sello(ahora_ms))


def recibir(ultimo: int, remoto: int, ahora_ms: int, max_deriva_ms: int) -> int:
    """Clock after receiving ``remoto``; refuse a stamp too far in the future.

    Refusing (rather than adopting) a far-ahead stamp keeps one node with a
    broken clock from dragging every other clock, and every later LWW
    decision, into its future.
    """
    comprobar_deriva(remoto, ahora_ms, max_deriva_ms, ultimo)
    return max(ultimo + 1, remoto + 1, sello(ahora_ms))


def comprobar_deriva(remoto: int, ahora_ms: int, max_deriva_ms: int, ultimo: int = 0) -> None:
    """Refuse ``remoto`` if it is more than ``max_deriva_ms`` ahead of this node's time.

    This node's time is the later of its wall clock and its own last stamp:
    after the wall clock is stepped back (an NTP correction), the stamps this
    node already issued or accepted are still its present, and a peer's stamp
    no later than them is no sign of a broken clock.
    """
    adelanto = milisegundos(remoto) - max(ahora_ms, milisegundos(ultimo))
    if adelanto > max_deriva_ms:
        raise DerivaReloj(
            f"stamp {remoto} is {adelanto} ms ahead of the local clock (max_clock_drift_ms is {max_deriva_ms})"
        )


def reloj_de_pared() -> int:
    return time.time_ns() // 1_000_000


def reloj_desplazado(desfase_ms: int) -> Callable[[], int]:
    """The wall clock shifted by ``desfase_ms``: a machine whose clock runs ahead (or behind).

    Only for fault-injection tests (``PEDIDOS_CLOCK_OFFSET_MS``, see
    :mod:`servidor.ajustes`); with 0 it is :func:`reloj_de_pared` itself.
    """
    if not desfase_ms:
        return reloj_de_pared
    return lambda: reloj_de_pared() + desfase_ms


class Reloj:
    """A node's clock: the last stamp it issued or saw, never going back."""

    def __init__(
        self,
        ultimo: int = 0,
        max_deriva_ms: int = 500,
        ahora: Callable[[], int] = reloj_de_pared,
    ) -> None:
        self.ultimo = ultimo
        self.max_deriva_ms = max_deriva_ms
        self._ahora = ahora

    def ahora_ms(self) -> int:
        return self._ahora()

    def tic(self) -> int:
        self.ultimo = enviar(self.ultimo, self._ahora())
        return self.ultimo

    def observar(self, remoto: int) -> int:
        self.ultimo = recibir(self.ultimo, remoto, self._ahora(), self.max_deriva_ms)
        return self.ultimo

    def comprobar(self, remoto: int) -> None:
        comprobar_deriva(remoto, self._ahora(), self.max_deriva_ms, self.ultimo)

    def presente_ms(self) -> int:
        """This node's present: the later of the wall clock and its last stamp."""
        return max(self._ahora(), milisegundos(self.ultimo))

    def adelanto_ms(self) -> int:
        """How far this node's last stamp is ahead of its wall clock (0 when it is not)."""
        return max(0, milisegundos(self.ultimo) - self._ahora())
