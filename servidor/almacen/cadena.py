"""Chains of merges: the batches of one peer link, applied in their order or not at all.

A peer sends what the dialer lacks in the order of its log, batch after
batch, and a later batch may depend on an earlier one across origins: nodo3's
cancellation of an order that nodo2 created. The version vector keeps each
origin gap-free, so a change of nodo2 never lands past a missing one of
nodo2; it knows nothing of nodo3's change needing nodo2's. Only the order of
the link keeps that, and the link's batches are merged while the next ones
are read, so several of them wait for the writer at once. Were a refused
batch (a stamp too far ahead, any failure in ``apply``) to leave the next one
free to commit, nodes would end with equal vectors and different states.

The rule: once a piece of a chain does not succeed, whether its work raised,
its transaction failed, or its caller stopped waiting before it ran, every
later piece of that chain is refused before it touches the database. The
link then goes down and is dialled again from the vector it acknowledged, and
the peer sends everything missing from there, in order.

Pieces are numbered as they are queued, and the chain remembers the lowest
number that failed. A failure can be noticed out of order (a piece is dropped
when the writer forms its group, before the earlier pieces of that group run;
a batch is found malformed before it is queued, while earlier ones still
wait): only pieces numbered after the failing one are refused, never those
before it. The writer checks and breaks chains on its own thread, the event
loop breaks them too, hence the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sync.errores import CadenaRota


class Cadena:
    """The merges of one peer link; the link makes one per connection."""

    def __init__(self) -> None:
        self._dados = 0
        self._rota: tuple[int, str] | None = None  # number and reason of the first piece that failed
        self._cerrojo = threading.Lock()

    def eslabon(self) -> Eslabon:
        """The next piece: call in the order the pieces are queued."""
        self._dados += 1
        return Eslabon(self, self._dados)


@dataclass(frozen=True)
class Eslabon:
    """One piece of a :class:`Cadena`."""

    cadena: Cadena
    n: int

    def rechazo(self) -> CadenaRota | None:
        """Why this piece may not run, if a piece before it failed."""
        rota = self.cadena._rota
        if rota is None or rota[0] >= self.n:
            return None
        return CadenaRota(f"batch {rota[0]} of this link was not applied ({rota[1]}), so neither is batch {self.n}")

    def romper(self, motivo: BaseException | str) -> None:
        """This piece did not succeed: refuse every later one."""
        texto = motivo if isinstance(motivo, str) else repr(motivo)
        with self.cadena._cerrojo:
            rota = self.cadena._rota
            if rota is None or self.n < rota[0]:
                self.cadena._rota = (self.n, texto)
