"""The port reservation of ``tests/procesos.py``: what the kernel lets others do with a held port."""

from __future__ import annotations

import errno
import gc
import socket
import warnings
from collections.abc import Callable

import pytest

from tests.procesos import Reserva

# TEST-NET-1 (RFC 5737): no interface of this machine has it, so binding to it fails.
AJENA = "192.0.2.1"


def avisos_de_recursos(hacer: Callable[[], None]) -> list[warnings.WarningMessage]:
    """The ResourceWarnings ``hacer`` leaves behind: every warning raised while it runs and garbage is collected."""
    with warnings.catch_warnings(record=True) as avisos:
        warnings.simplefilter("always")
        hacer()
        gc.collect()
    return [a for a in avisos if issubclass(a.category, ResourceWarning)]


def test_a_held_port_cannot_be_bound_by_another_socket_nor_used_for_an_outgoing_connection() -> None:
    with Reserva(1) as reserva, socket.create_server(("127.0.0.1", 0)) as destino:
        puerto = reserva.puertos[0]
        with socket.socket() as intruso, pytest.raises(OSError) as e:
            intruso.bind(("127.0.0.1", puerto))
        assert e.value.errno == errno.EADDRINUSE
        with pytest.raises(OSError) as e:
            socket.create_connection(destino.getsockname(), timeout=2, source_address=("127.0.0.1", puerto))
        assert e.value.errno == errno.EADDRINUSE


def test_a_server_can_listen_on_a_held_port_and_then_nobody_else_can() -> None:
    with Reserva(1) as reserva:
        puerto = reserva.puertos[0]
        # What uvicorn does (asyncio's create_server): SO_REUSEADDR, bind, listen.
        with socket.create_server(("127.0.0.1", puerto)) as nodo:
            with socket.create_connection(("127.0.0.1", puerto), timeout=2):
                conexion, _ = nodo.accept()
                conexion.close()
            with socket.socket() as otro, pytest.raises(OSError) as e:
                otro.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                otro.bind(("127.0.0.1", puerto))
                otro.listen()
            assert e.value.errno == errno.EADDRINUSE
        # The server is gone and the port is still held: it can listen again.
        with socket.create_server(("127.0.0.1", puerto)):
            pass


def test_a_held_port_where_nothing_listens_refuses_connections() -> None:
    with Reserva(1) as reserva, pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", reserva.puertos[0]), timeout=2)


def test_the_ports_of_one_reservation_are_distinct() -> None:
    with Reserva(5) as reserva:
        assert len(set(reserva.puertos)) == 5


def test_no_socket_is_left_open_by_a_reservation_released_failed_or_closed() -> None:
    def liberada() -> None:
        Reserva(3).liberar()

    def en_bloque() -> None:
        with Reserva(3):
            pass

    def fallida() -> None:
        with pytest.raises(OSError):
            Reserva(2, host=AJENA)

    for caso in (liberada, en_bloque, fallida):
        assert avisos_de_recursos(caso) == [], caso.__name__
