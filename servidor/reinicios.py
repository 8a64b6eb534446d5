"""When to start a child again after it exits: the supervisor's restart policy.

Pure apart from the clock, which is injected: :class:`Reinicios` is told
when its child started and how it ended, and answers what to do next.

- Exit status 0 is a stop someone asked for (SIGTERM to the node): it is not
  a crash, and the child is left stopped.
- A status listed in :attr:`Politica.definitivos` (under ``--all``, a
  settings error) would only fail again the same way: no retry.
- Any other ending (non-zero status, death by a signal) is a crash. The
  child is started again after a wait that starts at ``espera_inicial`` and
  doubles with each crash, up to ``espera_maxima``; a run that lasted
  ``estable`` seconds or more resets it to ``espera_inicial``.
- ``caidas_maximas`` crashes within ``ventana`` seconds: the child keeps
  failing as soon as it starts, and waiting longer would not help. The
  policy gives up on it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Politica:
    """The numbers of the restart policy; the defaults are the ones ``--all`` uses."""

    espera_inicial: float = 0.5
    espera_maxima: float = 30.0
    estable: float = 60.0
    caidas_maximas: int = 5
    ventana: float = 60.0
    # Exit statuses never retried, with what each means (for the log).
    definitivos: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reintentar:
    """Start the child again after ``espera`` seconds; ``vez`` counts restarts, 1 for the first."""

    espera: float
    vez: int


@dataclass(frozen=True)
class Abandonar:
    """Leave the child stopped; ``motivo`` says why, in words."""

    motivo: str


Decision = Reintentar | Abandonar


class Reinicios:
    """The restart policy applied to one child, over its whole life."""

    def __init__(self, politica: Politica, reloj: Callable[[], float] = time.monotonic) -> None:
        self.politica = politica
        self.reloj = reloj
        self._inicio: float | None = None
        self._espera = politica.espera_inicial
        self._caidas: deque[float] = deque()
        self._veces = 0

    def arrancado(self) -> None:
        """The child has just been started."""
        self._inicio = self.reloj()

    def salida(self, codigo: int) -> Decision:
        """The child ended with ``codigo`` (negative: killed by that signal); what now."""
        p = self.politica
        if codigo == 0:
            return Abandonar("it was stopped on request")
        if codigo in p.definitivos:
            return Abandonar(f"exit status {codigo} means {p.definitivos[codigo]}, which a restart would not mend")
        ahora = self.reloj()
        if self._inicio is not None and ahora - self._inicio >= p.estable:
            self._espera = p.espera_inicial
        self._caidas.append(ahora)
        while self._caidas and self._caidas[0] <= ahora - p.ventana:
            self._caidas.popleft()
        if len(self._caidas) >= p.caidas_maximas:
            return Abandonar(f"{len(self._caidas)} crashes within {p.ventana:g}s")
        espera = self._espera
        self._espera = min(espera * 2, p.espera_maxima)
        self._veces += 1
        return Reintentar(espera, self._veces)
