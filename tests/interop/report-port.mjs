// Peers started by the tests (the Portkey gateway, Prism) listen on port 0, so the kernel picks
// a port nobody holds; this preload reports the port each server got, one line per server, to
// the file named by FTGUARD_PORT_FILE. (Finding a free port first and handing it over is racy:
// another process may take it in between.)
import fs from "node:fs";
import net from "node:net";

const file = process.env.FTGUARD_PORT_FILE;
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  this.once("listening", () => {
    const address = this.address();
    if (file && address && typeof address === "object") {
      fs.appendFileSync(file, `${address.port}\n`);
    }
  });
  return listen.apply(this, args);
};
