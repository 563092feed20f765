/**
 * Bad input through the real shell: unknown commands, missing or malformed arguments, bad flag
 * names and closed objects each give one clear line and send nothing; then 10,000 lines from a
 * seeded fuzzer through one shell process: it never crashes, and its open fds (every one, read
 * from /proc/<pid>/fd through ffi/procfs) are the same before and after.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_MMAP_SKIP_REASON, GMEM_SKIP_REASON, gmemTest, kvmTest, noGmemTest } from "../kvm_env.ts";
import { blockingSockets, fdDiff, stableFdTargets } from "./fd_census.ts";
import { lex } from "../../shell/lexer.ts";
import { KVMSH, ROOT, runC } from "./helpers.ts";

/**
 * Lines, the one error line, and (third) the guest_memfd flags a case needs: a case that makes a
 * guest_memfd is skipped, with the reason, where KVM cannot make one.
 */
const BAD: [string[], RegExp, string?][] = [
  [["frobnicate"], /error: unknown command 'frobnicate' \(help lists the commands\)/],
  [["gmem"], /error: gmem needs a sub-command: create, list, stat, mmap/],
  [["gmem frob"], /error: unknown sub-command 'gmem frob'/],
  [["vm create", "gmem create"], /error: missing --size \(usage: gmem create --size S/],
  [["vm create", "gmem create --size"], /error: missing value for --size/],
  [["vm create", "gmem create --size 2Q"], /error: --size: not a number: '2Q'/],
  [
    ["vm create", "gmem create --size 2M --flags mmap,bogus"],
    /error: unknown gmem flag 'bogus' \(known: mmap, init-shared\)/,
  ],
  [
    ["vm create", "gmem create --size 2M --colour red"],
    /error: unknown flag '--colour' for 'gmem create' \(known: --size, --flags, --json\)/,
  ],
  [["vm create", "gmem stat"], /error: missing <gmem> \(usage: gmem stat <gmem>\)/],
  [["vm create", "gmem stat gmem7"], /error: no guest_memfd 'gmem7' \(none open\)/],
  [["vm create", "gmem create --size 4K", "gmem close gmem0", "gmem stat gmem0"], /error: gmem0 is closed/, ""],
  [["vm create", "vm close vm0", "gmem create --size 4K"], /error: no current VM/],
  [["vm create", "gmem create --size 4K", "vm close vm0", "x/4xb gmem0:0"], /error: gmem0 is closed/, ""],
  // Closed objects that are no guest_memfd (every host).
  [["vm create", "vcpu create", "vm close vm0", "regs vcpu0"], /error: vcpu0 is closed/],
  [["vm create", "vm close vm0", "use vm0"], /error: vm0 is closed/],
  [["gmem create --size 4K"], /error: no current VM: `vm create` first/],
  [["vm list extra"], /error: too many arguments for 'vm list': 'extra'/],
  [["vm create", "slot set 1 --gpa 4G --size 2M --flags readonly,bogus"], /error: unknown memslot flag 'bogus'/],
  [
    ["vm create", "slot set 1 --gpa 4G --size 2M --userspace maybe"],
    /error: bad --userspace 'maybe' \(one of none, anon, gmem\)/,
  ],
  [["vm create", "attr set secret 0 4K"], /error: bad attribute 'secret' \(one of private, shared\)/],
  [["vm create", "x/4q 0"], /error: bad x\/ format '4q'/],
  [["vm create", "write 0 fill:0x1ff"], /error: fill value: 0x1ff is not a byte/],
  [["echo 'unterminated"], /error: unterminated ' quote/],
  [["vm create --type nonsense"], /error: unknown VM type 'nonsense'/],
  [["caps NOT_A_CAP"], /error: unknown capability 'NOT_A_CAP'/],
];

for (const [lines, re, gmem] of BAD) {
  const test = async () => {
    const r = await runC(lines);
    assert.equal(r.code, 2, "a usage error");
    const errLines = r.stderr.trim().split("\n");
    assert.equal(errLines.length, 1, r.stderr);
    assert.match(errLines[0], re);
  };
  const name = `shell bad input: ${lines[lines.length - 1]}`;
  if (gmem === undefined) kvmTest(name, test);
  else gmemTest(name, test, gmem);
}

gmemTest("shell bad input sends nothing: the kernel never saw the malformed gmem create", async () => {
  const r = await runC([
    "vm create",
    "gmem create --size 2M --flags mmap,bogus",
    "gmem create --size 2M --flags mmap,init-shared",
  ], ["--keep-going"]);
  // The refused line made no guest_memfd: the next one is gmem0.
  assert.match(r.stdout, /^gmem0: fd \d+, size 0x200000/m);
  assert.equal(r.code, 2, "--keep-going keeps the usage error's status");
}, "mmap,init-shared");

kvmTest("shell bad input sends nothing: the kernel never saw the malformed vcpu create or slot set", async () => {
  const r = await runC([
    "vm create",
    "vcpu create --id 0q",
    "slot set 1 --gpa 0 --size 2M --anon --flags readonly,bogus",
    // Had the refused lines reached KVM, id 0 would be taken (EEXIST) and slot 1 could not change size (EINVAL).
    "vcpu create --id 0",
    "slot set 1 --gpa 0x1000000 --size 4K --anon",
  ], ["--keep-going"]);
  assert.deepEqual(r.stderr.trim().split("\n"), [
    "error: --id: not a number: '0q' (use 4096, 0x1000, 4K, 2M, 1G)",
    "error: unknown memslot flag 'bogus' (known: log-dirty, readonly, guest-memfd)",
  ]);
  assert.match(r.stdout, /^vcpu0: id 0, fd \d+/m);
  assert.match(r.stdout, /^slot 1 on vm0: gpa 0x1000000 size 0x1000 \(4 KiB\)/m);
  assert.equal(r.code, 2, "--keep-going keeps the usage error's status");
});

noGmemTest(
  "shell bad input sends nothing: without guest_memfd, only the well-formed gmem create reaches KVM",
  async () => {
    const r = await runC([
      "vm create",
      "gmem create --size 2M --flags mmap,bogus",
      "gmem create --size 2M --flags mmap,init-shared",
    ], ["--keep-going"]);
    // The refused line has its usage error only; the warning and the ENOTTY (what sending gets here) come once, for the second.
    assert.deepEqual(r.stderr.trim().split("\n"), [
      "error: unknown gmem flag 'bogus' (known: mmap, init-shared)",
      "warning: KVM_CAP_GUEST_MEMFD=0 on vm0 (default VM): this kernel has no guest_memfd; sending anyway",
      "error: KVM_CREATE_GUEST_MEMFD: ENOTTY (Inappropriate ioctl for device) [size=0x200000 flags=mmap|init-shared] " +
      "— this kernel has no guest_memfd (KVM_CAP_GUEST_MEMFD=0)",
    ]);
    assert.doesNotMatch(r.stdout, /^gmem\d+: /m);
    assert.equal(r.code, 1, "--keep-going: the last failure's status (the kernel's refusal)");
  },
);

kvmTest("shell: one-shot usage errors exit 2, kernel errors 1, success 0", async () => {
  const { kvmsh } = await import("./helpers.ts");
  assert.equal((await kvmsh(["frob"])).code, 2);
  assert.equal((await kvmsh(["caps", "NOPE"])).code, 2);
  assert.equal((await kvmsh(["vm", "create", "--type", "tdx"])).code, 1);
  assert.equal((await kvmsh(["caps", "GUEST_MEMFD"])).code, 0);
  const c = await kvmsh(["-c", "frob; echo not reached"]);
  assert.equal(c.stdout, "");
  assert.equal(c.code, 2, "-c frob: the same status as kvmsh frob");
  const kg = await kvmsh(["--keep-going", "-c", "frob; echo reached"]);
  assert.equal(kg.stdout, "reached\n");
  assert.equal(kg.code, 2);
});

// ---- the fuzzer ----

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SIZES = ["0", "1", "4K", "0x1000", "8K", "2M", "0x1001", "abc", "-1", "0xffffffffffffffff", "1x", "", "4096"];
const GPAS = ["0", "4G", "0x100000000", "1M", "0x1001", "bad", "0xfffffffffffff000"];
const FLAGS = ["mmap", "init-shared", "mmap,init-shared", "0x4", "bogus", "mmap,", "", "none"];
const SLOTFLAGS = ["readonly", "log-dirty", "readonly,log-dirty", "guest-memfd", "x"];
const DATA = ["fill:0xaa", "fill:0x1ff", "fill:1:8K", "fill:", "0xaa 0xbb", "hex:abc", "hex:00ff", "str:hi", "300", ""];
const FMTS = ["x/16xb", "x/4gx", "x/0x", "x/99999999xb", "x/8c", "x/zz", "x", "x/2dh", "x/3uw"];
/** Commands the random-text template must not hit by chance: they leave, wait or spin. */
const DENY = new Set(["exit", "step", "continue", "run", "source", "record", "debug"]);

/** Files the fuzzer's `source` and `record` lines use (made by the test). */
interface FuzzFiles {
  dir: string;
  scripts: string[];
}

/**
 * Names the shell printed as it made objects (`vm3: fd …`, `gmem7: …`, `map2: …`, `vcpu4: …`):
 * names only count up, so a fixed pool would soon name nothing that exists.
 */
interface LiveNames {
  vm: string[];
  gmem: string[];
  map: string[];
  vcpu: string[];
}

/** Adds the object names created in `text` (shell output) to `live`. */
function learnNames(text: string, live: LiveNames): void {
  for (const m of text.matchAll(/^(vm|gmem|map|vcpu)(\d+): /gm)) {
    const name = `${m[1]}${m[2]}`;
    const pool = live[m[1] as keyof LiveNames];
    if (!pool.includes(name)) pool.push(name);
  }
}

function fuzzLine(r: () => number, files: FuzzFiles, live?: LiveNames): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)];
  const n = (k: number) => Math.floor(r() * k);
  /** Mostly a recent real name (when there is one), else one of the fixed, mostly dead ones. */
  const real = (kind: keyof LiveNames, fixed: string[]) => {
    const pool = live?.[kind] ?? [];
    return pool.length && r() < 0.7 ? pick(pool.slice(-8)) : pick(fixed);
  };
  const V = () => real("vm", ["vm0", "vm1", "vm2", "vm9", "gmem0", ""]);
  const G = () => real("gmem", ["gmem0", "gmem1", "gmem2", "gmem3", "gmem42", "vm0", "map0"]);
  const C = () => real("vcpu", ["vcpu0", "vcpu1", "vcpu2", "vcpu9", "gmem0", ""]);
  const M = () => real("map", ["map0", "map1", "map2"]);
  const A = () => pick([`${G()}:${pick(SIZES)}`, pick(GPAS), `${M()}:${pick(SIZES)}`, "gmem0:"]);
  const templates: (() => string)[] = [
    () => "vm create",
    () => `vm create --type ${pick(["default", "1", "sev", "x", "0x0", "99"])}`,
    () => `vm close ${V()}`,
    () => `use ${V()}`,
    () => `gmem create --size ${pick(SIZES)}${r() < 0.7 ? ` --flags ${pick(FLAGS)}` : ""}`,
    () => `gmem stat ${G()}`,
    () => `gmem list`,
    () =>
      `gmem mmap ${G()}${r() < 0.3 ? " --private" : ""}${r() < 0.3 ? ` --offset ${pick(SIZES)}` : ""}${
        r() < 0.3 ? ` --length ${pick(SIZES)}` : ""
      }`,
    () => `gmem punch ${G()} ${pick(SIZES)} ${pick(SIZES)}`,
    () => `gmem alloc ${G()} ${pick(SIZES)} ${pick(SIZES)}${r() < 0.2 ? " --no-keep-size" : ""}`,
    () => `gmem ${pick(["read", "write", "pread", "pwrite", "truncate"])} ${G()} ${pick(SIZES)} ${pick(DATA)}`,
    () => `gmem close ${G()}`,
    () =>
      `slot set ${pick(["0", "1", "2", "x", "70000"])} --gpa ${pick(GPAS)} --size ${pick(SIZES)}${
        r() < 0.5 ? ` --gmem ${G()}` : ""
      }${r() < 0.3 ? ` --userspace ${pick(["none", "anon", "gmem", "q"])}` : ""}${
        r() < 0.2 ? ` --flags ${pick(SLOTFLAGS)}` : ""
      }${r() < 0.2 ? ` --offset ${pick(SIZES)}` : ""}`,
    () => `slot del ${pick(["0", "1", "2", "zz", "77"])}`,
    () => "slot list",
    () => `attr set ${pick(["private", "shared", "x"])} ${pick(GPAS)} ${pick(SIZES)}`,
    () => "attr show",
    () => `${pick(FMTS)} ${A()}`,
    () => `write ${A()} ${pick(DATA)}`,
    () => "vm list",
    () => `vcpu create${r() < 0.3 ? ` --id ${pick(["0", "1", "99999", "x", "-1"])}` : ""}`,
    () => `regs ${C()}${r() < 0.3 ? ` set ${pick(["rax=1", "rip=0x1000", "rzz=1", "rax=", "rflags=2"])}` : ""}`,
    () => `sregs ${C()}`,
    () => `touch ${pick([`${G()}:${pick(SIZES)}`, "0", "gmem0:0"])}${r() < 0.3 ? " --write --value 0x42" : ""}`,
    () => `record start ${files.dir}/rec${n(3)}.ts${r() < 0.5 ? " --force" : ""}`,
    () => "record stop",
    () => `source ${pick([...files.scripts, `${files.dir}/missing.kvmsh`, files.dir])}`,
    () => `help ${pick(["", "gmem", "x", "nope", "slot set"])}`,
    () => `caps ${pick(["GUEST_MEMFD", "244", "NOPE", ""])}`,
    () => `${pick(["--json", ""])} ${pick(["gmem", "vm", "slot"])} ${pick(["", "frob", "list --bogus"])}`,
    () => {
      for (;;) {
        const line = Array.from(
          { length: 1 + n(6) },
          () => String.fromCharCode(...Array.from({ length: 1 + n(8) }, () => 32 + n(95))),
        ).join(" ");
        if (!lex(line).commands.some((c) => c.length && DENY.has(c[0].text))) return line;
      }
    },
    () => `${pick(["echo", "history 3", "'", '"', ";;", "#c", "\\"])} ${pick(SIZES)}`,
  ];
  /** Rare: a real guest run (as assembles it once; HLT ends it at once, the timeout is a safety net). */
  const rare = () => `run --asm hlt --timeout 1s${r() < 0.3 ? ` --vcpu ${C() || "vcpu0"}` : ""}`;
  const one = () => (r() < 0.01 ? rare() : pick(templates)());
  return r() < 0.1 ? `${one()}; ${one()}` : one();
}

/** Reads a child's output as it comes, and waits for a marker. */
class Collector {
  text = "";
  done: Promise<void>;
  constructor(stream: ReadableStream<Uint8Array>) {
    const dec = new TextDecoder();
    this.done = (async () => {
      for await (const chunk of stream) this.text += dec.decode(chunk, { stream: true });
    })();
  }
  async waitFor(marker: string, from = 0, timeoutMs = 120_000): Promise<number> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.text.indexOf(marker, from);
      if (i >= 0) return i + marker.length;
      if (Date.now() > end) throw new Error(`timeout waiting for ${marker}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  }
}

/** A shell on piped stdin, fed and read line by line. */
function spawnShell(env: Record<string, string> = {}) {
  const child = new Deno.Command(KVMSH, {
    args: ["--keep-going"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", KVMSH_HISTORY: "/dev/null", ...env },
  }).spawn();
  const out = new Collector(child.stdout);
  const err = new Collector(child.stderr);
  const w = child.stdin.getWriter();
  const enc = new TextEncoder();
  let at = 0;
  const started = Date.now();
  return {
    child,
    /** Waits until the runtime's own late socketpair exists (see RUNTIME_SETTLE_MS). */
    async settled(): Promise<void> {
      while (blockingSockets(child.pid) < 2 && Date.now() - started < RUNTIME_SETTLE_MS) {
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    out,
    err,
    /** Sends lines and waits until the shell has run them. */
    async send(lines: string[], marker: string): Promise<void> {
      await w.write(enc.encode(`${lines.join("\n")}\necho ${marker}\n`));
      at = await out.waitFor(`${marker}\n`, at);
    },
    async close(): Promise<Deno.CommandStatus> {
      await w.close();
      const status = await child.status;
      await out.done;
      await err.done;
      return status;
    },
  };
}

/**
 * The Deno runtime opens one fd pair on its own: a blocking AF_UNIX stream socketpair, made on the
 * main thread ~0.5 s after start together with a new thread (strace; a plain `setTimeout` script
 * gets it too, kvmsh or not). It is told apart by being blocking (fd_census.ts blockingSockets):
 * the census starts once it exists (or after this long, for a runtime without it), so that pair
 * is in both counts and nothing is excluded.
 */
const RUNTIME_SETTLE_MS = 10_000;

/**
 * What the shell holds before any object exists, once everything that may open an fd once per
 * process has run: a guest run (the vCPU kick's signal handlers and timer), a touch (a child
 * process; only where KVM makes an mmap-able guest_memfd: touch needs one, and without it no
 * line of the fuzzer touches), then (fuzzer) records and sources. Nothing is excluded from the count.
 */
const WARM_UP = [
  "vm create",
  "vcpu create",
  "run --asm hlt --timeout 1s",
  ...(GMEM_MMAP_SKIP_REASON === undefined ? ["gmem create --size 2M --flags mmap,init-shared", "touch gmem0:0"] : []),
  "reset",
];

kvmTest("fd census: a leaked fd of any kind shows, a moved dup does not (the leak check can fail)", async () => {
  assert.deepEqual(fdDiff(["pipe:[1]", "/dev/kvm"], ["/dev/kvm", "pipe:[1]"]), []);
  assert.deepEqual(fdDiff(["socket:[7]", "pipe:[1]"], ["socket:[7]", "socket:[9]", "pipe:[1]"]), ["+ socket:[N]"]);
  assert.deepEqual(fdDiff(["anon_inode:[eventfd]"], ["anon_inode:[eventfd]", "anon_inode:kvm-vcpu:3"]), [
    "+ anon_inode:kvm-vcpu:N",
  ]);
  assert.deepEqual(fdDiff(["/dev/kvm", "/tmp/a"], []), ["- /dev/kvm", "- /tmp/a"]);
  // The real shell: the test hook leaks one fd on /dev/null, and the census sees exactly that.
  const sh = spawnShell({ KVMSH_TEST_HOOKS: "1" });
  await sh.send(WARM_UP, "WARM");
  await sh.settled();
  const before = await stableFdTargets(sh.child.pid);
  assert.ok(before.length > 3, `only ${before.length} fds read: ${before}`);
  assert.ok(before.includes("/dev/kvm"), `reading the links works: ${before}`);
  await sh.send(["debug leak-fd"], "LEAKED");
  const after = await stableFdTargets(sh.child.pid, before, 1000);
  assert.deepEqual(fdDiff(before, after), ["+ /dev/null"]);
  await sh.close();
});

kvmTest("shell fuzz: 10,000 seeded random lines in one process; no crash, no fd leak", async () => {
  const dir = await Deno.makeTempDir();
  const r = mulberry32(0x6b766d);
  const files: FuzzFiles = { dir, scripts: [] };
  for (let i = 0; i < 3; i++) {
    const path = `${dir}/s${i}.kvmsh`;
    const body = Array.from({ length: 5 }, () => fuzzLine(r, { dir, scripts: [] })).join("\n");
    await Deno.writeTextFile(path, `${body}\n${i === 0 ? `source ${path}\n` : ""}`);
    files.scripts.push(path);
  }
  const sh = spawnShell();
  // Warm-up: the once-per-process fds first, then 3,000 lines, so lazily opened runtime files exist before counting.
  const warm: string[] = [];
  for (let i = 0; i < 3_000; i++) warm.push(fuzzLine(r, files));
  await sh.send(["caps GUEST_MEMFD_FLAGS", ...WARM_UP, ...warm, "record stop", "reset"], "BEFORE");
  await sh.settled();
  const pid = sh.child.pid;
  const before = await stableFdTargets(pid);
  assert.ok(before.includes("/dev/kvm"), `the census reads the links: ${before}`);
  // In batches: the names the shell printed in one batch are what the next one uses.
  const live: LiveNames = { vm: [], gmem: [], map: [], vcpu: [] };
  const lines: string[] = [];
  const from = sh.out.text.length;
  for (let batch = 0; batch < 40; batch++) {
    const part = Array.from({ length: 250 }, () => fuzzLine(r, files, live));
    lines.push(...part);
    const seen = sh.out.text.length;
    await sh.send(part, `BATCH${batch}`);
    learnNames(sh.out.text.slice(seen), live);
  }
  for (const kind of ["vcpu", "regs", "sregs", "run --asm", "touch", "record start", "record stop", "source"]) {
    assert.ok(lines.some((l) => l.includes(kind)), `the pool has ${kind}`);
  }
  // The lines reached live objects, not only error paths.
  const main = sh.out.text.slice(from);
  if (GMEM_SKIP_REASON === undefined) {
    // gmem stat answered, memory was read.
    const stats = main.match(/^\s+fstat: st_size /gm)?.length ?? 0;
    assert.ok(stats >= 20, `only ${stats} successful gmem stat`);
    assert.ok(live.gmem.length >= 20 && live.vm.length >= 20, `names made: ${JSON.stringify(live).slice(0, 200)}`);
  } else {
    // No guest_memfd here: the gmem creates reached KVM, which answered ENOTTY (the shell said why), and
    // the lines reached the other objects: vCPUs made and their registers read, guests run, slots set.
    const count = (text: string, re: RegExp) => text.match(re)?.length ?? 0;
    const seen = {
      enotty: count(sh.err.text, /^error: KVM_CREATE_GUEST_MEMFD: ENOTTY .* — this kernel has no guest_memfd/gm),
      regs: count(main, /^vcpu\d+:$/gm),
      sregs: count(main, /^vcpu\d+: cr0 /gm),
      runs: count(main, /^stop: HLT; /gm),
      slots: count(main, /^slot \d+ on vm\d+: gpa /gm),
    };
    const { enotty, regs, sregs, runs, slots } = seen;
    assert.ok(enotty >= 20 && regs >= 20 && sregs >= 20 && runs >= 20 && slots >= 5, JSON.stringify(seen));
    assert.deepEqual(live.gmem, [], "no guest_memfd was made");
    assert.ok(live.vcpu.length >= 20 && live.vm.length >= 20, `names made: ${JSON.stringify(live).slice(0, 200)}`);
  }
  await sh.send(["record stop", "reset"], "AFTER");
  const after = await stableFdTargets(pid, before);
  await sh.send([], "ALIVE");
  const status = await sh.close();
  const err = sh.err.text;
  assert.equal(status.signal, null, "the shell died of a signal");
  assert.ok(status.code === 1 || status.code === 2, `keep-going exits 1 or 2 after failures, got ${status.code}`);
  assert.doesNotMatch(err, /Uncaught|panicked|TypeError|ReferenceError|at file:/);
  // Every error starts with error: (or a warning); a message of several lines goes on indented lines.
  for (const l of err.split("\n").filter(Boolean)) assert.match(l, /^(error|warning): |^ {2}\S/);
  assert.deepEqual(fdDiff(before, after), [], `fds before:\n${before.join("\n")}\nafter:\n${after.join("\n")}`);
  // After reset, of KVM only /dev/kvm itself is open (VMs, vCPUs and gmems are anon inodes; file
  // paths, e.g. Deno's cache under a checkout named kvmsh, are not KVM's).
  assert.deepEqual(after.filter((t) => t === "/dev/kvm" || (!t.startsWith("/") && /kvm|gmem/.test(t))), ["/dev/kvm"]);
  await Deno.remove(dir, { recursive: true });
});
