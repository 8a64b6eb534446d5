"""Starting real nodes (``tests/procesos.py``) when other processes want the same ports."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import socket
import sys
import warnings

import httpx
import pytest

from tests.procesos import PING, FabricaClusters


def intentar_tomar(pila: contextlib.ExitStack, host: str, puerto: int) -> int | None:
    """Bind ``puerto`` as any other process could and keep it; the errno if that is refused."""
    intruso = pila.enter_context(socket.socket())
    try:
        intruso.bind((host, puerto))
    except OSError as e:
        return e.errno
    return None


async def test_a_port_taken_between_allocation_and_start_does_not_stop_the_node(clusters: FabricaClusters) -> None:
    c = await clusters(2, arrancar=False)
    with contextlib.ExitStack() as pila:
        # Under load the kernel hands a free port to whoever asks next — typically as the
        # local port of someone's outgoing connection — before the node gets to bind it.
        rechazos = {n.id: intentar_tomar(pila, n.host, n.port) for n in c}

        await c.arrancar()

    assert rechazos == {"nodo1": errno.EADDRINUSE, "nodo2": errno.EADDRINUSE}
    for nodo in c:
        async with nodo.cliente() as http:
            assert (await http.get(PING)).status_code == 200


async def test_a_killed_node_refuses_connections_and_gets_its_port_back_on_restart(clusters: FabricaClusters) -> None:
    c = await clusters(1)
    nodo = c["nodo1"]
    await nodo.matar()

    async with nodo.cliente(timeout=2.0) as http:
        # Held, not listening: a peer dialling it is refused at once, as by a dead node.
        with pytest.raises(httpx.ConnectError):
            await http.get(PING)
        with contextlib.ExitStack() as pila:
            assert intentar_tomar(pila, nodo.host, nodo.port) == errno.EADDRINUSE
            await nodo.arrancar()
        assert (await http.get(PING)).status_code == 200


async def test_a_failed_start_leaves_no_wait_running_and_no_socket_open(clusters: FabricaClusters) -> None:
    c = await clusters(2, arrancar=False)
    # nodo1 runs but never answers, so its wait is still polling when nodo2 fails.
    c["nodo1"].programa = [sys.executable, "-c", "import signal; signal.pause()"]
    with socket.socket() as ocupado:
        # Another server really listening on nodo2's port: nodo2 cannot start.
        ocupado.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ocupado.bind((c["nodo2"].host, c["nodo2"].port))
        ocupado.listen()
        with pytest.raises(AssertionError, match="nodo2 exited"):
            await c.arrancar()

    # The wait for nodo1 was not left behind, polling with a client open.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with warnings.catch_warnings(record=True) as avisos:
        warnings.simplefilter("always")
        await c.cerrar()
        gc.collect()
    assert [a for a in avisos if issubclass(a.category, ResourceWarning)] == []
    with contextlib.ExitStack() as pila:
        assert intentar_tomar(pila, c["nodo1"].host, c["nodo1"].port) is None, "closed: the ports are given back"
