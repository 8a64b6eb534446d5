"""The peer manager's answers about peers, without sockets."""

from __future__ import annotations

import dataclasses

from websockets.exceptions import ConnectionClosedError

from servidor.ajustes import Nodo
from servidor.almacen import Almacen
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
