// Small helpers shared by the views: building elements, keyed table rows, messages, formats.

/** el("button", {type: "button", onclick}, "Guardar"): attributes starting with "on" become listeners. */
export function el(etiqueta, atributos = {}, ...hijos) {
  const nodo = document.createElement(etiqueta);
  for (const [nombre, valor] of Object.entries(atributos)) {
    if (valor === null || valor === undefined || valor === false) continue;
    if (nombre.startsWith("on")) nodo.addEventListener(nombre.slice(2), valor);
    else if (nombre === "class") nodo.className = valor;
    else nodo.setAttribute(nombre, valor === true ? "" : valor);
  }
  nodo.append(...hijos.flat().filter((h) => h !== null && h !== undefined && h !== false));
  return nodo;
}

/**
 * Make the rows of `tbody` match `filas`, keyed by `fila.id`: new rows are created with
 * `crear(fila)`, existing ones passed to `actualizar(tr, fila)`, missing ones removed. Rows are
 * never rebuilt, so what a person is typing into one survives a reload.
 */
export function sincronizarFilas(tbody, filas, crear, actualizar, vacio = "Nada todavía.") {
  const existentes = new Map([...tbody.querySelectorAll("tr[data-id]")].map((tr) => [tr.dataset.id, tr]));
  tbody.querySelector("tr.vacio")?.remove();
  let anterior = null;
  for (const fila of filas) {
    let tr = existentes.get(fila.id);
    existentes.delete(fila.id);
    if (!tr) {
      tr = crear(fila);
      tr.dataset.id = fila.id;
    }
    actualizar(tr, fila);
    const siguiente = anterior ? anterior.nextSibling : tbody.firstChild;
    if (tr !== siguiente) tbody.insertBefore(tr, siguiente);
    anterior = tr;
  }
  for (const tr of existentes.values()) tr.remove();
  if (!filas.length) {
    const columnas = tbody.closest("table")?.querySelectorAll("thead th").length || 1;
    tbody.append(el("tr", { class: "vacio" }, el("td", { colspan: columnas }, vacio)));
  }
}

/** Replace a select's options, keeping what was chosen if it is still there. */
export function rellenarSelect(select, opciones, primera = null) {
  const elegido = select.value;
  const nuevas = opciones.map(([valor, texto]) => el("option", { value: valor }, texto));
  if (primera) nuevas.unshift(el("option", { value: "" }, primera));
  select.replaceChildren(...nuevas);
  if ([...select.options].some((o) => o.value === elegido)) select.value = elegido;
}

/** Update an input from the server unless the person is editing it. */
export function refrescarCampo(input, valor) {
  const texto = valor ?? "";
  if (document.activeElement === input || input.value !== (input.dataset.original ?? input.value)) return;
  input.value = texto;
  input.dataset.original = texto;
}

const TITULOS = {
  STOCK_INSUFICIENTE: "Stock insuficiente",
  TRANSICION_INVALIDA: "Cambio de estado no permitido",
  NO_ENCONTRADO: "No encontrado",
  VALIDACION: "Datos no válidos",
  JSON_INVALIDO: "Petición mal formada",
  CUERPO_DEMASIADO_GRANDE: "Petición demasiado grande",
  ERROR_INTERNO: "Error interno del servidor",
  SIN_RESPUESTA: "El nodo no respondió",
  NO_AUTENTICADO: "Falta un token de acceso válido",
  PROHIBIDO: "El token no permite esta operación",
  SUSCRIPTOR_LENTO: "Actualizaciones en vivo interrumpidas",
};

/** An error in words: "Stock insuficiente: <the server's message> (STOCK_INSUFICIENTE)". */
export function describirError(error) {
  if (error?.codigo) return `${TITULOS[error.codigo] ?? "Error"}: ${error.message} (${error.codigo})`;
  return `Error: ${error?.message ?? error}`;
}

/** A message area (role=alert for errors, role=status otherwise) with mostrar/error/limpiar. */
export function avisos() {
  const nodo = el("p", { class: "aviso", hidden: true });
  return {
    nodo,
    mostrar(texto) {
      nodo.className = "aviso ok";
      nodo.setAttribute("role", "status");
      nodo.textContent = texto;
      nodo.hidden = false;
    },
    error(error) {
      nodo.className = "aviso error";
      nodo.setAttribute("role", "alert");
      nodo.textContent = describirError(error);
      nodo.hidden = false;
    },
    limpiar() {
      nodo.hidden = true;
      nodo.textContent = "";
    },
  };
}

/** Run `accion` with `boton` disabled; errors go to `aviso`, success text too. */
export async function ejecutar(boton, aviso, accion) {
  boton.disabled = true;
  aviso.limpiar();
  try {
    const texto = await accion();
    if (texto) aviso.mostrar(texto);
    return true;
  } catch (e) {
    aviso.error(e);
    return false;
  } finally {
    boton.disabled = false;
  }
}

/** A delete button that asks for a second click instead of a dialog. */
export function botonEliminar(texto, accion) {
  const boton = el("button", { type: "button", class: "peligro" }, texto);
  let armado = null;
  boton.addEventListener("click", () => {
    if (!armado) {
      boton.textContent = "¿Seguro? Pulse otra vez";
      armado = setTimeout(() => {
        armado = null;
        boton.textContent = texto;
      }, 4000);
      return;
    }
    clearTimeout(armado);
    armado = null;
    boton.textContent = texto;
    accion();
  });
  return boton;
}

export const dinero = (valor) => `${valor} €`;
// Ids are UUIDv7: the first digits are the time, so the last ones tell orders apart.
export const corto = (id) => String(id).slice(-8);

export function fecha(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString("es-ES");
}

export const ESTADOS = ["PENDIENTE", "CONFIRMADO", "ENVIADO", "ENTREGADO", "CANCELADO"];
export const nombreEstado = (estado) => estado.toLowerCase();
