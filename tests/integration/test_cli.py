"""``python -m servidor`` as a user runs it: real processes on loopback.

The supervisor (``--all``) is started in a session of its own, so that its
process group is exactly the supervisor and its nodes: the tests can prove
every node is gone by asking whether the group still exists, and teardown
can kill whatever is left with one ``killpg``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests import credenciales
from tests.procesos import PING, FabricaClusters, ProcesoNodo, Reserva, entorno_limpio, escribir_settings, esperar

PLAZO = 30.0


def settings_de(carpeta: Path, puertos: Sequence[int]) -> Path:
    """A node on each port, SQLite paths relative to the file (``data/ID.db``)."""
    filas = [(f"nodo{i}", "127.0.0.1", p, f"sqlite+aiosqlite:///data/nodo{i}.db") for i, p in enumerate(puertos, 1)]
    return escribir_settings(carpeta / "settings.toml", filas)


def servidor(*args: str, cwd: Path, **entorno: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servidor", *args],
        cwd=cwd,
        env=entorno_limpio(**entorno),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=PLAZO,
    )


ROTO = "[cluster]\nname = 'x'\nsecret = 's'\n[[nodes]\nid = 'nodo1'\n"
DOBLE_PUERTO = """
[cluster]
name = "x"
secret = "s"
[[nodes]]
id = "nodo1"
host = "127.0.0.1"
port = 5000
database = "sqlite+aiosqlite:///data/nodo1.db"
[[nodes]]
id = "nodo2"
host = "127.0.0.1"
port = 5000
database = "sqlite+aiosqlite:///data/nodo2.db"
"""


PUBLICO = """
[cluster]
name = "pedidos"
secret = "dev-secret-change-me"

[[nodes]]
id = "nodo1"
host = "0.0.0.0"
port = 5000
database = "sqlite+aiosqlite:///data/nodo1.db"
"""


@pytest.mark.parametrize(
    ("contenido", "args", "entorno", "dice"),
    [
        pytest.param(None, ["--node", "nodo9"], {}, "unknown node 'nodo9' (known: nodo1, nodo2)", id="unknown-node"),
        pytest.param(None, [], {"PEDIDOS_NODE": "nodo9"}, "unknown node 'nodo9'", id="unknown-node-from-env"),
        pytest.param(ROTO, ["--node", "nodo1"], {}, "malformed TOML", id="malformed-file"),
        pytest.param(ROTO, ["--all"], {}, "malformed TOML", id="malformed-file-all"),
        pytest.param(DOBLE_PUERTO, ["--all"], {}, "duplicate host and port 127.0.0.1:5000", id="duplicate-port"),
        pytest.param(
            None, ["--config", "nope.toml", "--node", "nodo1"], {}, "nope.toml: settings file not found", id="missing"
        ),
        pytest.param(None, [], {}, "choose a node with --node ID", id="no-node"),
        pytest.param(None, ["--all", "--node", "nodo1"], {}, "not allowed with", id="node-and-all"),
        pytest.param(
            None, ["--all"], {"PEDIDOS_DATABASE_URL": "sqlite+aiosqlite:///x.db"}, "PEDIDOS_DATABASE_URL", id="all-url"
        ),
        pytest.param(None, ["--colour"], {}, "unrecognized arguments: --colour", id="bad-flag"),
        pytest.param(
            PUBLICO, ["--all"], {}, "not loopback, and the cluster secret is the development one", id="dev-all"
        ),
        pytest.param(PUBLICO, ["--node", "nodo1"], {}, "node nodo1 listens on 0.0.0.0", id="dev-one"),
    ],
)
def test_a_usage_or_settings_error_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, contenido: str | None, args: list[str], entorno: dict[str, str], dice: str
) -> None:
    with Reserva(2) as reserva:
        if contenido is None:
            settings_de(tmp_path, reserva.puertos)
        else:
            (tmp_path / "settings.toml").write_text(contenido, encoding="utf-8")
        antes = sorted(tmp_path.iterdir())

        r = servidor(*args, cwd=tmp_path, **entorno)

    assert r.returncode == 2, r.stderr
    assert r.stdout == ""
    lineas = r.stderr.splitlines()
    assert len(lineas) == 1, r.stderr
    assert lineas[0].startswith("pedidos: error: ")
    assert dice in lineas[0]
    assert sorted(tmp_path.iterdir()) == antes, "nothing may be written (no data/ directory)"


def test_help_exits_0_and_names_both_modes(tmp_path: Path) -> None:
    r = servidor("--help", cwd=tmp_path)
    assert r.returncode == 0
    assert "--node" in r.stdout and "--all" in r.stdout


@pytest.mark.parametrize("senal", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
async def test_a_node_stops_cleanly_and_exits_0_on(clusters: FabricaClusters, senal: signal.Signals) -> None:
    c = await clusters(1)
    nodo = c["nodo1"]

    assert await nodo.senalar(senal) == 0

    registro = nodo.registro()
    assert f"nodo1: stopped cleanly after {senal.name}" in registro
    lineas = [linea for linea in registro.splitlines() if not linea.startswith("--- start")]
    assert lineas and all(linea.startswith("[nodo1] ") for linea in lineas), registro


async def test_a_node_whose_port_is_taken_exits_3_and_says_why(clusters: FabricaClusters) -> None:
    c = await clusters(1, arrancar=False)
    nodo = c["nodo1"]
    with socket.socket() as ocupado:
        # Another server on the port: it binds with SO_REUSEADDR, as servers do (the
        # cluster's reservation refuses any other bind), and listens.
        ocupado.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ocupado.bind((nodo.host, nodo.port))
        ocupado.listen()
        nodo.iniciar()
        assert await nodo.esperar_salida(PLAZO) == 3
    assert "nodo1: could not start (exit status 3)" in nodo.registro()


async def pedir_y_conectar(nodo: ProcesoNodo) -> None:
    """One HTTP request, and one websocket opened and closed, on ``nodo``."""
    async with nodo.cliente() as http:
        assert (await http.get(PING)).status_code == 200
    url = f"ws://{nodo.host}:{nodo.port}/graphql"
    async with connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], proxy=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": credenciales.cabecera()}))
        assert json.loads(await asyncio.wait_for(ws.recv(), PLAZO))["type"] == "connection_ack"


# What uvicorn and websockets write for each request and each connection.
POR_ACCESO = ('"GET /api/health/ping HTTP/1.1" 200', '"WebSocket /graphql" [accepted]', "connection open")


async def test_with_access_log_off_a_node_logs_no_request_or_connection(clusters: FabricaClusters) -> None:
    c = await clusters(1, access_log=False)
    nodo = c["nodo1"]

    await pedir_y_conectar(nodo)
    assert await nodo.senalar(signal.SIGTERM) == 0

    registro = nodo.registro()
    assert "nodo1: stopped cleanly after SIGTERM" in registro
    for linea in registro.splitlines():
        assert "WebSocket" not in linea and "connection " not in linea and "HTTP/1.1" not in linea, linea


async def test_with_access_log_on_requests_and_connections_are_logged_in_the_node_format(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(1, access_log=True)
    nodo = c["nodo1"]

    await pedir_y_conectar(nodo)
    assert await nodo.senalar(signal.SIGTERM) == 0

    lineas = nodo.registro().splitlines()
    formato = re.compile(r"^\[nodo1\] \d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO (uvicorn\.access|uvicorn\.error): ")
    for texto in POR_ACCESO:
        halladas = [linea for linea in lineas if texto in linea]
        assert halladas, (texto, lineas)
        for linea in halladas:
            assert formato.match(linea), linea


# --- --all --------------------------------------------------------------------


class Supervisado:
    """``python -m servidor --all`` in a session of its own, output to files."""

    def __init__(self, carpeta: Path) -> None:
        self.carpeta = carpeta
        self.salida = carpeta / "supervisor.out"
        self.errores = carpeta / "supervisor.err"
        with open(self.salida, "wb") as out, open(self.errores, "wb") as err:
            self.proceso = subprocess.Popen(
                [sys.executable, "-m", "servidor", "--all"],
                cwd=carpeta,
                env=entorno_limpio(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def texto(self) -> str:
        return self.salida.read_text() + self.errores.read_text()

    def grupo_vivo(self) -> bool:
        try:
            os.killpg(self.proceso.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def hijo(self, nodo_id: str) -> int:
        """The pid of the child running ``nodo_id``."""
        for pid in hijos_de(self.proceso.pid):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if nodo_id.encode() in argv:
                return pid
        raise AssertionError(f"no child runs {nodo_id}")

    async def terminar(self, senal: signal.Signals) -> int:
        self.proceso.send_signal(senal)
        await esperar(lambda: self.proceso.poll() is not None, PLAZO, que="the supervisor exits")
        assert self.proceso.returncode is not None
        return self.proceso.returncode

    def limpiar(self) -> None:
        if self.grupo_vivo():
            os.killpg(self.proceso.pid, signal.SIGKILL)
        self.proceso.wait(timeout=PLAZO)


def hijos_de(pid: int) -> list[int]:
    hijos = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            campos = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # it exited while we looked
        if int(campos[1]) == pid:
            hijos.append(int(stat.parent.name))
    return hijos


async def responde(url: str) -> bool:
    async with httpx.AsyncClient(timeout=2.0) as http:
        try:
            return (await http.get(f"{url}/api/health/ping")).status_code == 200
        except httpx.TransportError:
            return False


async def esperar_pings(direcciones: dict[str, str]) -> None:
    for nodo_id, url in direcciones.items():
        await esperar(functools.partial(responde, url), PLAZO, que=f"{nodo_id} answers ping")


@pytest.fixture
def supervisado(tmp_path: Path) -> Iterator[Supervisado]:
    with Reserva(2) as reserva:
        settings_de(tmp_path, reserva.puertos)
        s = Supervisado(tmp_path)
        try:
            yield s
        finally:
            s.limpiar()


def urls(carpeta: Path) -> dict[str, str]:
    datos = tomllib.loads((carpeta / "settings.toml").read_text())
    return {n["id"]: f"http://{n['host']}:{n['port']}" for n in datos["nodes"]}


async def test_all_runs_every_node_and_prefixes_their_output(supervisado: Supervisado) -> None:
    await esperar_pings(urls(supervisado.carpeta))

    def ambos_sirven() -> str | None:
        t = supervisado.texto()
        return t if "nodo1: serving on" in t and "nodo2: serving on" in t else None

    texto = await esperar(ambos_sirven, PLAZO, que="both nodes logged that they serve")
    # A node prefixes its own lines; the relay must not prefix them again.
    assert "[nodo1] [nodo1]" not in texto
    for linea in texto.splitlines():
        assert linea.startswith(("[nodo1] ", "[nodo2] ", "[supervisor] ")), linea
    assert any(linea.startswith("[nodo1] ") and "nodo1: serving on" in linea for linea in texto.splitlines())
    assert any(linea.startswith("[nodo2] ") and "nodo2: serving on" in linea for linea in texto.splitlines())


async def test_sigint_to_the_supervisor_stops_every_node_and_exits_0(supervisado: Supervisado) -> None:
    direcciones = urls(supervisado.carpeta)
    await esperar_pings(direcciones)

    assert await supervisado.terminar(signal.SIGINT) == 0

    assert not supervisado.grupo_vivo(), "every node process is gone"
    for url in direcciones.values():
        assert not await responde(url)
    texto = supervisado.texto()
    assert "nodo1: stopped cleanly after SIGTERM" in texto
    assert "nodo2: stopped cleanly after SIGTERM" in texto
    assert "supervisor: done, exit status 0" in texto


async def test_the_supervisor_restarts_a_killed_node_and_says_so(supervisado: Supervisado) -> None:
    direcciones = urls(supervisado.carpeta)
    await esperar_pings(direcciones)
    antes = supervisado.hijo("nodo2")

    os.kill(antes, signal.SIGKILL)

    await esperar(
        lambda: "nodo2 died (killed by SIGKILL); restarting it in 0.5s (restart 1)" in supervisado.texto(),
        PLAZO,
        que="the supervisor reports the restart",
    )
    await esperar_pings(direcciones)
    assert supervisado.hijo("nodo2") != antes
    await esperar(lambda: supervisado.texto().count("nodo2: serving on") == 2, PLAZO, que="nodo2 serves again")
    assert supervisado.proceso.poll() is None

    # A node died, so the run as a whole did not go well: exit status 1.
    assert await supervisado.terminar(signal.SIGTERM) == 1
    assert not supervisado.grupo_vivo()
    texto = supervisado.texto()
    assert "nodo1: stopped cleanly after SIGTERM" in texto
    assert "nodo2: stopped cleanly after SIGTERM" in texto
