// Connect one socket.io-client 4 over https/wss and report what happened, as JSON:
//   {ok, transport, serial}  or  {ok: false, error}
// Argument (JSON): {url, transports, token, ca?}. `ca` (PEM) goes to the engine's Node TLS options, the way an app
// trusts a private CA without NODE_EXTRA_CA_CERTS; `serial` is the leaf a fresh TLS handshake with the same trust sees.
import tls from "node:tls";
import { io } from "socket.io-client";

const args = JSON.parse(process.argv[2]);
const url = new URL(args.url);

function servedSerial() {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host: url.hostname, port: Number(url.port), ca: args.ca, servername: undefined }, () => {
      const serial = sock.getPeerCertificate().serialNumber;
      sock.end();
      resolve(serial);
    });
    sock.on("error", reject);
  });
}

const socket = io(args.url, {
  transports: args.transports,
  auth: { token: args.token },
  reconnection: false,
  timeout: 10000,
  ...(args.ca ? { ca: args.ca } : {}),
});
const timer = setTimeout(() => finish({ ok: false, error: "timeout" }), 20000);

function finish(result) {
  clearTimeout(timer);
  socket.close();
  console.log(JSON.stringify(result));
  process.exit(0);
}

socket.on("connect", async () => {
  try {
    finish({ ok: true, transport: socket.io.engine.transport.name, serial: await servedSerial() });
  } catch (err) {
    finish({ ok: false, error: String(err) });
  }
});
socket.on("connect_error", (err) => {
  const cause = err.description?.message || err.description?.error?.message || err.description || "";
  finish({ ok: false, error: `${err.message} ${cause}` });
});
