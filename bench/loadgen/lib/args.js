// Command-line parsing for the load generator: `--name value` pairs and `--flag` booleans, with typed defaults.

/**
 * Parse argv (without `node main.js <scenario>`) against a defaults object.
 * The type of each default decides the parse: number, boolean (flag), array (comma list) or string.
 * Unknown options throw, so a typo in the runner fails loudly instead of silently using a default.
 */
export function parseArgs(argv, defaults) {
  const out = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) throw new Error(`unexpected argument ${arg}`);
    const key = arg.slice(2).replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(key in defaults)) throw new Error(`unknown option ${arg}`);
    const def = defaults[key];
    if (typeof def === "boolean") {
      out[key] = true;
      continue;
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`option ${arg} needs a value`);
    if (typeof def === "number") {
      out[key] = Number(value);
      if (!Number.isFinite(out[key])) throw new Error(`option ${arg} needs a number, got ${value}`);
    } else if (Array.isArray(def)) {
      out[key] = value === "" ? [] : value.split(",");
    } else {
      out[key] = value;
    }
  }
  return out;
}
