// Loaded with `node --require ./loop_burner.cjs server.js` by bench/loop_iterations.py only: every turn of the event
// loop also spends LOOP_BURN_MS ms in a setImmediate callback (the check phase runs once per turn), so a request's
// latency divided by the burn is about how many loop turns the server needs to answer it.
const ms = Number(process.env.LOOP_BURN_MS || 20);
function burn() {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    // stands for the work of a saturated node
  }
  setImmediate(burn);
}
setImmediate(burn);
