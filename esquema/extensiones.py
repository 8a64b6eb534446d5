"""The schema's extensions: limits, caches, error handling and websocket loaders.

How Strawberry 0.341 builds extensions (``Schema.get_extensions``): every
entry of ``extensions=[...]`` that is a class or a factory is *called once
per operation*; passing an instance is deprecated (a ``DeprecationWarning``
at schema construction) because one instance would be shared by
concurrent requests. So whatever must outlive a request cannot live on the
extension instance:

- ``ParserCache`` and ``ValidationCache`` keep their LRU caches at module
  level, keyed by ``maxsize`` (``_get_parse_cache`` / ``_get_validate_cache``),
  so a fresh instance per request still hits the shared cache. Nothing more
  is needed for them than the same ``maxsize`` every time.
- The depth, alias and field limits are one validation rule *class*
  (``esquema.medidas``, which measures a document in linear time, where
  Strawberry's ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` expand every
  fragment spread). Made per request, it would be a different class each
  time, and since the validation cache is keyed by ``(schema, document,
  rules)`` every request would miss it — validation would run every time
  and fill the LRU with dead entries. So the class is made once per schema,
  in :func:`crear_extensiones`, and each request only gets a cheap
  ``AddValidationRules`` holding that same class.

The validation cache also caches the *errors* of an invalid document, and
the parse cache is keyed by the parse options, so the token limit (set in
``parse_options``) is part of the key and cannot be bypassed by a cached
parse. Caches are bounded (``TAM_CACHE`` entries) so that distinct query
texts cannot grow memory without limit.

One fix on top: with ``ParserCache``, a syntax error (or a document over the
token limit) is raised inside the ``on_parse`` hook, outside the ``try`` in
which Strawberry turns parse errors into an answer, so it escapes the
operation hooks and neither ``MaskErrors`` nor our codes see it.
:class:`CacheDeAnalisis` leaves such a document to Strawberry's own parse,
which reports it the normal way; lru_cache does not cache exceptions, so an
invalid document costs two parses, a valid one none after the first.

Order matters only where noted: ``MaxTokensLimiter`` and the rules are set
in ``on_operation``, before the parse and validate hooks run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)

from esquema.contexto import CargadoresPorOperacion
from esquema.errores import CodigosDeError, debe_ocultarse
from esquema.medidas import regla_de_limites

TAM_CACHE = 256


class CacheDeAnalisis(ParserCache):
    """``ParserCache`` that lets Strawberry report the documents it cannot parse."""

    def on_parse(self) -> Iterator[None]:
        contexto = self.execution_context
        try:
            contexto.graphql_document = self.cached_parse_document(contexto.query, **contexto.parse_options)
        except GraphQLError:
            pass  # Strawberry parses it again and answers with the error, through the operation hooks
        yield


@dataclass(frozen=True)
class Limites:
    """What one document may ask for.

    The deepest query the schema allows has depth 3 (root fields are 0):
    ``pedidos { items { producto { nombre } } }``; introspection (GraphiQL)
    is not counted. An order of 200 lines written inline is about 1,800
    tokens; larger inputs should travel as variables, which are not tokens.
    ``campos`` counts the fields a document selects with its fragments
    written out (``esquema.medidas``): GraphiQL's introspection query has
    about 230. It keeps fragments from multiplying a small document, and
    bounds graphql-core's check of overlapping fields, which compares
    fields pairwise (about 2 s for 500 fields of one name, on one core).
    """

    profundidad: int = 10
    tokens: int = 4000
    alias: int = 20
    campos: int = 500
    suscripciones: int = 10  # operations running at once on one websocket


def crear_extensiones(limites: Limites) -> list[Callable[[], SchemaExtension]]:
    """Factories for ``strawberry.Schema(extensions=...)``, one call per operation."""
    reglas = [regla_de_limites(limites.profundidad, limites.alias, limites.campos)]
    return [
        CargadoresPorOperacion,
        lambda: MaxTokensLimiter(max_token_count=limites.tokens),
        lambda: AddValidationRules(reglas),
        lambda: CacheDeAnalisis(maxsize=TAM_CACHE),
        lambda: ValidationCache(maxsize=TAM_CACHE),
        # Exits run in reverse: codes are added first, then internal errors masked.
        lambda: MaskErrors(should_mask_error=debe_ocultarse),
        CodigosDeError,
    ]
