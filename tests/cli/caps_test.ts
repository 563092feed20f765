/**
 * `kvmsh caps` as a user runs it: the real ./kvmsh script, its stdout, stderr and exit code.
 * Expected values are read independently in this process (procfs, /sys/module, our own Kvm),
 * so the test holds on any KVM host. A host whose KVM has no guest_memfd must say so on the
 * KVM_CAP_GUEST_MEMFD row (and the kernel must then refuse KVM_CREATE_GUEST_MEMFD as the row says);
 * a host with one shows the plain value.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { CAP, describeCapValue, Kvm, vendorModules } from "../../mod.ts";
import { readProcText } from "../../ffi/procfs.ts";
import { gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";

const KVMSH = new URL("../../kvmsh", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function kvmsh(...args: string[]): Promise<Run> {
  const out = await new Deno.Command(KVMSH, {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

function hostFacts() {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  return {
    kernel: readProcText("/proc/sys/kernel/osrelease")!.trim(),
    vendors: vendorModules(),
    gmemFlags: vm.checkExtension(CAP.GUEST_MEMFD_FLAGS),
    attrs: vm.checkExtension(CAP.MEMORY_ATTRIBUTES),
  };
}

kvmTest("kvmsh caps: the text report names kernel, vendor module, API version and key caps", async () => {
  const facts = hostFacts();
  const r = await kvmsh("caps");
  eq(r.code, 0, r.stderr);
  const lines = r.stdout.split("\n");
  ok(lines[0].startsWith(`kernel          ${facts.kernel}`), lines[0]);
  for (const v of facts.vendors) {
    const line = lines.find((l) => l.startsWith(`vendor module   ${v.name}`));
    ok(line, `vendor ${v.name} in:\n${r.stdout}`);
    for (const [k, val] of Object.entries(v.parameters)) ok(line.includes(`${k}=${val}`), `${k}=${val} in ${line}`);
  }
  ok(lines.includes("API version     12"), r.stdout);
  const gmem = lines.find((l) => l.startsWith("KVM_CAP_GUEST_MEMFD_FLAGS (244)"));
  ok(gmem, r.stdout);
  ok(gmem.includes(`vm ${facts.gmemFlags}`), gmem);
  const decoded = describeCapValue(CAP.GUEST_MEMFD_FLAGS, facts.gmemFlags);
  ok(gmem.endsWith(decoded.slice(decoded.indexOf("("))), gmem);
  ok(lines.some((l) => l.startsWith("KVM_CAP_MEMORY_ATTRIBUTES (233)")), r.stdout);
  ok(r.stdout.includes("pinned to Linux 7.2"), r.stdout);
});

kvmTest("kvmsh caps --json: parses; kernel, vendor with params, API 12, GUEST_MEMFD_FLAGS decoded", async () => {
  const facts = hostFacts();
  const r = await kvmsh("caps", "--json");
  eq(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  eq(j.kernel, facts.kernel);
  eq(j.apiVersion, 12);
  eq(j.capsUapi, "Linux 7.2");
  eq(j.vendor, facts.vendors);
  // And each parameter as /sys shows it, read here, not through the report's own code.
  for (const v of j.vendor) {
    for (const [k, val] of Object.entries(v.parameters)) {
      eq(val, readProcText(`/sys/module/${v.name}/parameters/${k}`)?.trim(), `${v.name}.${k}`);
    }
  }
  ok(j.vendor.length > 0, "a vendor module is loaded on a host with /dev/kvm");
  for (const v of j.vendor) ok(Object.keys(v.parameters).length > 0, `${v.name} has parameters`);
  if (readProcText("/sys/module/kvm_pvm/parameters/pvm_native") !== undefined) {
    ok(j.vendor.some((v: { name: string }) => v.name === "kvm_pvm"), "kvm_pvm is named where it is loaded");
  }
  const row = j.caps.find((c: { cap: number }) => c.cap === 244);
  eq(row.name, "KVM_CAP_GUEST_MEMFD_FLAGS");
  eq(row.vm, facts.gmemFlags);
  eq(row.decoded, describeCapValue(CAP.GUEST_MEMFD_FLAGS, facts.gmemFlags));
  if (facts.gmemFlags === 3) eq(row.decoded, "3 (mmap|init-shared)");
  const attrs = j.caps.find((c: { cap: number }) => c.cap === 233);
  eq(attrs.vm, facts.attrs);
  eq(j.vmTypes.split("|").includes("default"), true);
});

kvmTest("kvmsh caps 250: a number Linux 7.2 does not name is probed raw", async () => {
  const r = await kvmsh("caps", "250");
  eq(r.code, 0, r.stderr);
  ok(/^KVM_CAP_#250 \(250\): system -?\d+, vm -?\d+/m.test(r.stdout), r.stdout);
  const j = JSON.parse((await kvmsh("--json", "caps", "250")).stdout);
  eq(j.caps.map((c: { cap: number; name: string }) => [c.cap, c.name]), [[250, "KVM_CAP_#250"]]);
  const named = await kvmsh("caps", "guest-memfd-flags");
  eq(named.code, 0, named.stderr);
  ok(named.stdout.startsWith("KVM_CAP_GUEST_MEMFD_FLAGS (244):"), named.stdout);
});

Deno.test("kvmsh caps bogus: a clear error on stderr, exit 2", async () => {
  const r = await kvmsh("caps", "bogus");
  eq(r.code, 2);
  eq(r.stdout, "");
  ok(r.stderr.includes("unknown capability 'bogus'"), r.stderr);
  ok(r.stderr.includes("GUEST_MEMFD_FLAGS"), "the error says what a capability looks like");
  ok(!r.stderr.includes("    at "), "no stack trace");
});

const NO_GMEM = "no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY";

/** KVM_CAP_GUEST_MEMFD on the system fd and a default VM, read in this process. */
function gmemCap(): { system: number; vm: number } {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  return { system: kvm.checkExtension(CAP.GUEST_MEMFD), vm: vm.checkExtension(CAP.GUEST_MEMFD) };
}

noGmemTest(
  "kvmsh caps, host without guest_memfd: the KVM_CAP_GUEST_MEMFD row, --json and `caps GUEST_MEMFD` say so",
  async () => {
    eq(gmemCap(), { system: 0, vm: 0 });
    const r = await kvmsh("caps");
    eq(r.code, 0, r.stderr);
    const row = r.stdout.split("\n").find((l) => l.startsWith("KVM_CAP_GUEST_MEMFD (234)"));
    ok(row, r.stdout);
    ok(
      /^KVM_CAP_GUEST_MEMFD \(234\) +sys 0 +vm 0 +\(no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY\)$/.test(
        row,
      ),
      row,
    );
    // The other key rows keep their own annotations: the flags cap is 0 (none), not the gmem note.
    const flags = r.stdout.split("\n").find((l) => l.startsWith("KVM_CAP_GUEST_MEMFD_FLAGS (244)"));
    ok(flags?.endsWith("(none)"), flags);

    const j = JSON.parse((await kvmsh("caps", "--json")).stdout);
    const cap = j.caps.find((c: { cap: number }) => c.cap === 234);
    eq(cap, { cap: 234, name: "KVM_CAP_GUEST_MEMFD", system: 0, vm: 0, decoded: `0 (${NO_GMEM})` });

    const one = await kvmsh("caps", "guest-memfd");
    eq(one.code, 0, one.stderr);
    eq(one.stdout.trim(), `KVM_CAP_GUEST_MEMFD (234): system 0, vm 0 (${NO_GMEM})`);
  },
);

noGmemTest(
  "kvmsh, host without guest_memfd: KVM_CREATE_GUEST_MEMFD does answer ENOTTY, as the caps row says",
  async () => {
    const r = await kvmsh("-c", "vm create; gmem create --size 4K");
    eq(r.code, 1, r.stdout + r.stderr);
    ok(/^error: KVM_CREATE_GUEST_MEMFD: ENOTTY /m.test(r.stderr), r.stderr);
  },
);

gmemTest(
  "kvmsh caps, host with guest_memfd: the KVM_CAP_GUEST_MEMFD row shows its value, no 'no guest_memfd' note",
  async () => {
    const want = gmemCap();
    ok(want.vm >= 1, `KVM_CAP_GUEST_MEMFD on a default VM: ${want.vm}`);
    const r = await kvmsh("caps");
    eq(r.code, 0, r.stderr);
    const row = r.stdout.split("\n").find((l) => l.startsWith("KVM_CAP_GUEST_MEMFD (234)"));
    ok(row, r.stdout);
    ok(new RegExp(`^KVM_CAP_GUEST_MEMFD \\(234\\) +sys ${want.system} +vm ${want.vm}$`).test(row), row);
    ok(!r.stdout.includes("no guest_memfd"), r.stdout);
    const j = JSON.parse((await kvmsh("caps", "--json")).stdout);
    const cap = j.caps.find((c: { cap: number }) => c.cap === 234);
    eq(cap, { cap: 234, name: "KVM_CAP_GUEST_MEMFD", system: want.system, vm: want.vm, decoded: String(want.vm) });
    const one = await kvmsh("caps", "guest-memfd");
    eq(one.stdout.trim(), `KVM_CAP_GUEST_MEMFD (234): system ${want.system}, vm ${want.vm}`);
  },
);
