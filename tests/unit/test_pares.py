"""The peer manager's answers about peers, without sockets."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from websockets.exceptions import ConnectionClosedError

from servidor.ajustes import Nodo
from servidor.almacen import Almacen
from sync import enlace
from sync.pares import GestorPares
from tests.conftest import ajustes_de_prueba


async def test_a_link_that_closes_while_asking_for_rights_counts_as_a_peer_that_did_not_answer(
    almacen: Almacen,
) -> None:
    ajustes = ajustes_de_prueba("sqlite://")
    par = Nodo(id="nodo2", host="127.0.0.1", port=5001, database="sqlite://")
    ajustes = dataclasses.replace(
        ajustes, cluster=dataclasses.replace(ajustes.cluster, nodes=(*ajustes.cluster.nodes, par))
    )
    gestor = GestorPares(ajustes, almacen)

    async def cerrado(producto: str, necesita: int, extra: int) -> dict[str, object]:
        raise ConnectionClosedError(None, None)

    gestor.estado("nodo2").pedir = cerrado
    assert await gestor.pedir_derechos("nodo2", "p1", 1, 0, 0.5) is None


async def test_a_wait_cancelled_under_a_link_ends_that_dial_not_the_peers_task(
    almacen: Almacen, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cancelled future awaited inside ``marcar`` raises CancelledError into the peer's task:
    it must count as a failed dial and be retried, not end every later dial to that peer."""
    ajustes = ajustes_de_prueba("sqlite://")
    par = Nodo(id="nodo2", host="127.0.0.1", port=5001, database="sqlite://")
    ajustes = dataclasses.replace(
        ajustes, cluster=dataclasses.replace(ajustes.cluster, nodes=(*ajustes.cluster.nodes, par))
    )
    gestor = GestorPares(ajustes, almacen)
    llamadas: list[int] = []
    otra_vez = asyncio.Event()

    async def marcar(url: str, par: str, nodo: object, ronda: bool = False) -> None:
        llamadas.append(1)
        if len(llamadas) == 1:
            cancelada: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            cancelada.cancel()
            await cancelada  # raises CancelledError, as a merge cancelled under the link would
        otra_vez.set()
        await asyncio.Event().wait()

    monkeypatch.setattr(enlace, "marcar", marcar)
    gestor.iniciar()
    try:
        await asyncio.wait_for(otra_vez.wait(), 5)
    finally:
        await gestor.detener()
    assert len(llamadas) == 2
