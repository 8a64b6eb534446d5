"""The supervisor, with tiny Python children standing in for nodes."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from pathlib import Path

import pytest

from servidor.reinicios import Politica
from servidor.supervisor import Orden, Supervisor, describir
from tests.procesos import esperar

# A child that says it is ready, then waits to be stopped; SIGTERM makes it exit 0.
OBEDIENTE = """
import signal, sys, threading
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("listo", flush=True)
threading.Event().wait()
"""
# A child that ignores SIGTERM: only SIGKILL stops it.
TERCO = """
import signal, threading
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("listo", flush=True)
threading.Event().wait()
"""


# Restarts in milliseconds, and giving up after three crashes: the tests stay short.
RAPIDA = Politica(espera_inicial=0.01, espera_maxima=0.04, caidas_maximas=3, definitivos={2: "a settings error"})


def orden(nombre: str, codigo: str) -> Orden:
    return Orden(nombre, (sys.executable, "-c", codigo))


class Salidas:
    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.err = io.BytesIO()

    def lineas(self) -> list[str]:
        return (self.out.getvalue() + self.err.getvalue()).decode().splitlines()

    def cuantos(self, texto: str) -> int:
        return sum(texto in linea for linea in self.lineas())


def supervisor(salidas: Salidas, *ordenes: Orden, plazo: float = 10.0, politica: Politica = RAPIDA) -> Supervisor:
    return Supervisor(ordenes, plazo=plazo, salida=salidas.out, errores=salidas.err, senales=False, politica=politica)


async def test_child_lines_are_relayed_with_their_prefix_and_never_prefixed_twice() -> None:
    s = Salidas()
    codigo = "import sys\nprint('hola')\nprint('[a] ya prefijada')\nsys.stderr.write('al final sin salto')"
    sup = supervisor(s, orden("a", codigo))

    assert await sup.ejecutar() == 0

    assert s.out.getvalue().decode().splitlines() == ["[a] hola", "[a] ya prefijada"]
    assert s.err.getvalue() == b"[a] al final sin salto\n"


async def test_stopping_sends_sigterm_and_counts_a_clean_exit_as_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    s = Salidas()
    sup = supervisor(s, orden("a", OBEDIENTE), orden("b", OBEDIENTE))
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: s.cuantos("listo") == 2, 30, que="both children ready")

    sup.parar()

    assert await asyncio.wait_for(tarea, 30) == 0
    assert "supervisor: a stopped" in caplog.text
    assert "supervisor: b stopped" in caplog.text


async def test_a_child_that_ignores_sigterm_is_killed_after_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    s = Salidas()
    sup = supervisor(s, orden("terco", TERCO), orden("bueno", OBEDIENTE), plazo=0.5)
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: s.cuantos("listo") == 2, 30, que="both children ready")

    sup.parar()

    assert await asyncio.wait_for(tarea, 30) == 1
    assert "terco did not stop in time, sending SIGKILL" in caplog.text
    assert "terco killed by SIGKILL while stopping" in caplog.text
    assert "bueno did not stop" not in caplog.text


async def test_asking_twice_kills_at_once_without_waiting_for_the_deadline() -> None:
    s = Salidas()
    sup = supervisor(s, orden("terco", TERCO), plazo=600)
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: s.cuantos("listo") == 1, 30, que="the child is ready")

    sup.parar()
    sup.parar()

    assert await asyncio.wait_for(tarea, 30) == 1


def cae_la_primera_vez(marca: Path) -> str:
    """A child that exits 7 on its first run, and behaves as OBEDIENTE on the next ones."""
    primera = f"import pathlib, sys\nmarca = pathlib.Path({str(marca)!r})\n"
    primera += "if not marca.exists():\n    marca.touch()\n    sys.exit(7)\n"
    return primera + OBEDIENTE


async def test_a_crashed_child_is_restarted_and_says_so_in_one_line(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    s = Salidas()
    sup = supervisor(s, orden("vivo", OBEDIENTE), orden("cae", cae_la_primera_vez(tmp_path / "marca")))
    tarea = asyncio.create_task(sup.ejecutar())

    await esperar(lambda: s.cuantos("listo") == 2, 30, que="both children ready, one after a restart")
    reinicios = [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]
    assert reinicios == ["supervisor: cae died (exited 7); restarting it in 0.01s (restart 1)"]
    assert caplog.text.count("supervisor: started cae") == 2
    assert caplog.text.count("supervisor: started vivo") == 1

    sup.parar()
    # A child crashed during the run: the run as a whole did not go well.
    assert await asyncio.wait_for(tarea, 30) == 1
    assert "supervisor: vivo stopped" in caplog.text
    assert "supervisor: cae stopped" in caplog.text


async def test_a_child_that_keeps_crashing_is_given_up_on_and_the_others_keep_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    s = Salidas()
    sup = supervisor(s, orden("vivo", OBEDIENTE), orden("muerto", "raise SystemExit(7)"))
    tarea = asyncio.create_task(sup.ejecutar())

    await esperar(lambda: "giving up on it" in caplog.text, 30, que="the supervisor gives up on the child")
    final = [r for r in caplog.records if "giving up" in r.getMessage()]
    assert [r.levelno for r in final] == [logging.CRITICAL]
    assert final[0].getMessage() == (
        "supervisor: muerto died (exited 7); giving up on it: 3 crashes within 60s. "
        "1 node(s) still running, the cluster tolerates a dead node"
    )
    assert caplog.text.count("supervisor: started muerto") == 3
    await esperar(lambda: s.cuantos("listo") == 1, 30, que="the other child is ready")
    assert not tarea.done()

    sup.parar()
    assert await asyncio.wait_for(tarea, 30) == 1
    assert "supervisor: vivo stopped" in caplog.text


async def test_a_child_that_exits_with_a_settings_error_is_not_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    sup = supervisor(Salidas(), orden("mal", "raise SystemExit(2)"))

    assert await asyncio.wait_for(sup.ejecutar(), 30) == 1

    assert caplog.text.count("supervisor: started mal") == 1
    assert "restarting" not in caplog.text
    assert "mal died (exited 2); giving up on it: exit status 2 means a settings error" in caplog.text


async def test_a_child_stopped_with_exit_0_is_not_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    sup = supervisor(Salidas(), orden("a", "pass"))

    assert await asyncio.wait_for(sup.ejecutar(), 30) == 0

    assert caplog.text.count("supervisor: started a") == 1
    assert "supervisor: a stopped (exited 0)" in caplog.text


async def test_a_request_to_stop_ends_the_wait_before_a_restart_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    lenta = Politica(espera_inicial=600, espera_maxima=600)
    sup = supervisor(Salidas(), orden("cae", "raise SystemExit(7)"), politica=lenta)
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: "restarting it in 600s" in caplog.text, 30, que="the child died")

    sup.parar()

    assert await asyncio.wait_for(tarea, 5) == 1
    assert caplog.text.count("supervisor: started cae") == 1


async def test_the_supervisor_returns_when_no_child_is_left(caplog: pytest.LogCaptureFixture) -> None:
    sup = supervisor(Salidas(), orden("a", "raise SystemExit(1)"), orden("b", "raise SystemExit(2)"))
    assert await asyncio.wait_for(sup.ejecutar(), 30) == 1
    assert "no node is left running" in caplog.text


@pytest.mark.parametrize(
    ("codigo", "dicho"),
    [(0, "exited 0"), (3, "exited 3"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"), (None, "still running")],
)
def test_exit_statuses_are_described_in_words(codigo: int | None, dicho: str) -> None:
    assert describir(codigo) == dicho
