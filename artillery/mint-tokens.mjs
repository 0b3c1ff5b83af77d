// Mint one HS256 JWT per user id into a CSV (header `userId,token`) that websocket-load.yml reads as its payload.
// Usage: REALTIME_SIO_JWT_SECRET=... node mint-tokens.mjs <out.csv> [users=1000] [ttlSeconds=3600]
// Claims: sub = the user id (string), roles = ["member"], exp = now + ttl — what realtime_sio requires.
import { writeFileSync } from "node:fs";
import jwt from "jsonwebtoken";

const [out, usersArg = "1000", ttlArg = "3600"] = process.argv.slice(2);
const secret = process.env.REALTIME_SIO_JWT_SECRET;
if (!out || !secret) {
  console.error("usage: REALTIME_SIO_JWT_SECRET=... node mint-tokens.mjs <out.csv> [users] [ttlSeconds]");
  process.exit(2);
}
const users = Number(usersArg);
const rows = ["userId,token"];
for (let id = 1; id <= users; id++) {
  const token = jwt.sign({ sub: String(id), roles: ["member"] }, secret, { algorithm: "HS256", expiresIn: Number(ttlArg) });
  rows.push(`${id},${token}`);
}
writeFileSync(out, rows.join("\n") + "\n");
console.error(`minted ${users} tokens into ${out}`);
