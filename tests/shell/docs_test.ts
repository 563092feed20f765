/**
 * What the documentation promises, run: every command's `example` (help <command>) after the
 * set-up it needs, and `--json` keys that similar commands share (vm create / vm list, write / x/,
 * attr set / attr show, help / help <command>). The guest_memfd examples run where KVM has
 * guest_memfd; where it has none, what `gmem list` says instead is checked.
 * @module
 */

import assert from "node:assert/strict";
import { gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";
import { kvmsh, type Run, runC } from "./helpers.ts";
import { COMMANDS } from "../../shell/table.ts";
import { attrImpl } from "../../shell/commands/attr.ts";
import type { Args } from "../../shell/commands/types.ts";
import type { Session } from "../../shell/session.ts";
import type { AttributeRecord } from "../../core.ts";

const HELLO = "scripts/guests/bin/hello16.bin --mode real";
const SLOT = "vm create; slot set 1 --gpa 4G --size 2M --anon";

/** An example's set-up, and what its output must show (the summary's promise). */
interface Case {
  setup: string;
  /** Checks the run (status, output). */
  check(r: Run): void;
  /** Runs in a fresh temporary directory (files the example names). */
  dir?: (dir: string) => Promise<void>;
}

/** The example writes a file (record start): it runs in a temporary directory, not the repository. */
const noFiles = async () => {};

const ok = (...res: RegExp[]) => (r: Run) => {
  assert.equal(r.code, 0, `status ${r.code}; stderr: ${r.stderr}`);
  for (const re of res) assert.match(r.stdout, re);
};

/** Examples that need no guest_memfd: they work on every host with KVM. */
const ANY_HOST: Record<string, Case> = {
  "caps": { setup: "", check: ok(/KVM_CAP_GUEST_MEMFD_FLAGS \(244\)/, /KVM_CAP_MEMORY_ATTRIBUTES \(233\)/) },
  "vm create": { setup: "", check: ok(/^vm0: fd \d+, type default \(current\)$/m) },
  "vm list": { setup: "vm create", check: ok(/^\*\s+vm0\s+\d+\s+default/m) },
  "vm close": { setup: "vm create", check: ok(/^vm0 closed$/m) },
  "use": { setup: "vm create; vm create", check: ok(/^current VM: vm1$/m) },
  "attr set": {
    setup: "vm create",
    // Private memory needs a VM type with memory attributes: a default VM has none on upstream
    // KVM either, so the example shows the kernel's refusal (and the warning) there.
    check: (r) => {
      if (r.code === 0) return assert.match(r.stdout, /^vm0: 0x100000000\+0x200000 \(2 MiB\) is private$/m);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /warning: KVM_CAP_MEMORY_ATTRIBUTES=0 on vm0/);
      assert.match(r.stderr, /error: KVM_SET_MEMORY_ATTRIBUTES: E[A-Z]+ .*gpa=0x100000000 size=0x200000/);
    },
  },
  "attr show": { setup: "vm create", check: ok(/^vm0: KVM_CAP_MEMORY_ATTRIBUTES = \d+/m) },
  "slot del": { setup: SLOT, check: ok(/^slot 1 deleted from vm0$/m) },
  "slot list": { setup: SLOT, check: ok(/^1\s+0x100000000\s+0x200000 \(2 MiB\)\s+none\s+anon 0x/m) },
  "vcpu create": { setup: "vm create", check: ok(/^vcpu0: id 0, fd \d+/m) },
  "regs": { setup: "vm create; vcpu create", check: ok(/rax 0x0000000000000001/, /rip 0x0000000000001000/) },
  "sregs": { setup: "vm create; vcpu create", check: ok(/^vcpu0: cr0 0x/m, /^ {2}cs {2}sel 0x/m) },
  "run": { setup: "vm create", check: ok(/^console: Hello, world!$/m, /^stop: HLT;/m) },
  "step": { setup: `vm create; run ${HELLO}`, check: ok(/^vcpu0: step 3: rip 0x/m, /^stop: DEBUG;/m) },
  "continue": {
    setup: `vm create; run ${HELLO}`,
    // Past hello16's hlt the guest runs on until a stop: its timeout here (status 1), or another exit.
    check: (r) => {
      assert.ok(r.code === 0 || r.code === 1, `status ${r.code}; stderr: ${r.stderr}`);
      assert.equal(r.stdout.match(/^stop: /gm)?.length, 2, r.stdout);
    },
  },
  "record start": {
    setup: "",
    dir: noFiles,
    check: ok(/^recording to repro\.ts \(replay with \.\/kvmsh scenario repro\.ts\)$/m),
  },
  "record stop": { setup: "record start repro.ts", dir: noFiles, check: ok(/^recorded 0 commands to repro\.ts$/m) },
  "help": { setup: "", check: ok(/^gmem create --size S/m, /example: gmem create --size 2M/) },
  "history": { setup: "", check: ok(/history 20/) },
  "source": {
    setup: "",
    dir: (d) => Deno.writeTextFile(`${d}/walk.kvmsh`, "echo walked\n"),
    check: ok(/^walked$/m),
  },
  "echo": { setup: "", check: ok(/^step 2$/m) },
  "reset": { setup: "vm create", check: ok(/^every VM closed$/m) },
  "exit": { setup: "vm create", check: ok() },
};

/** The set-up of the examples on guest_memfd: gmem0 and gmem1, both mmap,init-shared. */
const GMEM =
  "vm create; gmem create --size 2M --flags mmap,init-shared; gmem create --size 2M --flags mmap,init-shared";
const GMEM_EXAMPLES = [
  "gmem create",
  "gmem list",
  "gmem stat",
  "gmem mmap",
  "gmem punch",
  "gmem alloc",
  "gmem read",
  "gmem write",
  "gmem pread",
  "gmem pwrite",
  "gmem truncate",
  "gmem close",
  "slot set",
  "x",
  "write",
  "touch",
];

const visible = COMMANDS.filter((c) => !c.hidden);

async function runExample(c: { example: string }, k: Case): Promise<Run> {
  const line = k.setup ? `${k.setup}; ${c.example}` : c.example;
  if (!k.dir) return await kvmsh(["-c", line]);
  const dir = await Deno.makeTempDir();
  try {
    await k.dir(dir);
    // The guest path stays the repository's: only examples that name no guest get a directory.
    return await kvmsh(["-c", line], undefined, { CWD: dir });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("help examples: every visible command has its example checked here", () => {
  const missing = visible.map((c) => c.name).filter((n) => !(n in ANY_HOST) && !GMEM_EXAMPLES.includes(n));
  assert.deepEqual(missing, [], "a command without a checked example");
});

kvmTest("help examples: each example that needs no guest_memfd does what its summary says", async () => {
  for (const c of visible.filter((c) => c.name in ANY_HOST)) {
    const r = await runExample(c, ANY_HOST[c.name]);
    try {
      ANY_HOST[c.name].check(r);
    } catch (e) {
      throw new Error(`example '${c.example}' (${c.name}): ${(e as Error).message}\n${r.stdout}\n${r.stderr}`);
    }
  }
});

gmemTest("help examples: the guest_memfd examples parse and name objects that exist", async () => {
  for (const c of visible.filter((c) => GMEM_EXAMPLES.includes(c.name))) {
    const r = await kvmsh(["-c", `${GMEM}; ${c.example}`]);
    // 0, or 1 where the summary says the kernel refuses it (gmem read …): never a usage error.
    assert.ok(r.code === 0 || r.code === 1, `example '${c.example}': status ${r.code}; ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|no guest_memfd 'gmem|no object/, `example '${c.example}'`);
  }
}, "mmap,init-shared");

kvmTest("--json: vm create's result is vm list's row for it (current included)", async () => {
  const r = await kvmsh(["--json", "-c", "vm create; vm list"]);
  const [created, list] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  const row = list.result.vms[0];
  for (const [k, v] of Object.entries(created.result)) assert.deepEqual(v, row[k], `key ${k}`);
  assert.equal(created.result.current, true);
});

kvmTest("--json: write names its address as x/ does (as typed, and the GPA it names)", async () => {
  const r = await kvmsh([
    "--json",
    "-c",
    `${SLOT}; write 4G str:hi; x/2xb 4G; write 0x100000010 0xaa; x/1xb 0x100000010`,
  ]);
  const o = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(o.map((x) => x.ok), [true, true, true, true, true, true]);
  for (const [w, x] of [[o[2], o[3]], [o[4], o[5]]]) {
    assert.equal(w.result.address, x.result.address);
    assert.equal(w.result.base, x.result.base);
  }
  assert.equal(o[2].result.base, "0x100000000");
  assert.equal(o[2].result.length, "0x2");
  assert.equal(o[4].result.base, "0x100000010");
});

Deno.test("--json: help gives each command's flags, as help <command> prints them", async () => {
  const r = await kvmsh(["--json", "-c", "help; help gmem create"]);
  const [all, one] = r.stdout.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(all.result.commands.length, visible.length);
  for (const c of all.result.commands as { name: string; flags: { name: string; help: string }[] }[]) {
    const spec = visible.find((s) => s.name === c.name)!;
    assert.deepEqual(c.flags.map((f) => f.name), (spec.flags ?? []).map((f) => f.name), c.name);
    assert.deepEqual(c.flags.map((f) => f.help), (spec.flags ?? []).map((f) => f.help), c.name);
  }
  assert.deepEqual(one.result.commands[0].flags, [
    { name: "size", value: "S", required: true, help: "size in bytes (4096, 0x1000, 4K, 2M, 1G)" },
    { name: "flags", value: "FLAGS", help: "GUEST_MEMFD_FLAG_* names or bits" },
  ]);
});

Deno.test("--json: attr set's result has the keys of attr show's log entry for it", async () => {
  // A VM whose kernel takes the attributes (sw-protected where it exists): faked, as this host has none.
  const log: AttributeRecord[] = [];
  const obj = {
    typeName: "sw-protected",
    checkExtension: () => 8,
    setPrivate: (gpa: bigint, size: bigint) => log.push({ gpa, size, attributes: 8n, result: "ok" }),
    setShared: (gpa: bigint, size: bigint) => log.push({ gpa, size, attributes: 0n, result: "ok" }),
    attributeLog: log,
  };
  const ctx = { vm: () => ({ name: "vm0", obj }), pendingWarnings: [] } as unknown as Session;
  const args = (command: string, pos: string[]): Args => ({ command, pos, flags: {}, json: true, words: [] });
  const set = [
    await attrImpl["attr set"].run(ctx, args("attr set", ["private", "4G", "2M"])),
    await attrImpl["attr set"].run(ctx, args("attr set", ["shared", "0", "4K"])),
  ];
  const show = await attrImpl["attr show"].run(ctx, args("attr show", []));
  const entries = show.data!.log as Record<string, unknown>[];
  assert.deepEqual(set.map((s) => s.data), entries.map((e) => ({ vm: "vm0", ...e })));
  assert.deepEqual(set[0].data, {
    vm: "vm0",
    gpa: 4n << 30n,
    size: 2n << 20n,
    attributes: "private",
    attributeBits: 8n,
    result: "ok",
  });
  assert.equal(set[1].data!.attributes, "shared");
});

noGmemTest("gmem list, kernel without guest_memfd: the empty list says gmem create will answer ENOTTY", async () => {
  const r = await kvmsh(["-c", "gmem list; vm create; gmem list"]);
  const line = "no guest_memfds: this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0), so gmem create answers ENOTTY";
  assert.deepEqual(
    r.stdout.trim().split("\n"),
    [line, "vm0: fd 22, type default (current)", line].map((l) => l.replace("fd 22", r.stdout.match(/fd \d+/)![0])),
  );
  assert.equal(r.code, 0);
});

gmemTest("gmem list, kernel with guest_memfd: the empty list shows how to make one", async () => {
  const r = await kvmsh(["-c", "gmem list"]);
  assert.equal(r.stdout, "no guest_memfds (gmem create --size 2M --flags mmap,init-shared)\n");
  assert.equal(r.code, 0);
});

kvmTest(
  "help scenario: says scenarios run from kvmsh's command line (it said 'no command'); usage names -k",
  async () => {
    const r = await runC(["help scenario"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /^error: 'scenario' is not a shell command: run `\.\/kvmsh scenario <file\.ts>…`/m);
    const u = await kvmsh(["--help"]);
    assert.match(u.stdout + u.stderr, /\[--keep-going\|-k\]/);
  },
);
