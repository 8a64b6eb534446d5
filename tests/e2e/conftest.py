"""Fixtures for browser tests: real node processes and Debian's Chromium driven by Playwright.

Playwright's own browser builds are never downloaded (``playwright install``
needs the internet): the tests drive ``/usr/bin/chromium`` (Debian's
``chromium`` package; ``.ci/run`` installs it). A missing browser fails the
tests with a message saying how to install it, rather than skipping them.

Playwright's async API runs in the test's own event loop (pytest-asyncio), the
same loop in which the ``clusters`` fixture starts and stops the nodes.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from servidor.acceso import Rol
from tests.credenciales import TOKENS
from tests.procesos import Cluster, FabricaClusters, ProcesoNodo, clusters  # noqa: F401 - fixture found by name
from tests.proxy import proxies  # noqa: F401 - fixture found by name

CHROMIUM = Path(os.environ.get("PEDIDOS_CHROMIUM", "/usr/bin/chromium"))
ARGUMENTOS = [
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CAPTURAS = Path(__file__).resolve().parent / "capturas"
PLAZO_MS = 10_000

AbrirPagina = Callable[..., Awaitable[Page]]

expect.set_options(timeout=PLAZO_MS)


@pytest.fixture
async def navegador() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium (apt-get install -y chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), args=ARGUMENTOS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def abrir(navegador: Browser) -> AsyncIterator[AbrirPagina]:
    """Open a node's page at a view, each in its own browser context; no uncaught script error allowed.

    The page holds the admin token, as if typed in before, unless ``token`` says
    otherwise (``None``: the page has none).
    """
    errores: list[str] = []

    async def abrir_pagina(nodo: ProcesoNodo, vista: str = "pedidos", token: str | None = TOKENS[Rol.ADMIN]) -> Page:
        contexto = await navegador.new_context(viewport={"width": 1280, "height": 800}, locale="es-ES")
        if token is not None:
            # Before the page's scripts, on the first load only: a token typed in later must survive reloads.
            await contexto.add_init_script(
                f"if (!sessionStorage.getItem('sembrado')) {{ sessionStorage.setItem('sembrado', '1'); "
                f"localStorage.setItem('pedidos.token', {json.dumps(token)}); }}"
            )
        pagina = await contexto.new_page()
        pagina.on("pageerror", lambda e: errores.append(f"{nodo.id}: {e}"))
        await pagina.goto(f"{nodo.url}/#/{vista}")
        return pagina

    yield abrir_pagina
    assert not errores, "uncaught errors in the page:\n" + "\n".join(errores)


@pytest.fixture(scope="session")
def capturas() -> Path:
    CAPTURAS.mkdir(exist_ok=True)
    return CAPTURAS
