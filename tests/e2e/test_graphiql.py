"""GraphiQL (``/graphql`` in a browser) on a machine that reaches nothing but the node.

Every request of the page to a host other than the loopback one is aborted,
as on an air-gapped machine: GraphiQL's scripts and styles must come from the
node itself (``web/graphiql/``), never from a CDN.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Route, expect

from servidor.acceso import Rol
from tests.credenciales import TOKENS
from tests.procesos import FabricaClusters

LOCALES = {"127.0.0.1", "localhost"}


@pytest.fixture
async def sin_internet(navegador: Browser) -> AsyncIterator[tuple[BrowserContext, list[str]]]:
    """A browser context whose requests to anything but loopback fail; the list of those it refused."""
    bloqueadas: list[str] = []

    async def solo_local(ruta: Route) -> None:
        if urlsplit(ruta.request.url).hostname in LOCALES:
            await ruta.continue_()
        else:
            bloqueadas.append(ruta.request.url)
            await ruta.abort("internetdisconnected")

    contexto = await navegador.new_context(viewport={"width": 1280, "height": 800})
    await contexto.route("**/*", solo_local)
    try:
        yield contexto, bloqueadas
    finally:
        await contexto.close()


async def test_graphiql_runs_a_query_with_the_token_typed_into_its_headers_without_internet(
    clusters: FabricaClusters, sin_internet: tuple[BrowserContext, list[str]], capturas: Path
) -> None:
    c = await clusters(1)
    contexto, bloqueadas = sin_internet
    pagina = await contexto.new_page()
    errores: list[str] = []
    pagina.on("pageerror", lambda e: errores.append(str(e)))
    await pagina.goto(f"{c['nodo1'].url}/graphql")

    consulta = pagina.get_by_role("region", name="Query Editor")
    resultado = pagina.get_by_role("region", name="Result Window")
    await expect(consulta.locator(".CodeMirror"), "GraphiQL has not loaded").to_be_visible()
    # GraphiQL asks for the schema as it loads, with no token yet: the node refuses it.
    await expect(resultado).to_contain_text("NO_AUTENTICADO")

    await pagina.locator(".graphiql-editor-tools").get_by_role("button", name="Headers", exact=True).click()
    await escribir(
        pagina.get_by_role("region", name="Headers", exact=True),
        f'{{"authorization": "Bearer {TOKENS[Rol.LECTURA]}"}}',
    )
    await escribir(consulta, "{ nodo { id } }")
    await pagina.get_by_role("button", name=re.compile("^Execute query")).click()
    await expect(resultado).to_contain_text(re.compile(r'"id":\s*"nodo1"'))
    await pagina.screenshot(path=capturas / "graphiql.png")
    assert not bloqueadas, "the page asked for files off this machine:\n" + "\n".join(bloqueadas)
    assert not errores, "uncaught errors in the page:\n" + "\n".join(errores)


async def escribir(region: Locator, texto: str) -> None:
    """Replace what the CodeMirror editor shown in ``region`` holds with ``texto``, as if pasted."""
    editor = region.locator(".CodeMirror:visible")
    await editor.click()
    await region.page.keyboard.press("ControlOrMeta+A")
    await region.page.keyboard.insert_text(texto)
    await expect(editor.locator(".CodeMirror-code")).to_contain_text(texto)
