/** openKvm() with no path follows $KVMSH_DEVICE, as the shell and scenarios do. */

import { deepStrictEqual as eq } from "node:assert/strict";

const MOD = new URL("../../mod.ts", import.meta.url).href;

async function openIn(env: Record<string, string>): Promise<unknown> {
  const code = `import { openKvm, KvmError } from ${JSON.stringify(MOD)};
try { openKvm().close(); console.log(JSON.stringify({ opened: true })); }
catch (e) { console.log(JSON.stringify(e instanceof KvmError ? { errno: e.errnoName, args: e.args } : { other: String(e) })); }`;
  const o = await new Deno.Command(Deno.execPath(), { args: ["eval", code], env, stdout: "piped", stderr: "piped" })
    .output();
  return JSON.parse(new TextDecoder().decode(o.stdout));
}

Deno.test("openKvm(): $KVMSH_DEVICE names the device when no path is given", async () => {
  eq(await openIn({ KVMSH_DEVICE: "/nonexistent/kvm" }), { errno: "ENOENT", args: { path: "/nonexistent/kvm" } });
});
