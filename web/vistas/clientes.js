// Clientes: list, create, edit, delete.

import { avisos, botonEliminar, ejecutar, el, sincronizarFilas } from "./comun.js";

const CAMPOS = "id nombre email telefono direccion";
const LISTA = `{ clientes { ${CAMPOS} } }`;
const CREAR = `mutation Crear($datos: ClienteEntrada!, $clave: String) {
  crearCliente(datos: $datos, claveIdempotencia: $clave) { ${CAMPOS} } }`;
const ACTUALIZAR = `mutation Actualizar($id: ID!, $datos: ClienteCambios!) {
  actualizarCliente(id: $id, datos: $datos) { ${CAMPOS} } }`;
const ELIMINAR = `mutation Eliminar($id: ID!) { eliminarCliente(id: $id) }`;

export function crearVista(conexion) {
  const aviso = avisos();
  const campo = (nombre, etiqueta, tipo = "text", requerido = false) =>
    el("label", {}, etiqueta, el("input", { name: nombre, type: tipo, required: requerido }));
  const guardar = el("button", { type: "submit" }, "Crear cliente");
  const dejar = el("button", { type: "button", hidden: true, onclick: () => salirDeEdicion() }, "Cancelar edición");
  const titulo = el("h3", {}, "Nuevo cliente");
  const formulario = el(
    "form",
    { class: "formulario", "aria-label": "Cliente" },
    titulo,
    campo("nombre", "Nombre", "text", true),
    campo("email", "Email", "email", true),
    campo("telefono", "Teléfono", "tel"),
    campo("direccion", "Dirección"),
    el("div", { class: "acciones" }, guardar, dejar),
  );
  const tbody = el("tbody");
  const tabla = el(
    "table",
    { "aria-label": "Clientes" },
    el("thead", {}, el("tr", {}, ...["Nombre", "Email", "Teléfono", "Dirección", ""].map((t) => el("th", {}, t)))),
    tbody,
  );
  const elemento = el("section", { id: "vista-clientes" }, el("h2", {}, "Clientes"), formulario, aviso.nodo, tabla);
  let editando = null;

  function entrarEnEdicion(cliente) {
    editando = cliente.id;
    for (const nombre of ["nombre", "email", "telefono", "direccion"]) formulario.elements[nombre].value = cliente[nombre] ?? "";
    titulo.textContent = `Editar cliente ${cliente.nombre}`;
    guardar.textContent = "Guardar cambios";
    dejar.hidden = false;
    formulario.elements.nombre.focus();
  }

  function salirDeEdicion() {
    editando = null;
    formulario.reset();
    titulo.textContent = "Nuevo cliente";
    guardar.textContent = "Crear cliente";
    dejar.hidden = true;
  }

  formulario.addEventListener("submit", (evento) => {
    evento.preventDefault();
    const f = formulario.elements;
    const opcional = (v) => (v.trim() === "" ? null : v.trim());
    const datos = { nombre: f.nombre.value.trim(), email: f.email.value.trim() };
    datos.telefono = opcional(f.telefono.value);
    datos.direccion = opcional(f.direccion.value);
    ejecutar(guardar, aviso, async () => {
      if (editando) {
        const r = await conexion.consultar(ACTUALIZAR, { id: editando, datos });
        salirDeEdicion();
        await recargar();
        return `Cliente ${r.actualizarCliente.nombre} guardado.`;
      }
      if (datos.telefono === null) delete datos.telefono;
      if (datos.direccion === null) delete datos.direccion;
      const r = await conexion.consultar(CREAR, { datos, clave: crypto.randomUUID() });
      formulario.reset();
      await recargar();
      return `Cliente ${r.crearCliente.nombre} creado.`;
    });
  });

  function crearFila(cliente) {
    const tr = el("tr", {}, el("td"), el("td"), el("td"), el("td"));
    const eliminar = botonEliminar("Eliminar", () =>
      ejecutar(eliminar, aviso, async () => {
        await conexion.consultar(ELIMINAR, { id: tr.dataset.id });
        if (editando === tr.dataset.id) salirDeEdicion();
        await recargar();
        return "Cliente eliminado.";
      }),
    );
    const editar = el("button", { type: "button", onclick: () => entrarEnEdicion(tr.cliente) }, "Editar");
    tr.append(el("td", { class: "acciones" }, editar, eliminar));
    return tr;
  }

  function actualizarFila(tr, cliente) {
    tr.cliente = cliente;
    ["nombre", "email", "telefono", "direccion"].forEach((c, i) => (tr.cells[i].textContent = cliente[c] ?? ""));
  }

  async function recargar() {
    const { clientes } = await conexion.consultar(LISTA);
    sincronizarFilas(tbody, clientes, crearFila, actualizarFila, "No hay clientes.");
  }

  return { titulo: "Clientes", elemento, recargar, aviso };
}
