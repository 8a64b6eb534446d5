// A tiny client of the graphql-transport-ws protocol (the one Strawberry speaks at /graphql).
//
// The protocol, as this client uses it:
//   1. open a websocket with subprotocol "graphql-transport-ws";
//   2. send {type: "connection_init", payload: {authorization: "Bearer …"}}, wait for
//      {type: "connection_ack"} (the node closes with 4403 instead when the token is not valid);
//   3. per subscription send {id, type: "subscribe", payload: {query, variables}}; the server
//      answers {id, type: "next", payload: {data, errors}} per event, then {id, type: "complete"},
//      or {id, type: "error", payload: [GraphQLError...]} when it refuses the document;
//   4. {type: "ping"} is answered with {type: "pong"}; {id, type: "complete"} from us stops one.
//
// One ClienteWS is one socket; it does not reconnect. The caller (graphql.js) decides what a
// closed socket means and opens another, possibly on another node.

const PLAZO_ACK_MS = 3000;

export class ClienteWS {
  /**
   * @param {string} url ws://host:port/graphql  @param {(evento: CloseEvent) => void} alCerrar
   * @param {object} parametros the connection_init payload: {authorization: "Bearer …"}
   */
  constructor(url, alCerrar, parametros = {}) {
    this.url = url;
    this.alCerrar = alCerrar;
    this.parametros = parametros;
    this.manejadores = new Map(); // id -> {siguiente, error, completo}
    this.socket = null;
    this.cerradoPorNosotros = false;
  }

  /** Resolves once the server acknowledged the connection; rejects if it does not. */
  conectar() {
    return new Promise((resolver, rechazar) => {
      let reconocido = false;
      const socket = new WebSocket(this.url, "graphql-transport-ws");
      this.socket = socket;
      const plazo = setTimeout(() => socket.close(), PLAZO_ACK_MS);
      socket.onopen = () => this.enviar({ type: "connection_init", payload: this.parametros });
      socket.onmessage = (m) => {
        const mensaje = JSON.parse(m.data);
        if (mensaje.type === "connection_ack") {
          reconocido = true;
          clearTimeout(plazo);
          resolver();
        } else {
          this.recibir(mensaje);
        }
      };
      socket.onclose = (evento) => {
        clearTimeout(plazo);
        if (!reconocido) {
          rechazar(new Error(`websocket ${this.url} cerrado antes de connection_ack (${evento.code})`));
        } else if (!this.cerradoPorNosotros) {
          this.alCerrar(evento);
        }
      };
    });
  }

  recibir(mensaje) {
    const manejador = this.manejadores.get(mensaje.id);
    switch (mensaje.type) {
      case "ping":
        this.enviar({ type: "pong" });
        break;
      case "next":
        manejador?.siguiente(mensaje.payload);
        break;
      case "error":
        this.manejadores.delete(mensaje.id);
        manejador?.error(mensaje.payload);
        break;
      case "complete":
        this.manejadores.delete(mensaje.id);
        manejador?.completo();
        break;
    }
  }

  /**
   * Start one subscription: its events go to `siguiente(payload)`, a refusal to `error(errores)`,
   * the server ending it to `completo()`.
   */
  suscribir(id, query, variables, siguiente, error, completo) {
    this.manejadores.set(id, { siguiente, error, completo });
    this.enviar({ id, type: "subscribe", payload: { query, variables } });
  }

  cancelar(id) {
    if (this.manejadores.delete(id)) this.enviar({ id, type: "complete" });
  }

  cerrar() {
    this.cerradoPorNosotros = true;
    this.socket?.close(1000);
  }

  enviar(mensaje) {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(mensaje));
  }
}
