/**
 * Child half of kvm_open_test.ts: opens the KVM device path given as argument through Kvm.open
 * (run as an unprivileged user) and prints the outcome as JSON on stdout.
 * @module
 */

import { Kvm, KvmError } from "../../mod.ts";

try {
  Kvm.open(Deno.args[0]).close();
  console.log(JSON.stringify({ opened: true }));
} catch (e) {
  console.log(JSON.stringify(e instanceof KvmError ? { ...e.toJSON(), message: e.message } : { other: String(e) }));
}
