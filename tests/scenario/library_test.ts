/**
 * The scenario library (scripts/*.ts) runs clean on this host: every expectation holds, skips
 * with its reason, or is a named host divergence (XFAIL, with the kernel's answer). Its KTAP is
 * read by a real TAP consumer (npm tap-parser) and must show, per script and per scenario, exactly
 * the numbers of ok / not ok / SKIP / XFAIL lines that the scripts' declared steps give on this
 * host — computed below from the scripts' structure and the host's answers (gmem flags, kernel
 * release, vendor module, memory attributes), not read back from our own report.
 *
 * tap-parser reads TAP 14, so the KTAP goes through ktapToTap14 (runner_process.ts, where each
 * difference it bridges is listed): version lines, two-space indentation, XFAIL → TODO, and the
 * plan KTAP lets a streamed scenario omit.
 */

import assert from "node:assert/strict";
import { gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";
import { ktapToTap14, leaves, parseTap, runRunner, type TapTree } from "./runner_process.ts";
import {
  CAP,
  GUEST_MEMFD_FLAGS,
  kernelRelease,
  MEMORY_ATTRIBUTES,
  openKvm,
  releaseAtLeast,
  vendorModules,
} from "../../mod.ts";

const LIBRARY = ["scripts/guest_memfd_abi.ts", "scripts/gmem_mmap_init_shared.ts"];
/**
 * Reproducers of a host's bug, run on their own (below): their XFAIL is keyed on a vendor module
 * whose builds may differ, so a build without the bug shows XPASS, which this test accepts and names.
 */
const HOST_BUGS = ["scripts/vcpu_memslot_restore.ts"];
/** scripts/*.ts that are not scenarios of the library (a template to copy). */
const NOT_LIBRARY = ["scripts/bug_template.ts"];

/** Counts of one scenario's result lines (a scenario skipped before its first line: `skipped`). */
interface Lines {
  pass: number;
  skip: number;
  xfail: number;
  skipped?: boolean;
}
const L = (pass: number, skip = 0, xfail = 0): Lines => ({ pass, skip, xfail });
const SKIPPED: Lines = { pass: 0, skip: 0, xfail: 0, skipped: true };
const sum = (...ls: Lines[]): Lines => ls.reduce((a, b) => L(a.pass + b.pass, a.skip + b.skip, a.xfail + b.xfail));
/** Every scenario ends with one line for the kernel log (it is quiet on a healthy host). */
const LOG = L(1);

const MMAP = GUEST_MEMFD_FLAGS.bits.mmap;
const INIT_SHARED = GUEST_MEMFD_FLAGS.bits["init-shared"];

/** What the host answers, read the way the scripts read it. */
function host() {
  using kvm = openKvm();
  const mask = kvm.vmTypes();
  const types = [...Array(32).keys()].filter((t) => (mask >> t) & 1);
  const gmem = kvm.checkExtension(CAP.GUEST_MEMFD) > 0;
  const flagsOf = (type: number) => {
    using vm = kvm.createVm(type);
    return vm.supportedGmemFlags();
  };
  using vm = kvm.createVm();
  return {
    types: types.map((t) => ({ type: t, flags: gmem ? flagsOf(t) : 0n })),
    gmem,
    defaultFlags: gmem ? vm.supportedGmemFlags() : 0n,
    gmemFlagsCap: kvm.checkExtension(CAP.GUEST_MEMFD_FLAGS),
    attrs: BigInt(vm.checkExtension(CAP.MEMORY_ATTRIBUTES)),
    kernel72: releaseAtLeast(kernelRelease(), "7.2"),
    pvm: vendorModules().some((m) => m.name === "kvm_pvm"),
  };
}
type Host = ReturnType<typeof host>;

function popcount(x: bigint): number {
  let n = 0;
  for (; x; x &= x - 1n) n++;
  return n;
}

/** scripts/guest_memfd_abi.ts, scenario by scenario. */
function guestMemfdAbi(h: Host): Lines[] {
  const out: Lines[] = [];
  for (const { flags: valid } of h.types) {
    // flag bits: one expectOk per bit the cap lists, one expectTrue for all the other bits.
    out.push(h.gmem ? sum(L(popcount(valid) + 1), LOG) : SKIPPED);
    for (const flags of [0n, MMAP, MMAP | INIT_SHARED]) {
      if (!h.gmem || (flags & valid) !== flags) {
        out.push(SKIPPED);
        continue;
      }
      const steps = [
        L(6), // create_multiple: two gmems, three sizes, inode numbers
        L(1), // invalid sizes 0x1..0xfff
        L(4), // file_read_write: read, write, pread, pwrite
      ];
      if (flags & MMAP) {
        if (flags & INIT_SHARED) {
          steps.push(L(6)); // mmap_supported
          steps.push(L(4)); // fault_overflow: EFAULT, two SIGBUS, bytes before EOF
          steps.push(L(0, 1)); // numa_allocation and mbind: skipped (single node)
        } else steps.push(L(3)); // fault_private: EFAULT, two SIGBUS
        steps.push(L(1)); // mmap_cow
      } else steps.push(L(2)); // mmap_not_supported
      steps.push(L(2)); // file_size
      steps.push(L(9)); // fallocate
      steps.push(L(10)); // invalid_punch_hole
      // invalid_binding: refused on 7.2+; older kernels bind the wrapped range (XFAIL) and the
      // script deletes that slot again (one more line).
      steps.push(h.kernel72 ? L(1) : L(1, 0, 1));
      out.push(sum(...steps, LOG));
    }
  }
  // guest side (default VM; needs MMAP|INIT_SHARED): the gmem-only slot is a named divergence on
  // kvm_pvm (its first expectation XFAILs and ends the xfail block, which is the whole step) and two lines elsewhere; the slot
  // through the gmem's own mapping: two lines.
  const both = (h.defaultFlags & (MMAP | INIT_SHARED)) === (MMAP | INIT_SHARED);
  out.push(h.gmemFlagsCap > 0 && both ? sum(h.pvm ? L(0, 0, 1) : L(2), L(2), LOG) : SKIPPED);
  return out;
}

/** scripts/gmem_mmap_init_shared.ts, scenario by scenario. */
function gmemMmapInitShared(h: Host): Lines[] {
  const cap = h.defaultFlags;
  const has = (f: bigint) => h.gmem && (cap & f) === f;
  const priv = (h.attrs & MEMORY_ATTRIBUTES.bits.private) !== 0n;
  return [
    // each bit alone; all together; a known flag the cap lacks (skipped when it lists them all)
    h.gmem && h.gmemFlagsCap > 0 ? sum(L(2), (GUEST_MEMFD_FLAGS.all & ~cap) === 0n ? L(0, 1) : L(1), LOG) : SKIPPED,
    // create, mmap; fault-safe load and store; load and store in a child
    has(MMAP) ? sum(L(2), L(2), L(2), LOG) : SKIPPED,
    // create; host fill; child read, child write, host reads it; guest round trip (2); punch (2)
    has(MMAP | INIT_SHARED) ? sum(L(1), L(1), L(3), L(2), L(2), LOG) : SKIPPED,
    // no attributes → ENOTTY (else skipped); private attribute on a gmem slot (2), skipped without
    // it or without guest_memfd; MEMORY_FAULT (1, anonymous memory), skipped without it. Runs on
    // every host: only its second step needs a guest_memfd.
    sum(h.attrs === 0n ? L(1) : L(0, 1), priv && h.gmem ? L(2) : L(0, 1), priv ? L(1) : L(0, 1), LOG),
  ];
}

/**
 * scripts/vcpu_memslot_restore.ts: one scenario, on any host (no guest_memfd). Run, delete the
 * memslot under CR3, run (3); memory back: the same vCPU to HLT — an XFAIL on kvm_pvm, which keeps
 * answering SHUTDOWN — then memory under CR3 and the same paging registers (3); a new vCPU (1);
 * real-mode run, then long mode again (2); a vCPU that did not run while the memory was gone (3).
 */
function vcpuMemslotRestore(h: Host): Lines[] {
  return [sum(L(3), h.pvm ? L(2, 0, 1) : L(3), L(1), L(2), L(3), LOG)];
}

/**
 * A file's leaf results as tap-parser counts them: each scenario's own lines, and each scenario
 * skipped up front (a `# SKIP` result with no subtest). `leaves()` alone sees only the subtests
 * once a file has one, so a file that mixes the two (a host without guest_memfd) needs both.
 * The library's scenarios that open a subtest never end in a scenario-level SKIP, so the file's
 * own SKIP results are exactly the ones skipped up front.
 */
function fileLeaves(file: TapTree): { count: number; fail: number; skip: number; todo: number } {
  if (file.children.length === 0) return leaves(file);
  const sub = leaves(file);
  return {
    count: sub.count + file.count - file.children.length,
    fail: sub.fail,
    skip: sub.skip + file.skip,
    todo: sub.todo,
  };
}

/** What tap-parser must count for a scenario or a file. */
function tapCounts(ls: Lines[]) {
  const leaf = ls.filter((l) => !l.skipped);
  const s = sum(L(0), ...leaf);
  const skippedScenarios = ls.length - leaf.length;
  return {
    scenarios: ls.length,
    // Leaves: a scenario's lines, or the scenario's own `# SKIP` line when it was skipped up front.
    count: s.pass + s.skip + s.xfail + skippedScenarios,
    fail: 0,
    skip: s.skip + skippedScenarios,
    todo: s.xfail,
  };
}

kvmTest(
  "scenario library: runs clean; tap-parser counts exactly the lines the scripts declare for this host",
  async () => {
    const h = host();
    const expected = [guestMemfdAbi(h), gmemMmapInitShared(h)];
    // kselftest: 0 when anything ran, 4 when every scenario skipped.
    const code = expected.flat().every((l) => l.skipped) ? 4 : 0;
    const json = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const r = await runRunner([`--json=${json}`, ...LIBRARY]);
      assert.equal(r.code, code, r.stdout + r.stderr);

      // Every non-pass line says why: SKIP and XFAIL carry a reason, XFAIL the kernel's answer.
      for (const l of r.stdout.split("\n")) {
        if (/# SKIP\b/.test(l)) assert.match(l, /# SKIP \S/, l);
        if (/# XFAIL\b/.test(l)) assert.match(l, /# XFAIL .+; kernel said: .+/, l);
        assert.doesNotMatch(l, /^\s*not ok/, l);
      }

      const tree = await parseTap(ktapToTap14(r.stdout));
      assert.equal(tree.ok, true, "tap-parser: the run is ok");
      assert.equal(tree.count, LIBRARY.length, "one top-level result per file");
      assert.equal(tree.fail, 0);
      for (const [i, file] of tree.children.entries()) {
        const want = tapCounts(expected[i]);
        const got = fileLeaves(file);
        assert.equal(file.count, want.scenarios, `${LIBRARY[i]}: scenarios`);
        assert.deepEqual(
          { count: got.count, fail: got.fail, skip: got.skip, todo: got.todo },
          { count: want.count, fail: want.fail, skip: want.skip, todo: want.todo },
          `${LIBRARY[i]}: leaf results (count, not ok, SKIP, XFAIL as TODO)`,
        );
        // ... and scenario by scenario.
        const perScenario = file.children.map((c: TapTree) => ({ count: c.count, skip: c.skip, todo: c.todo }));
        const wantPer = expected[i].filter((l) => !l.skipped).map((l) => ({
          count: l.pass + l.skip + l.xfail,
          skip: l.skip,
          todo: l.xfail,
        }));
        assert.deepEqual(perScenario, wantPer, `${LIBRARY[i]}: each scenario's lines`);
      }

      // The runner's own JSON report agrees with the consumer.
      const report = JSON.parse(await Deno.readTextFile(json));
      const all = tapCounts(expected.flat());
      assert.equal(report.exitCode, code);
      assert.equal(report.totals.fail + report.totals.error + report.totals.xpass, 0);
      assert.equal(report.totals.xfail, all.todo);
      assert.equal(report.totals.skip, all.skip);
    } finally {
      await Deno.remove(json);
    }
  },
);

/** The scenarios of the library, as this host reads them (see host()). */
const scenarioCount = (h: Host) => guestMemfdAbi(h).length + gmemMmapInitShared(h).length;

noGmemTest(
  "scenario library, host without guest_memfd: each gmem scenario skips up front saying KVM_CAP_GUEST_MEMFD is 0; the memory-attribute one runs; header and --json host say 'no guest_memfd'",
  async () => {
    const h = host();
    const json = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const r = await runRunner([`--json=${json}`, ...LIBRARY]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(
        r.stdout,
        /^# default VM caps: GUEST_MEMFD=0 \(no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY\), GUEST_MEMFD_FLAGS=0 \(none\), /m,
      );
      // Scenario results (two-space indent): each one that needs a guest_memfd is skipped before
      // its first line, and its reason starts with the cause.
      const results = r.stdout.split("\n").filter((l) => /^ {2}(not )?ok \d+ /.test(l));
      assert.equal(results.length, scenarioCount(h), r.stdout);
      const ran = results.filter((l) => !/ # SKIP /.test(l));
      assert.deepEqual(ran, ["  ok 4 memory attributes follow KVM_CAP_MEMORY_ATTRIBUTES"], r.stdout);
      for (const l of results.filter((l) => / # SKIP /.test(l))) {
        assert.match(l, /^ {2}ok \d+ .+ # SKIP KVM_CAP_GUEST_MEMFD is 0\b/, l);
      }
      assert.match(r.stdout, /^ok 1 scripts\/guest_memfd_abi\.ts # SKIP KVM_CAP_GUEST_MEMFD is 0\b/m);
      // The ones that ran need no guest_memfd: KVM_SET_MEMORY_ATTRIBUTES is checked; nothing
      // tried to create a guest_memfd (the kernel would have answered ENOTTY).
      assert.doesNotMatch(r.stdout, /KVM_CREATE_GUEST_MEMFD: ENOTTY/);
      const report = JSON.parse(await Deno.readTextFile(json));
      const gmem = report.host.caps.find((c: { cap: number }) => c.cap === CAP.GUEST_MEMFD);
      assert.deepEqual(
        { system: gmem.system, vm: gmem.vm, decoded: gmem.decoded },
        { system: 0, vm: 0, decoded: "0 (no guest_memfd: KVM_CREATE_GUEST_MEMFD will answer ENOTTY)" },
      );
      // The guest_memfd scenarios alone: all skipped → 4, 125 for git bisect run.
      const abi = await runRunner(["scripts/guest_memfd_abi.ts"]);
      assert.equal(abi.code, 4, abi.stdout + abi.stderr);
      assert.equal((await runRunner(["--bisect", "scripts/guest_memfd_abi.ts"])).code, 125);
    } finally {
      await Deno.remove(json);
    }
  },
);

gmemTest(
  "scenario library, host with guest_memfd: header and --json host give KVM_CAP_GUEST_MEMFD ≥ 1 and the flags, no 'no guest_memfd' note",
  async () => {
    const h = host();
    const json = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const r = await runRunner([`--json=${json}`, "tests/scenario/fixtures/pass.ts"]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const line = r.stdout.split("\n").find((l) => l.startsWith("# default VM caps: ")) ?? "";
      const m = line.match(/^# default VM caps: GUEST_MEMFD=(\d+), GUEST_MEMFD_FLAGS=(\d+) \(([^)]*)\), /);
      assert.ok(m, `the header names the guest_memfd caps:\n${r.stdout}`);
      assert.ok(Number(m[1]) >= 1, line);
      assert.equal(BigInt(m[2]), h.defaultFlags, line);
      assert.equal(m[3], GUEST_MEMFD_FLAGS.format(h.defaultFlags) || "none", line);
      assert.doesNotMatch(r.stdout, /no guest_memfd/);
      const report = JSON.parse(await Deno.readTextFile(json));
      const gmem = report.host.caps.find((c: { cap: number }) => c.cap === CAP.GUEST_MEMFD);
      assert.ok(gmem.vm >= 1 && gmem.decoded === String(gmem.vm), JSON.stringify(gmem));
    } finally {
      await Deno.remove(json);
    }
  },
);

kvmTest(
  "host bug reproducer (vcpu_memslot_restore.ts): on kvm_pvm an XFAIL (this build keeps the vCPU in SHUTDOWN) or an XPASS (it does not), said which; elsewhere all pass",
  async () => {
    const h = host();
    const json = await Deno.makeTempFile({ suffix: ".json" });
    try {
      const r = await runRunner([`--json=${json}`, ...HOST_BUGS]);
      for (const l of r.stdout.split("\n")) assert.doesNotMatch(l, /^\s*not ok/, r.stdout);
      const report = JSON.parse(await Deno.readTextFile(json));
      const t = report.totals;
      const want = tapCounts(vcpuMemslotRestore(h));
      assert.equal(t.fail + t.error + t.skip, 0, r.stdout);
      assert.equal(t.pass + t.xfail + t.xpass, want.count, r.stdout);
      const line = r.stdout.split("\n").find((l) => / # X(FAIL|PASS)\b/.test(l));
      if (!h.pvm) {
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.equal(t.xfail + t.xpass, 0, r.stdout);
      } else if (t.xfail === 1) {
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(
          line ?? "",
          /^ {2}ok 4 the same vCPU runs the guest to HLT # XFAIL kvm_pvm .+; kernel said: got SHUTDOWN$/,
        );
        console.log("# this kvm_pvm build keeps the vCPU in SHUTDOWN after its memory is back (XFAIL)");
      } else {
        // A kvm_pvm build without the bug: the reproducer says so (XPASS, exit 1 as kselftest).
        assert.equal(t.xpass, 1, r.stdout);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(line ?? "", /^ {2}ok 4 the same vCPU runs the guest to HLT # XPASS\b/);
        console.log("# this kvm_pvm build runs the vCPU again once its memory is back (XPASS: the XFAIL can go)");
      }
    } finally {
      await Deno.remove(json);
    }
  },
);

Deno.test("scenario library: LIBRARY and HOST_BUGS list every scenario file in scripts/ (a new one is counted, not left out)", () => {
  const files: string[] = [];
  for (const e of Deno.readDirSync(new URL("../../scripts/", import.meta.url))) {
    if (e.isFile && e.name.endsWith(".ts")) files.push(`scripts/${e.name}`);
  }
  assert.deepEqual(files.sort(), [...LIBRARY, ...HOST_BUGS, ...NOT_LIBRARY].sort());
});
