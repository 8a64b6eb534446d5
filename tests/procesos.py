"""Real node processes on loopback, for integration tests.

:class:`Cluster` writes a ``settings.toml`` for N nodes (``nodo1`` …
``nodoN``) on loopback ports that it holds until it is closed, so that no
other process can take them meanwhile (:class:`Reserva`), each with its own
database — a SQLite file in the cluster's folder, or the URLs it is given
(MariaDB) — and holds one :class:`ProcesoNodo` per node. A node runs as
``python -m servidor --config … --node ID``, its stdout and stderr appended
to ``ID.log`` in the cluster's folder, and can be started, stopped
(SIGTERM), killed (SIGKILL) and restarted; a start returns once
``GET /api/health/ping`` answers.

The ``clusters`` fixture is a factory that stops every node it started when
the test ends, gives their ports back, and drops the MariaDB databases it
created. It reaches the tests of a folder through that folder's
``conftest.py`` (``tests/integration`` has it: ``from tests.procesos import
clusters``). Outside the fixture, :meth:`Cluster.cerrar` does the same::

    async def test_something(clusters: FabricaClusters) -> None:
        c = await clusters(3)                 # started: every node answers ping
        async with c["nodo1"].cliente() as http:
            r = await http.post("/api/clientes", json={...})
        await c["nodo2"].matar()              # SIGKILL
        await c["nodo2"].arrancar()           # same settings, same database
        c3 = await clusters(2, backend="mariadb", arrancar=False, via={"nodo1": {"nodo2": "127.0.0.1:4000"}})
        c4 = await clusters(1, extra={"max_connections": 8})   # more [cluster] settings

Waiting is always on a condition with a deadline: :func:`esperar`.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any, Protocol

import httpx
import pytest

from tests import credenciales
from tests.bd import base_mysql_nueva

RAIZ = Path(__file__).resolve().parent.parent
PING = "/api/health/ping"
PLAZO_ARRANQUE = 30.0
PLAZO_PARADA = 15.0


async def esperar(
    condicion: Callable[[], Any],
    plazo: float = 10.0,
    intervalo: float = 0.05,
    que: str = "condition",
    ignorar: tuple[type[BaseException], ...] = (),
) -> Any:
    """Poll ``condicion`` (sync or async) until it returns something truthy; return that.

    Exceptions of the types in ``ignorar`` count as "not yet". After ``plazo``
    seconds, fail with ``que`` and the last value or exception seen.
    """
    limite = time.monotonic() + plazo
    ultimo: Any = None
    while True:
        try:
            valor = condicion()
            if inspect.isawaitable(valor):
                valor = await valor
            if valor:
                return valor
            ultimo = valor
        except ignorar as e:
            ultimo = e
        if time.monotonic() >= limite:
            raise TimeoutError(f"{que}: not met within {plazo:g}s (last: {ultimo!r})")
        await asyncio.sleep(intervalo)


class Reserva:
    """``n`` distinct loopback ports, held for processes that bind them later.

    Asking the kernel for a free port, closing it and giving its number to a
    node leaves a gap in which the kernel may hand the port to anyone else —
    typically as the local port of some process's outgoing connection — and
    the node then dies with ``[Errno 98] address already in use``. A
    reservation closes that gap: each port stays bound by a socket of ours,
    with ``SO_REUSEADDR`` and never listening, until :meth:`liberar`.

    What that means on Linux (the behaviour the tests rely on, shown in
    ``tests/unit/test_procesos.py``):

    - the kernel hands the port to nobody else: ``bind`` to port 0 and the
      automatic bind of ``connect`` skip a bound port, and a plain ``bind`` of
      it fails;
    - a node can still take it, because uvicorn binds with ``SO_REUSEADDR``
      and nothing of ours listens on it; while the node listens, nobody else
      can;
    - a connection to it while no node listens is refused, as to a free
      port, so a stopped or killed node still looks stopped to its peers;
    - it stays held across restarts, so a node started again gets its port
      back however long it was down.
    """

    def __init__(self, n: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self._enchufes: list[socket.socket] = []
        try:
            for _ in range(n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._enchufes.append(s)  # before bind: a failed bind must not leak it
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((host, 0))
        except BaseException:
            self.liberar()
            raise
        self.puertos: list[int] = [s.getsockname()[1] for s in self._enchufes]

    def liberar(self) -> None:
        """Give the ports back; a process already listening on one keeps it. Idempotent."""
        for s in self._enchufes:
            s.close()
        self._enchufes.clear()

    def __enter__(self) -> Reserva:
        return self

    def __exit__(self, *_: object) -> None:
        self.liberar()


def entorno_limpio(**extra: str) -> dict[str, str]:
    """The test's environment without ``PEDIDOS_*`` overrides, plus ``extra``."""
    entorno = {k: v for k, v in os.environ.items() if not k.startswith("PEDIDOS_") or k.startswith("PEDIDOS_TEST_")}
    entorno["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RAIZ), entorno.get("PYTHONPATH")]))
    entorno.update(extra)
    return entorno


def escribir_settings(
    ruta: Path,
    nodos: Sequence[tuple[str, str, int, str]],
    nombre: str = "pedidos-test",
    secreto: str = "secreto-de-prueba",
    max_clock_drift_ms: int = 500,
    via: Mapping[str, Mapping[str, str]] | None = None,
    access_log: bool = False,
    extra: Mapping[str, int | bool] | None = None,
) -> Path:
    """Write a settings file for ``nodos``: ``(id, host, port, database)`` each.

    ``via[a][b] = "host:port"`` makes node ``a`` dial peer ``b`` there (a proxy
    standing between them, for partition tests) instead of at ``b``'s own address.
    ``extra`` adds settings to ``[cluster]``, such as ``{"max_connections": 8}``.
    """
    q = json.dumps  # a JSON string is a valid TOML basic string
    lineas = [
        "[cluster]",
        f"name = {q(nombre)}",
        f"secret = {q(secreto)}",
        f"max_clock_drift_ms = {max_clock_drift_ms}",
        f"access_log = {str(access_log).lower()}",
        *(f"{k} = {json.dumps(v)}" for k, v in (extra or {}).items()),
    ]
    for nodo_id, host, port, database in nodos:
        lineas += ["", "[[nodes]]", f"id = {q(nodo_id)}", f"host = {q(host)}", f"port = {port}"]
        lineas.append(f"database = {q(database)}")
        if via and via.get(nodo_id):
            lineas.append("via = { " + ", ".join(f"{q(k)} = {q(v)}" for k, v in via[nodo_id].items()) + " }")
    lineas += credenciales.en_toml()
    ruta.parent.mkdir(parents=True, exist_ok=True)
    ruta.write_text("\n".join(lineas) + "\n", encoding="utf-8")
    return ruta


class ProcesoNodo:
    """One node of a settings file, run as its own process."""

    def __init__(self, nodo_id: str, host: str, port: int, database: str, config: Path, entorno: dict[str, str]):
        self.id = nodo_id
        self.host = host
        self.port = port
        self.database = database
        self.config = config
        self.entorno = entorno
        self.log = config.parent / f"{nodo_id}.log"
        # What runs the node; a test may put a test-only entry point here (tests/caos/sabotaje.py).
        self.programa: list[str] = [sys.executable, "-m", "servidor"]
        self.proceso: subprocess.Popen[bytes] | None = None
        self._salida: IO[bytes] | None = None
        self.arranques = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def vivo(self) -> bool:
        return self.proceso is not None and self.proceso.poll() is None

    @property
    def pid(self) -> int:
        assert self.proceso is not None, f"{self.id} was never started"
        return self.proceso.pid

    def cliente(self, **kw: Any) -> httpx.AsyncClient:
        """An HTTP client of this node, sending the admin token unless ``headers`` say otherwise."""
        cabeceras = {**credenciales.cabecera(), **kw.pop("headers", {})}
        return httpx.AsyncClient(base_url=self.url, timeout=kw.pop("timeout", 10.0), headers=cabeceras, **kw)

    def iniciar(self) -> None:
        """Start the process, without waiting for it to answer."""
        assert not self.vivo, f"{self.id} is already running (pid {self.pid})"
        self._cerrar_salida()
        self.arranques += 1
        self._salida = open(self.log, "ab")  # closed once the process is reaped
        self._salida.write(f"--- start #{self.arranques} of {self.id} ---\n".encode())
        self._salida.flush()
        try:
            self.proceso = subprocess.Popen(
                [*self.programa, "--config", str(self.config), "--node", self.id],
                cwd=self.config.parent,
                env=self.entorno,
                stdin=subprocess.DEVNULL,
                stdout=self._salida,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._cerrar_salida()
            raise

    async def esperar_listo(self, plazo: float = PLAZO_ARRANQUE) -> None:
        """Wait until the node answers ping; fail early, with its log, if it exits."""
        async with self.cliente(timeout=2.0) as http:

            async def responde() -> bool:
                if not self.vivo:
                    self._cerrar_salida()
                    raise AssertionError(
                        f"{self.id} exited ({self.proceso and self.proceso.returncode}):\n{self.cola()}"
                    )
                try:
                    return (await http.get(PING)).status_code == 200
                except httpx.TransportError:
                    return False

            try:
                await esperar(responde, plazo, que=f"{self.id} answers {PING}")
            except TimeoutError as e:
                raise TimeoutError(f"{e}\n{self.cola()}") from None

    async def arrancar(self, plazo: float = PLAZO_ARRANQUE) -> None:
        self.iniciar()
        await self.esperar_listo(plazo)

    async def esperar_salida(self, plazo: float = PLAZO_PARADA) -> int:
        assert self.proceso is not None, f"{self.id} was never started"
        proceso = self.proceso
        await esperar(lambda: proceso.poll() is not None, plazo, que=f"{self.id} (pid {proceso.pid}) exits")
        self._cerrar_salida()
        assert proceso.returncode is not None
        return proceso.returncode

    def enviar(self, s: signal.Signals) -> None:
        """Send ``s`` to the process, if it is running; do not wait."""
        if self.proceso is not None and self.vivo:
            self.proceso.send_signal(s)

    async def senalar(self, s: signal.Signals, plazo: float = PLAZO_PARADA) -> int:
        """Send ``s`` and wait for the process to exit; its exit status."""
        self.enviar(s)
        return await self.esperar_salida(plazo)

    async def parar(self, plazo: float = PLAZO_PARADA) -> int:
        """SIGTERM, and wait; SIGKILL if it is not gone within ``plazo``. The exit status."""
        try:
            return await self.senalar(signal.SIGTERM, plazo)
        except TimeoutError:
            await self.matar()
            raise

    async def matar(self) -> int:
        """SIGKILL: the node dies with no chance to clean up."""
        return await self.senalar(signal.SIGKILL)

    async def reiniciar(self, plazo: float = PLAZO_ARRANQUE) -> None:
        if self.vivo:
            await self.parar()
        await self.arrancar(plazo)

    def registro(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def cola(self, lineas: int = 40) -> str:
        return "\n".join(self.registro().splitlines()[-lineas:])

    def _cerrar_salida(self) -> None:
        if self._salida is not None:
            self._salida.close()
            self._salida = None


class Cluster:
    """N nodes of one settings file, in ``carpeta``; nothing runs until asked.

    Their ports are held (:class:`Reserva`) from here until :meth:`cerrar`,
    across any number of starts and stops.
    """

    def __init__(
        self,
        carpeta: Path,
        n: int = 3,
        databases: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        nombre: str = "pedidos-test",
        secreto: str = "secreto-de-prueba",
        max_clock_drift_ms: int = 500,
        via: Mapping[str, Mapping[str, str]] | None = None,
        entorno: dict[str, str] | None = None,
        access_log: bool = False,
        extra: Mapping[str, int | bool] | None = None,
    ) -> None:
        ids = [f"nodo{i}" for i in range(1, n + 1)]
        urls = list(databases) if databases is not None else [f"sqlite+aiosqlite:///{carpeta / i}.db" for i in ids]
        assert len(urls) == n, f"{n} nodes need {n} databases, got {len(urls)}"
        self.carpeta = carpeta
        self.nombre = nombre
        self.secreto = secreto
        self.reserva = Reserva(n, host)
        filas = list(zip(ids, [host] * n, self.reserva.puertos, urls, strict=True))
        self.filas = filas
        self.max_clock_drift_ms = max_clock_drift_ms
        self.access_log = access_log
        self.extra = dict(extra or {})
        try:
            self.config = escribir_settings(
                carpeta / "settings.toml", filas, nombre, secreto, max_clock_drift_ms, via, access_log, self.extra
            )
        except BaseException:
            self.reserva.liberar()
            raise
        entorno = entorno if entorno is not None else entorno_limpio()
        # A copy per node, so that one node can be given, say, another PEDIDOS_SECRET.
        self.nodos = {i: ProcesoNodo(i, h, p, d, self.config, dict(entorno)) for i, h, p, d in filas}

    def escribir_vias(self, vias: Mapping[tuple[str, str], str]) -> None:
        """Route link ``(a, b)`` through ``host:port``: rewrites the settings, for nodes started after."""
        por_nodo: dict[str, dict[str, str]] = {}
        for (a, b), direccion in vias.items():
            por_nodo.setdefault(a, {})[b] = direccion
        escribir_settings(
            self.config,
            self.filas,
            self.nombre,
            self.secreto,
            self.max_clock_drift_ms,
            por_nodo,
            self.access_log,
            self.extra,
        )

    def __getitem__(self, nodo_id: str) -> ProcesoNodo:
        return self.nodos[nodo_id]

    def __iter__(self) -> Iterator[ProcesoNodo]:
        return iter(self.nodos.values())

    def __len__(self) -> int:
        return len(self.nodos)

    async def arrancar(self, *ids: str, plazo: float = PLAZO_ARRANQUE) -> None:
        """Start the given nodes (all by default) together; return when each answers.

        When one fails, the waits for the others are cancelled before its
        error is raised: none is left polling, with a client open, after this returns.
        """
        elegidos = [self.nodos[i] for i in ids] if ids else list(self.nodos.values())
        for nodo in elegidos:
            nodo.iniciar()
        esperas = [asyncio.create_task(nodo.esperar_listo(plazo)) for nodo in elegidos]
        try:
            await asyncio.gather(*esperas)
        except BaseException:
            for espera in esperas:
                espera.cancel()
            await asyncio.gather(*esperas, return_exceptions=True)
            raise

    async def parar(self, plazo: float = PLAZO_PARADA) -> dict[str, int]:
        """Stop every running node (SIGTERM, SIGKILL past ``plazo``); their exit statuses."""
        vivos = [n for n in self.nodos.values() if n.vivo]
        codigos = await asyncio.gather(*(n.parar(plazo) for n in vivos), return_exceptions=True)
        for nodo in self.nodos.values():
            if nodo.vivo:  # only after a failure above: never leave a process behind
                await nodo.matar()
            nodo._cerrar_salida()  # also the log of a node that had died on its own, unwaited
        errores = [c for c in codigos if isinstance(c, BaseException)]
        if errores:
            raise errores[0]
        return {n.id: c for n, c in zip(vivos, codigos, strict=True) if isinstance(c, int)}

    async def cerrar(self, plazo: float = PLAZO_PARADA) -> dict[str, int]:
        """Stop every node as :meth:`parar` does, then give the ports back, even if stopping failed."""
        try:
            return await self.parar(plazo)
        finally:
            self.reserva.liberar()


class FabricaClusters(Protocol):
    async def __call__(self, n: int = 3, *, backend: str = "sqlite", arrancar: bool = True, **kw: Any) -> Cluster: ...


@pytest.fixture
async def clusters(tmp_path: Path) -> AsyncIterator[FabricaClusters]:
    """A factory of clusters (``backend`` "sqlite" or "mariadb"), all stopped at teardown."""
    async with AsyncExitStack() as pila:
        creados: list[Cluster] = []

        async def crear(n: int = 3, *, backend: str = "sqlite", arrancar: bool = True, **kw: Any) -> Cluster:
            if backend == "mariadb":
                kw["databases"] = [await pila.enter_async_context(base_mysql_nueva()) for _ in range(n)]
            else:
                assert backend == "sqlite", f"unknown backend {backend!r}"
            cluster = Cluster(tmp_path / f"cluster{len(creados) + 1}", n, **kw)
            creados.append(cluster)
            if arrancar:
                await cluster.arrancar()
            return cluster

        try:
            yield crear
        finally:
            # Every node is stopped (or killed) before the exit stack drops their databases.
            fallos = []
            for cluster in creados:
                try:
                    await cluster.cerrar()
                except Exception as e:  # noqa: BLE001 - the other clusters must be stopped all the same
                    fallos.append(e)
            if fallos:
                raise fallos[0]
