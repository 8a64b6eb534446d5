"""The proxy's count of websocket messages, fed a stream in awkward pieces."""

from __future__ import annotations

from tests.proxy import ContadorTramas


def trama(carga: bytes, opcode: int = 1, fin: bool = True, mascara: bool = False) -> bytes:
    cabecera = bytes([(0x80 if fin else 0) | opcode])
    marca = 0x80 if mascara else 0
    if len(carga) < 126:
        cabecera += bytes([marca | len(carga)])
    elif len(carga) < 65536:
        cabecera += bytes([marca | 126]) + len(carga).to_bytes(2, "big")
    else:
        cabecera += bytes([marca | 127]) + len(carga).to_bytes(8, "big")
    return cabecera + (b"\x01\x02\x03\x04" if mascara else b"") + carga


def test_data_messages_are_counted_after_the_upgrade_and_control_frames_are_not() -> None:
    flujo = (
        b"GET /sync HTTP/1.1\r\nUpgrade: websocket\r\n\r\n"
        + trama(b'{"tipo":"hola"}', mascara=True)
        + trama(b"", opcode=9)  # ping
        + trama(b"x" * 300, mascara=True)
        + trama(b"a", fin=False)
        + trama(b"b", opcode=0)  # the end of a fragmented message
        + trama(b"y" * 70_000)
    )
    contador = ContadorTramas()
    for i in range(0, len(flujo), 7):
        contador.alimentar(flujo[i : i + 7])
    assert contador.mensajes == 4
    assert contador.bytes == len(flujo)
