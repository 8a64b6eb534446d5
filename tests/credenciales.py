"""The client tokens of the test clusters, one per role, and the header that sends each.

Every settings file the tests write declares these (``tests/procesos.py``,
``tests/conftest.py``); clients default to the admin one, and the tests of
role boundaries pick another.
"""

from __future__ import annotations

from servidor.acceso import Rol, Token

TOKENS = {
    Rol.LECTURA: "token-de-prueba-lectura",
    Rol.OPERADOR: "token-de-prueba-operador",
    Rol.ADMIN: "token-de-prueba-admin",
}


def cabecera(rol: Rol = Rol.ADMIN) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[rol]}"}


def tokens() -> tuple[Token, ...]:
    return tuple(Token.desde_texto(f"prueba-{rol.nombre}", texto, rol) for rol, texto in TOKENS.items())


def en_toml() -> list[str]:
    """The ``[[tokens]]`` tables of a settings file, as lines."""
    lineas: list[str] = []
    for rol, texto in TOKENS.items():
        lineas += ["", "[[tokens]]", f'nombre = "prueba-{rol.nombre}"', f'rol = "{rol.nombre}"', f'token = "{texto}"']
    return lineas
