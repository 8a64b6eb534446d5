"""Connection bounds of a real node process: head size, head time, connections (``servidor.conexiones``)."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import AsyncExitStack

import httpx

from tests.procesos import PING, FabricaClusters, ProcesoNodo, esperar

MIB = 1024 * 1024
PLAZO_CABECERA_MS = 1500


def rss(pid: int) -> int:
    """The process's resident memory, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for linea in f:
            if linea.startswith("VmRSS:"):
                return int(linea.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def abrir(nodo: ProcesoNodo) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(nodo.host, nodo.port)


async def cerrada(lector: asyncio.StreamReader, plazo: float) -> None:
    """Wait for the node to close the connection unanswered; fail if it is still open after ``plazo``."""
    try:
        resto = await asyncio.wait_for(lector.read(), plazo)
    except ConnectionResetError:
        resto = b""
    assert resto == b"", f"expected the node to close without answering, got {resto[:200]!r}"


def cuerpo_json(respuesta: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    cabeza, _, cuerpo = respuesta.partition(b"\r\n\r\n")
    linea, *cabeceras = cabeza.decode("latin-1").split("\r\n")
    campos = dict(c.lower().split(": ", 1) for c in cabeceras)
    return int(linea.split()[1]), campos, json.loads(cuerpo)


async def test_an_oversized_request_head_is_answered_431_without_being_read_in_full(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(1)
    nodo = c["nodo1"]
    antes = rss(nodo.pid)
    lector, escritor = await abrir(nodo)
    escritor.write(b"GET /api/health/ping HTTP/1.1\r\nHost: nodo\r\nAuthorization: Bearer ")
    enviados = 0
    try:
        for _ in range(20):  # 20 MiB of one header, unless the node stops reading first
            escritor.write(b"a" * MIB)
            await escritor.drain()
            enviados += MIB
    except (ConnectionResetError, BrokenPipeError):
        pass
    respuesta = await asyncio.wait_for(lector.read(), 10.0)
    escritor.close()
    estado, cabeceras, cuerpo = cuerpo_json(respuesta)
    assert estado == 431
    assert cabeceras["connection"] == "close"
    assert cuerpo == {
        "error": {
            "codigo": "CABECERAS_DEMASIADO_GRANDES",
            "mensaje": "request head exceeds 32768 bytes",
            "detalle": {"maximo": 32768},
        }
    }
    # Read and dropped, never held: the node did not grow by anything like what was sent.
    assert rss(nodo.pid) - antes < 8 * MIB, f"RSS grew by {(rss(nodo.pid) - antes) / MIB:.1f} MiB"
    async with nodo.cliente() as http:
        r = await http.get("/api/clientes", headers={"X-Relleno": "b" * 40_000})
        assert r.status_code == 431  # also when the whole head arrives in one read
        assert (await http.get(PING, headers={"X-Relleno": "b" * 20_000})).status_code == 200


async def test_a_connection_without_a_complete_request_head_is_closed_within_the_header_timeout(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(1, extra={"header_timeout_ms": PLAZO_CABECERA_MS})
    nodo = c["nodo1"]
    plazo = PLAZO_CABECERA_MS / 1000
    inicio = time.monotonic()
    muda_lector, muda = await abrir(nodo)  # says nothing at all
    lento_lector, lento = await abrir(nodo)  # slowloris: half a head, a byte at a time
    lento.write(b"GET /api/health/ping HTTP/1.1\r\nHost: nodo\r\n")

    async def gotear() -> None:
        for _ in range(100):  # bounded: 10 s at most, well past the timeout
            await asyncio.sleep(0.1)
            lento.write(b"X")
            await lento.drain()

    goteo = asyncio.create_task(gotear())
    try:
        for lector in (lento_lector, muda_lector):
            await cerrada(lector, plazo + 5.0)
        assert plazo * 0.9 <= time.monotonic() - inicio < plazo + 3.0
    finally:
        goteo.cancel()
        await asyncio.gather(goteo, return_exceptions=True)
        muda.close()
        lento.close()
    # A client that sends its head in time, and another request on the same connection later, are served.
    async with nodo.cliente() as http:
        assert (await http.get(PING)).status_code == 200
        assert (await http.get(PING)).status_code == 200


async def test_connections_past_the_limit_get_503_and_ping_works_again_once_they_go(
    clusters: FabricaClusters,
) -> None:
    maximo = 8
    c = await clusters(1, extra={"max_connections": maximo, "header_timeout_ms": 30_000})
    nodo = c["nodo1"]
    async with AsyncExitStack() as pila:
        ociosas: list[asyncio.StreamWriter] = []
        for _ in range(maximo):
            _, escritor = await abrir(nodo)
            pila.callback(escritor.close)
            ociosas.append(escritor)

        async def sobrecargado() -> httpx.Response | None:
            async with nodo.cliente() as http:  # a new connection each time
                r = await http.get(PING)
            return r if r.status_code == 503 else None

        r = await esperar(sobrecargado, 10.0, que="a request past the limit is answered 503")
        assert r.headers["connection"] == "close"
        assert r.headers["retry-after"] == "1"
        assert r.json()["error"]["codigo"] == "SOBRECARGA"
        assert r.json()["error"]["detalle"] == {"maximo": maximo}

        # Past twice the limit, a connection is closed at once, unanswered: no descriptor is held for it.
        for _ in range(maximo):
            _, escritor = await abrir(nodo)
            pila.callback(escritor.close)
        lector, escritor = await abrir(nodo)
        pila.callback(escritor.close)
        await cerrada(lector, 5.0)

    async def pong() -> bool:
        async with nodo.cliente() as http:
            return (await http.get(PING)).status_code == 200

    await esperar(pong, 10.0, que="ping answers once the idle connections are gone")
