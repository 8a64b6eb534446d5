"""The node's logging setup: what ``access_log = false`` drops, and what it keeps."""

from __future__ import annotations

import logging

import pytest

from servidor.cli import SinAccesos


def registro(nombre: str, nivel: int, plantilla: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(nombre, nivel, __file__, 1, plantilla, args, None)


@pytest.mark.parametrize(
    ("nombre", "plantilla", "args"),
    [
        ("uvicorn.error", '%s - "WebSocket %s" [accepted]', ("127.0.0.1:5555", "/sync")),
        ("uvicorn.error", '%s - "WebSocket %s" 403', ("127.0.0.1:5555", "/sync")),
        ("uvicorn.error", "connection open", ()),
        ("uvicorn.error", "connection closed", ()),
        ("uvicorn.error", "connection rejected (%d %s)", (403, "Forbidden")),
        ("uvicorn.access", '%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5555", "GET", "/", "1.1", 200)),
        ("websockets.server", "connection open", ()),
    ],
)
def test_per_request_and_per_connection_lines_are_dropped(nombre: str, plantilla: str, args: tuple[object]) -> None:
    assert not SinAccesos().filter(registro(nombre, logging.INFO, plantilla, *args))


@pytest.mark.parametrize(
    ("nombre", "nivel", "plantilla"),
    [
        ("uvicorn.error", logging.WARNING, "connection closed"),
        ("uvicorn.error", logging.ERROR, '%s - "WebSocket %s" [accepted]'),
        ("uvicorn.error", logging.INFO, "Application startup complete."),
        ("sync.enlace", logging.INFO, "connection open"),
    ],
)
def test_warnings_other_uvicorn_lines_and_the_nodes_own_lines_are_kept(nombre: str, nivel: int, plantilla: str) -> None:
    assert SinAccesos().filter(registro(nombre, nivel, plantilla, "a", "b"))
