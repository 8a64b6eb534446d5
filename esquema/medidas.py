"""What a GraphQL document asks for, measured once, in time linear in its size.

Three figures, all of them as if every fragment spread were written out in
place, since that is what execution does:

- ``profundidad``: the most fields nested in one another in an operation;
  root fields are 0, so ``pedidos { items { producto { nombre } } }`` has
  depth 3. Introspection fields (``__schema``, ``__type``) end the count:
  GraphiQL's own query nests deeply through its ``TypeRef`` fragment;
- ``alias``: aliased fields in the document's operations;
- ``campos``: fields in the document's operations.

Written out, a document of a few hundred bytes can be exponential:
``fragment F1 on Query { ...F2 ...F2 } fragment F2 on Query { ...F3 ...F3 }``
and so on doubles at each level, and Strawberry's ``QueryDepthLimiter`` and
``MaxAliasesLimiter`` walk it written out (25 levels froze a node). Here
each fragment is measured once, its spreads adding the figures of the
fragments they name, so the figures may be huge but take no time to get:
such a document is refused for its ``campos``.

Nothing recurses, so a long chain of fragments cannot exhaust Python's
stack: fragments are measured in an order where the ones a fragment spreads
come first (an explicit stack, as graphql-core's ``FragmentNestingVisitor``
does), and each selection set is walked with a stack too. A spread that
closes a cycle, or names no fragment, adds nothing: GraphQL's own rules
refuse such a document anyway.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from graphql.validation.validate import ValidationAbortedError


@dataclass(frozen=True, slots=True)
class Medida:
    profundidad: int = 0
    alias: int = 0
    campos: int = 0


@dataclass(frozen=True)
class Medidas:
    """The figures of a document: depth per operation (by name), aliases and fields in all."""

    profundidades: dict[str, int]
    alias: int
    campos: int


def nombre_de(operacion: OperationDefinitionNode) -> str:
    return operacion.name.value if operacion.name else "anonymous"


def medir(documento: DocumentNode) -> Medidas:
    fragmentos = {d.name.value: d for d in documento.definitions if isinstance(d, FragmentDefinitionNode)}
    medidos: dict[str, Medida] = {}
    for nombre in _en_orden(fragmentos):
        medidos[nombre] = _medir_seleccion(fragmentos[nombre].selection_set, medidos)
    profundidades: dict[str, int] = {}
    alias = campos = 0
    for definicion in documento.definitions:
        if isinstance(definicion, OperationDefinitionNode):
            medida = _medir_seleccion(definicion.selection_set, medidos)
            nombre = nombre_de(definicion)
            profundidades[nombre] = max(profundidades.get(nombre, 0), medida.profundidad)
            alias += medida.alias
            campos += medida.campos
    return Medidas(profundidades, alias, campos)


def _spreads(seleccion: SelectionSetNode) -> Iterator[str]:
    """The names of the fragments spread in a selection set, at any level, without following them."""
    pila = [seleccion]
    while pila:
        for nodo in pila.pop().selections:
            if isinstance(nodo, FragmentSpreadNode):
                yield nodo.name.value
            elif nodo.selection_set is not None:  # type: ignore[attr-defined]
                pila.append(nodo.selection_set)  # type: ignore[attr-defined]


def _en_orden(fragmentos: Mapping[str, FragmentDefinitionNode]) -> list[str]:
    """Every fragment, each after those it spreads (depth-first post-order; a cycle is cut)."""
    orden: list[str] = []
    vistos: set[str] = set()
    for raiz in fragmentos:
        if raiz in vistos:
            continue
        vistos.add(raiz)
        camino = [(raiz, _spreads(fragmentos[raiz].selection_set))]
        while camino:
            nombre, pendientes = camino[-1]
            for otro in pendientes:
                if otro in fragmentos and otro not in vistos:
                    vistos.add(otro)
                    camino.append((otro, _spreads(fragmentos[otro].selection_set)))
                    break
            else:
                camino.pop()
                orden.append(nombre)
    return orden


def _medir_seleccion(raiz: SelectionSetNode, medidos: Mapping[str, Medida]) -> Medida:
    """The figures of one selection set, its spreads taken from ``medidos``.

    Each entry of the stack is a selection set, how many fields enclose it,
    and whether it still counts for depth (not below an introspection field).
    """
    profundidad = alias = campos = 0
    pila: list[tuple[SelectionSetNode, int, bool]] = [(raiz, 0, True)]
    while pila:
        seleccion, nivel, cuenta = pila.pop()
        for nodo in seleccion.selections:
            if isinstance(nodo, FieldNode):
                campos += 1
                if nodo.alias is not None:
                    alias += 1
                sigue = cuenta and not nodo.name.value.startswith("__")
                if nodo.selection_set is not None:
                    pila.append((nodo.selection_set, nivel + 1, sigue))
                if cuenta and not (sigue and nodo.selection_set is not None):
                    profundidad = max(profundidad, nivel)
            elif isinstance(nodo, FragmentSpreadNode):
                medida = medidos.get(nodo.name.value)
                if medida is not None:
                    campos += medida.campos
                    alias += medida.alias
                    if cuenta:
                        profundidad = max(profundidad, nivel + medida.profundidad)
            else:  # an inline fragment: same level
                pila.append((nodo.selection_set, nivel, cuenta))  # type: ignore[attr-defined]
    return Medida(profundidad, alias, campos)


def regla_de_limites(profundidad: int, alias: int, campos: int) -> type[ASTValidationRule]:
    """A validation rule refusing documents past these figures, one error per figure exceeded.

    The messages of depth and aliases are those of Strawberry's limiters,
    which this rule replaces. A refused document is not walked by the other
    rules: validation is aborted as it starts (graphql-core keeps the errors
    and stops), since some rules take more than linear time
    (``OverlappingFieldsCanBeMergedRule`` compares fields pairwise). Make
    the class once and share it: the validation cache is keyed by the rules.
    """

    class LimitesDelDocumento(ValidationRule):
        def __init__(self, contexto: ValidationContext) -> None:
            super().__init__(contexto)
            self.excesos = _excesos(contexto.document, profundidad, alias, campos)

        def enter_document(self, *_args: Any) -> None:
            if self.excesos:
                *antes, ultimo = self.excesos
                for error in antes:
                    self.report_error(error)
                raise ValidationAbortedError(ultimo.message, ultimo.nodes)

    return LimitesDelDocumento


def _excesos(documento: DocumentNode, profundidad: int, alias: int, campos: int) -> list[GraphQLError]:
    medidas = medir(documento)
    errores: list[GraphQLError] = []
    nombrados: set[str] = set()
    for definicion in documento.definitions:
        if isinstance(definicion, OperationDefinitionNode):
            nombre = nombre_de(definicion)
            if nombre not in nombrados and medidas.profundidades[nombre] > profundidad:
                nombrados.add(nombre)
                errores.append(GraphQLError(f"'{nombre}' exceeds maximum operation depth of {profundidad}", definicion))
    if medidas.alias > alias:
        errores.append(GraphQLError(f"{medidas.alias} aliases found. Allowed: {alias}"))
    if medidas.campos > campos:
        errores.append(GraphQLError(f"{medidas.campos} fields found once fragments are expanded. Allowed: {campos}"))
    return errores
