// The page's link to the cluster: GraphQL over HTTP, subscriptions over a websocket, failover.
//
// A Conexion talks to one node at a time, at first the one that served the page. It learns
// every other node from /api/health/nodos (each peer's url) and from `nodosCambiados` events.
// When its node stops answering — a fetch fails or times out, or the websocket closes and
// cannot be reopened — it pings the known nodes (/api/health/ping) in order, moves to the
// first that answers, reopens the websocket there, subscribes again and fires "recargar", so
// that the views reload. Calls to another node's origin need CORS on that node.
//
// Events (EventTarget): "estado" whenever the line describing the link changes (texto());
// "recargar" when views must reload because events may have been missed: after (re)connecting,
// and after the node ended a subscription (it drops one that falls behind) and it was renewed.
//
// Every call carries the page's access token (kept in localStorage under CLAVE_TOKEN, typed in the
// page's header): "Authorization: Bearer <token>" on HTTP, the same text as `authorization` in the
// websocket's connection_init payload. Only the ping that finds a live node goes without it.

import { ClienteWS } from "./ws.js";

export const CLAVE_TOKEN = "pedidos.token";

const PLAZO_CONSULTA_MS = 8000;
const PLAZO_PING_MS = 1500;
const ESPERA_MAX_MS = 5000;
const PAUSA_RENOVAR_MS = 500;

/** A refusal by the server, in its words: the message, and the code from extensions.codigo. */
export class ErrorServidor extends Error {
  constructor(mensaje, codigo = "ERROR", detalle = null) {
    super(mensaje);
    this.codigo = codigo;
    this.detalle = detalle;
  }
}

/** The node did not answer: a network failure or a time-out, not a refusal. */
class SinRespuesta extends Error {}

// Who answers, and which subscriptions its schema offers (schemas may differ during an upgrade).
const QUIEN = "{ nodo { id } __schema { subscriptionType { fields { name } } } }";

const esperar = (ms) => new Promise((r) => setTimeout(r, ms));
const aWebsocket = (url) => url.replace(/^http/, "ws") + "/graphql";

export class Conexion extends EventTarget {
  constructor(origen = location.origin, token = localStorage.getItem(CLAVE_TOKEN) ?? "") {
    super();
    this.token = token;
    this.nodos = new Map([[origen, null]]); // url -> id (null until known), in the order learnt
    this.url = origen;
    this.id = null;
    this.caido = null; // id of the node we left because it stopped answering
    this.situacion = "conectando"; // conectando | conectado | buscando | sin-conexion
    this.suscripciones = new Map(); // id -> {query, variables, siguiente, error, estado}
    this.siguienteId = 1;
    this.ws = null;
    this.ofrecidas = null; // subscription fields of the current node's schema; null: unknown
    this.cambio = null; // the failover in progress, if any
  }

  /** Connect to the node that served the page and learn its peers. */
  async iniciar() {
    try {
      await this.conectarA(this.url);
    } catch (e) {
      if (!(e instanceof SinRespuesta)) throw e;
      await this.cambiarDeNodo();
    }
  }

  texto() {
    const nombre = this.id ?? this.url;
    switch (this.situacion) {
      case "conectado":
        return `Conectado a ${nombre}` + (this.caido && this.caido !== this.id ? ` (${this.caido} no responde)` : "");
      case "buscando":
        return `${nombre} no responde; buscando otro nodo…`;
      case "sin-conexion":
        return "Sin conexión: ningún nodo responde; reintentando…";
      default:
        return `Conectando con ${nombre}…`;
    }
  }

  /**
   * Run a query or mutation; the data, or an ErrorServidor. A query is retried after a failover,
   * and so is a mutation that carries an idempotency key (`variables.clave`): the next node
   * answers the first attempt's result if it was applied, so the retry never writes twice.
   */
  async consultar(query, variables = {}) {
    const url = this.url;
    try {
      return await this.http(url, query, variables);
    } catch (e) {
      if (!(e instanceof SinRespuesta)) throw e;
      const antes = this.id ?? url;
      await this.fallo(url);
      if (/^\s*mutation\b/.test(query) && !variables.clave) {
        throw new ErrorServidor(
          `${antes} no respondió, así que no se sabe si la operación se aplicó. ` +
            `Ahora la página usa ${this.id}: compruébelo y vuelva a intentarlo.`,
          "SIN_RESPUESTA",
        );
      }
      return this.http(this.url, query, variables);
    }
  }

  /** Headers that say who is calling, for fetch. */
  autorizacion() {
    return this.token ? { authorization: `Bearer ${this.token}` } : {};
  }

  /** A REST call on the current node (e.g. POST /api/replicacion/replicar). */
  async rest(metodo, ruta, plazoMs = PLAZO_CONSULTA_MS) {
    const url = this.url;
    let respuesta;
    try {
      respuesta = await fetch(url + ruta, {
        method: metodo,
        headers: this.autorizacion(),
        signal: AbortSignal.timeout(plazoMs),
      });
    } catch {
      await this.fallo(url);
      throw new ErrorServidor(`${this.caido ?? url} no respondió; vuelva a intentarlo en ${this.id}.`, "SIN_RESPUESTA");
    }
    const cuerpo = await respuesta.json().catch(() => null);
    if (!respuesta.ok) throw errorRest(respuesta, cuerpo);
    return cuerpo;
  }

  /**
   * Subscribe to root field `campo` for as long as the page lives, across reconnections and
   * nodes. Returns the subscription: its `estado` — "activa"; "no-ofrecida" when the node's
   * schema has no such subscription (it is then not sent: Strawberry would not answer it);
   * "rechazada" when the node refused the document — and `cancelar()`.
   */
  suscribir(campo, query, variables, siguiente, error = () => {}) {
    const id = String(this.siguienteId++);
    const s = { campo, query, variables, siguiente, error, estado: "pendiente" };
    s.cancelar = () => {
      this.suscripciones.delete(id);
      this.ws?.cancelar(id);
    };
    this.suscripciones.set(id, s);
    if (this.ws) this.enviarSuscripcion(id, s);
    return s;
  }

  // --- internals -----------------------------------------------------------------------

  async http(url, query, variables) {
    let respuesta;
    try {
      respuesta = await fetch(url + "/graphql", {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", ...this.autorizacion() },
        body: JSON.stringify({ query, variables }),
        signal: AbortSignal.timeout(PLAZO_CONSULTA_MS),
      });
    } catch (e) {
      throw new SinRespuesta(String(e));
    }
    const cuerpo = await respuesta.json().catch(() => null);
    if (cuerpo?.errors?.length) throw errorGraphQL(cuerpo.errors);
    if (!respuesta.ok || !cuerpo) throw errorRest(respuesta, cuerpo);
    return cuerpo.data;
  }

  /** Connect to the node at `url`; `caido` names the node left behind, if any, for texto(). */
  async conectarA(url, caido = this.caido) {
    const [nodo, ofrecidas] = await this.quien(url);
    const ws = new ClienteWS(aWebsocket(url), () => this.wsCerrado(ws), this.autorizacion());
    try {
      await ws.conectar();
    } catch (e) {
      throw new SinRespuesta(String(e));
    }
    this.ws?.cerrar();
    this.ws = ws;
    this.url = url;
    this.id = nodo.id;
    this.caido = caido;
    this.ofrecidas = ofrecidas;
    this.nodos.set(url, nodo.id);
    this.situacion = "conectado";
    for (const [id, s] of this.suscripciones) this.enviarSuscripcion(id, s);
    this.avisar("estado");
    this.avisar("recargar");
    this.aprenderPares().catch(() => {}); // a failure here shows in the next call anyway
  }

  /** The node at `url` and the subscriptions it offers (null: unknown, introspection is off). */
  async quien(url) {
    try {
      const { nodo, __schema: esquema } = await this.http(url, QUIEN, {});
      return [nodo, new Set((esquema.subscriptionType?.fields ?? []).map((f) => f.name))];
    } catch (e) {
      if (!(e instanceof ErrorServidor)) throw e;
      const { nodo } = await this.http(url, "{ nodo { id } }", {});
      return [nodo, null];
    }
  }

  async aprenderPares() {
    const pares = await this.rest("GET", "/api/health/nodos");
    this.anotarPares(pares);
  }

  /** Note peers ({id, url, activo}) from /api/health/nodos or a nodosCambiados event. */
  anotarPares(pares) {
    for (const par of pares) {
      this.nodos.set(par.url, par.id);
      // The node we left may be back. A peer notices a dead link only after a few seconds, so
      // its word is not enough: the page asks the node itself before it stops saying so.
      if (par.id === this.caido && par.activo) {
        responde(par.url).then((vuelve) => {
          if (!vuelve || this.caido !== par.id) return;
          this.caido = null;
          this.avisar("estado");
        });
      }
    }
  }

  enviarSuscripcion(id, s) {
    if (this.ofrecidas && !this.ofrecidas.has(s.campo)) {
      s.estado = "no-ofrecida";
      return;
    }
    s.estado = "activa";
    const ws = this.ws;
    const siguiente = (payload) => {
      if (payload.errors?.length) s.error(payload.errors);
      else s.siguiente(payload.data);
    };
    const error = (errores) => {
      s.estado = "rechazada";
      s.error(errores);
      this.avisar("estado");
    };
    const completo = () => {
      // The node ended it (a subscriber that fell behind is dropped): renew it, then reload.
      if (ws !== this.ws || this.suscripciones.get(id) !== s) return;
      setTimeout(() => {
        if (ws !== this.ws || this.suscripciones.get(id) !== s) return;
        this.enviarSuscripcion(id, s);
        this.avisar("recargar");
      }, PAUSA_RENOVAR_MS);
    };
    ws.suscribir(id, s.query, s.variables, siguiente, error, completo);
  }

  async wsCerrado(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    await this.fallo(this.url);
  }

  /** `url` failed: reconnect to it if it still answers, otherwise move to another node. */
  fallo(url) {
    if (url !== this.url) return this.cambio ?? Promise.resolve();
    this.cambio ??= this.cambiarDeNodo().finally(() => (this.cambio = null));
    return this.cambio;
  }

  async cambiarDeNodo() {
    const anterior = this.url;
    const anteriorId = this.id;
    this.ws?.cerrar();
    this.ws = null;
    this.situacion = "buscando";
    this.avisar("estado");
    for (let espera = 250; ; espera = Math.min(espera * 2, ESPERA_MAX_MS)) {
      // The same node first, once, in case only the websocket dropped; then the others in order.
      const candidatos = [anterior, ...[...this.nodos.keys()].filter((u) => u !== anterior)];
      for (const url of candidatos) {
        if (!(await responde(url))) continue;
        try {
          await this.conectarA(url, url === anterior ? this.caido : (anteriorId ?? anterior));
          return;
        } catch {
          // it answered ping but not GraphQL or the websocket: try the next one
        }
      }
      this.situacion = "sin-conexion";
      this.avisar("estado");
      await esperar(espera);
    }
  }

  avisar(tipo) {
    this.dispatchEvent(new Event(tipo));
  }
}

async function responde(url) {
  try {
    const r = await fetch(url + "/api/health/ping", { signal: AbortSignal.timeout(PLAZO_PING_MS) });
    return r.ok;
  } catch {
    return false;
  }
}

function errorGraphQL(errores) {
  const primero = errores[0];
  const otros = errores.length > 1 ? ` (y ${errores.length - 1} error(es) más)` : "";
  return new ErrorServidor(primero.message + otros, primero.extensions?.codigo ?? "ERROR", primero.extensions?.detalle);
}

function errorRest(respuesta, cuerpo) {
  const e = cuerpo?.error;
  if (e) return new ErrorServidor(e.mensaje, e.codigo, e.detalle);
  return new ErrorServidor(`el servidor respondió ${respuesta.status} ${respuesta.statusText}`, `HTTP_${respuesta.status}`);
}
