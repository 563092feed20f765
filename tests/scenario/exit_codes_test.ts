/**
 * The runner's exit codes (kselftest): pass 0, fail 1, all skipped 4, skip with --bisect 125; a
 * host without usable KVM skips (4 / 125); a broken scenario file (syntax error, failed import, no
 * scenario) is the user's error: 2, and 128 under --bisect (`git bisect run` reads 1-127 but 125 as
 * "bad", 2 included, and stops on a code above 127).
 * Each runs the real runner process on a fixture. The fixtures use anonymous memory, never a
 * guest_memfd: the exit codes hold on any host with /dev/kvm, whatever its KVM offers.
 */

import assert from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";
import { runnerArgs, runRunner } from "./runner_process.ts";
import { readProcText } from "../../ffi/procfs.ts";
import { CAP, describeCapValue, Kvm } from "../../mod.ts";

const F = "tests/scenario/fixtures";

kvmTest("scenario runner: every expectation holds → exit 0", async () => {
  const r = await runRunner([`${F}/pass.ts`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^KTAP version 1\n/);
  assert.match(r.stdout, /^ok 1 fixture: pass$/m);
});

kvmTest("scenario runner: a contradicted expectation → exit 1 with the kernel's answer", async () => {
  const r = await runRunner([`${F}/fail.ts`]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^ {2}not ok 1 a one-byte memslot is ENOSPC .* # expected ENOSPC, got .*EINVAL/m);
  assert.match(r.stdout, /^not ok 1 fixture: fail/m);
  const bisect = await runRunner(["--bisect", `${F}/fail.ts`]);
  assert.equal(bisect.code, 1, "--bisect leaves failure at 1 (bad commit)");
});

kvmTest("scenario runner: all skipped → exit 4 (KSFT_SKIP); --bisect → 125", async () => {
  const r = await runRunner([`${F}/skip.ts`]);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout, /^ok 1 fixture: needs a future kernel # SKIP kernel .* is older than 999\.0$/m);
  assert.match(r.stdout, /^ok 2 fixture: needs a missing vendor module # SKIP needs module kvm_nonexistent/m);
  const b = await runRunner(["--bisect", `${F}/skip.ts`]);
  assert.equal(b.code, 125, b.stdout + b.stderr);
});

kvmTest("scenario runner: pass + skip → 0", async () => {
  assert.equal((await runRunner([`${F}/pass.ts`, `${F}/skip.ts`])).code, 0);
});

Deno.test("scenario runner: a broken scenario file exits 2 with the error; with --bisect 128 (git bisect run stops)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const broken = `${dir}/broken.ts`;
    await Deno.writeTextFile(broken, 'import { scenario } from "./nowhere.ts";\nscenario("x", () => {\n');
    // git bisect run: 1-127 but 125 is "bad" (2 included), above 127 aborts.
    const cases: [string[], number][] = [[[broken], 2], [["--bisect", broken], 128], [[`${F}/pass.ts`, broken], 2]];
    for (const [args, code] of cases) {
      const r = await runRunner(args);
      assert.equal(r.code, code, `${args.join(" ")}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /cannot load: .*(SyntaxError|Expected|Unexpected|error)/i);
      assert.match(r.stderr, new RegExp(`kvmsh scenario: ${broken}: cannot load: `));
    }
    const e = await runRunner(["--bisect", `${F}/empty.ts`]);
    assert.equal(e.code, 128, "a file that registers nothing is broken too");
    assert.match(e.stdout, /no scenario\(\) registered/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scenario runner: a file that cannot load says why without Deno's TypeError wrapper (a top-level throw keeps its class)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/syntax.ts`, "const x = (;\n");
    await Deno.writeTextFile(`${dir}/throws.ts`, 'throw new RangeError("top level");\n');
    const cases: [string, RegExp][] = [
      [`${dir}/missing.ts`, /cannot load: Module not found "file:\/\/[^"]*missing\.ts"/],
      [`${dir}/syntax.ts`, /cannot load: SyntaxError: /],
      [`${dir}/throws.ts`, /cannot load: RangeError: top level/],
    ];
    for (const [file, want] of cases) {
      const r = await runRunner([file]);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stdout, want);
      assert.doesNotMatch(r.stdout + r.stderr, /TypeError/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scenario runner: a file that cannot load keeps the KTAP stream KTAP: no colour codes, every line of a multi-line error a `#` comment", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A syntax error's message is a code frame of several lines; a missing module's has a coloured
    // `at file:…` line (Deno colours it even when the output is not a terminal).
    await Deno.writeTextFile(`${dir}/syntax.ts`, "const x = ;\n");
    await Deno.writeTextFile(`${dir}/missing.ts`, 'import "./nope.ts";\n');
    const ktapLine = /^\s*(KTAP version 1|#.*|1\.\.\d+( # .*)?|(not )?ok \d+ .*)$/;
    const cases: [string, RegExp][] = [
      ["syntax.ts", /SyntaxError: /],
      ["missing.ts", /Module not found "file:[^"]*nope\.ts"/],
    ];
    for (const [file, want] of cases) {
      for (const args of [[`${dir}/${file}`], [`${F}/pass.ts`, `${dir}/${file}`]]) {
        const r = await runRunner(args);
        assert.equal(r.code, 2, r.stdout + r.stderr);
        assert.ok(
          !(r.stdout + r.stderr).includes("\x1b"),
          `no escape sequences in: ${JSON.stringify(r.stdout + r.stderr)}`,
        );
        const lines = r.stdout.split("\n").filter((l) => l !== "");
        for (const l of lines) assert.match(l, ktapLine, `a KTAP line in:\n${r.stdout}`);
        // The plan line has the first line of the reason, the `# error:` lines all of it.
        const plan = lines.find((l) => /^\s*1\.\.0 # cannot load: /.test(l));
        assert.ok(plan, r.stdout);
        assert.match(plan, want);
        const error = lines.slice(lines.indexOf(plan) + 1).map((l) => l.trimStart())
          .filter((l) => l.startsWith("#") && !l.startsWith("# Totals"));
        assert.match(error[0] ?? "", /^# error: cannot load: /, r.stdout);
        assert.match(error.join("\n"), /at file:\/\/[^\n]*:1:\d+/, "the `at` line is kept, as a comment");
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scenario runner: a promise no step awaited that rejects later is reported; the run goes on and exits 2 (128 with --bisect)", async () => {
  for (const [args, code] of [[[], 2], [["--bisect"], 128]] as [string[], number][]) {
    const r = await runRunner([...args, `${F}/unawaited.ts`]);
    assert.equal(r.code, code, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /^# error: a promise no step awaited rejected \(ScenarioStopped: scenario 'fixture: un-awaited' already ended\)/m,
    );
    assert.match(r.stdout, /^ {2}ok 1 still runs$/m);
    assert.match(r.stdout, /^# Totals: pass:\d+ fail:0 xfail:0 xpass:0 skip:0 error:1$/m);
    assert.doesNotMatch(r.stderr, /Uncaught/);
  }
});

kvmTest("scenario runner: a file given twice runs twice (its module was cached: the second was 'broken')", async () => {
  const r = await runRunner([`${F}/pass.ts`, `${F}/pass.ts`]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.match(/^ {2}ok 1 fixture: pass$/gm)?.length, 2, r.stdout);
});

kvmTest("scenario runner: notes of a scenario skipped before any result open no empty subtest", async () => {
  const r = await runRunner([`${F}/note_skip.ts`]);
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout, /# Subtest: fixture: noted then skipped/);
  assert.match(r.stdout, /^# about to check\nok 1 fixture: noted then skipped # SKIP kernel .* is older than 999\.0$/m);
});

Deno.test("scenario runner: a reader that goes away (| head) ends the output quietly, no BrokenPipe crash", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: runnerArgs([`${F}/unawaited.ts`]),
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  const reader = child.stdout.getReader();
  await reader.read(); // the first bytes, then the reader goes away
  await reader.cancel();
  const [status, err] = await Promise.all([child.status, new Response(child.stderr).text()]);
  assert.doesNotMatch(err, /BrokenPipe|Uncaught/, err);
  assert.equal(status.code, 2, "the run went on to its own end (the fixture's un-awaited promise: 2)");
});

const NO_KVM = { KVMSH_DEVICE: "/nonexistent/kvm" };

Deno.test("scenario runner: no KVM device (KVMSH_DEVICE=/nonexistent) → every scenario skips with the reason, exit 4 / 125", async () => {
  const r = await runRunner([`${F}/pass.ts`, `${F}/fail.ts`], { env: NO_KVM });
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(r.stdout, /^# KVM API version: unavailable \(open: ENOENT/m);
  assert.match(r.stdout, /^ {2}ok 1 fixture: pass # SKIP KVM unavailable: open: ENOENT .*\/nonexistent\/kvm/m);
  assert.match(r.stdout, /^ {2}ok 1 fixture: fail # SKIP KVM unavailable: /m);
  assert.doesNotMatch(r.stdout, /not ok|uncaught/);
  assert.match(r.stdout, /^ok 1 tests\/scenario\/fixtures\/pass\.ts # SKIP KVM unavailable: /m, "the file says why");
  assert.doesNotMatch(r.stdout, /^# default VM caps:/m, "no caps line without KVM");
  const b = await runRunner(["--bisect", `${F}/pass.ts`], { env: NO_KVM });
  assert.equal(b.code, 125, b.stdout + b.stderr);
  const lib = await runRunner(["scripts/guest_memfd_abi.ts", "scripts/gmem_mmap_init_shared.ts"], { env: NO_KVM });
  assert.equal(lib.code, 4, lib.stdout + lib.stderr);
  assert.doesNotMatch(lib.stdout, /not ok/);
});

Deno.test("scenario runner: a device that is not KVM (KVMSH_DEVICE=/dev/null: KVM_GET_API_VERSION fails) skips with the reason, exit 4 / 125", async () => {
  const env = { KVMSH_DEVICE: "/dev/null" };
  const r = await runRunner([`${F}/pass.ts`], { env });
  assert.equal(r.code, 4, r.stdout + r.stderr);
  assert.match(
    r.stdout,
    /^ *ok 1 fixture: pass # SKIP KVM unavailable: \/dev\/null is not a KVM device \(KVM_GET_API_VERSION: ENOTTY/m,
  );
  assert.doesNotMatch(r.stdout, /not ok|uncaught/);
  const b = await runRunner(["--bisect", `${F}/pass.ts`], { env });
  assert.equal(b.code, 125, b.stdout + b.stderr);
});

/** Root (effective uid 0, from /proc: Deno.uid() needs --allow-sys, which `deno task test` does not grant). */
function isRoot(): boolean {
  const m = readProcText("/proc/self/status")?.match(/^Uid:\s+\d+\s+(\d+)/m);
  return m?.[1] === "0";
}

Deno.test({
  name: "scenario runner: a host whose /dev has no kvm (unshare -m, empty tmpfs on /dev) skips, exit 4",
  ignore: !isRoot(),
  fn: async () => {
    const deno = Deno.execPath();
    const { runnerArgs } = await import("./runner_process.ts");
    const script = `mount -t tmpfs none /dev && exec "$0" "$@"`;
    const r = await runRunner([], {
      command: { program: "unshare", args: ["-m", "sh", "-c", script, deno, ...runnerArgs([`${F}/pass.ts`])] },
    });
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /^ok 1 fixture: pass # SKIP KVM unavailable: open: ENOENT .*\/dev\/kvm/m);
    assert.match(r.stdout, /^# kernel log: cannot open \/dev\/kmsg/m);
  },
});

Deno.test("scenario runner: usage errors exit 2 without running anything (128 with --bisect)", async () => {
  assert.equal((await runRunner([])).code, 2);
  const r = await runRunner(["--frobnicate", `${F}/pass.ts`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--frobnicate'/);
  const b = await runRunner(["--frobnicate", "--bisect", `${F}/pass.ts`]);
  assert.equal(b.code, 128, "an option after the bad one counts");
  assert.equal((await runRunner(["--bisect"])).code, 128, "no file given");
});

kvmTest("scenario runner: --json to stdout (KTAP to stderr) and --json=FILE", async () => {
  const r = await runRunner(["--json", `${F}/fail.ts`]);
  assert.equal(r.code, 1);
  const j = JSON.parse(r.stdout);
  assert.equal(j.format, "kvmsh-scenario-report");
  assert.equal(j.exitCode, 1);
  assert.equal(j.totals.fail, 1);
  assert.equal(j.files[0].scenarios[0].lines[0].status, "fail");
  assert.match(r.stderr, /^KTAP version 1/);
  const file = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const f = await runRunner([`--json=${file}`, `${F}/pass.ts`]);
    assert.equal(f.code, 0);
    assert.match(f.stdout, /^KTAP version 1/);
    const k = JSON.parse(await Deno.readTextFile(file));
    assert.equal(k.totals.pass, 3);
    assert.equal(typeof k.host.kernel, "string");
    // The host part carries a default VM's guest_memfd caps as `kvmsh caps --json` rows, read
    // here independently; the KTAP header names the same answers.
    const want = defaultVmCaps();
    assert.deepEqual(
      k.host.caps.map((c: { name: string; vm: number; decoded: string }) => [c.name, c.vm, c.decoded]),
      want.map((c) => [c.name, c.vm, c.decoded]),
    );
    const line = `# default VM caps: ${want.map((c) => `${c.short}=${c.decoded}`).join(", ")}`;
    assert.ok(f.stdout.split("\n").slice(0, 6).includes(line), `${line} in the header:\n${f.stdout}`);
  } finally {
    await Deno.remove(file);
  }
});

/** GUEST_MEMFD, GUEST_MEMFD_FLAGS and MEMORY_ATTRIBUTES on a default VM, read in this process. */
function defaultVmCaps() {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  return (["GUEST_MEMFD", "GUEST_MEMFD_FLAGS", "MEMORY_ATTRIBUTES"] as const).map((short) => {
    const v = vm.checkExtension(CAP[short]);
    // Decoded as the header decodes it: with the system fd's answer beside the VM's.
    const decoded = describeCapValue(CAP[short], v, kvm.checkExtension(CAP[short]));
    return { short, name: `KVM_CAP_${short}`, vm: v, decoded };
  });
}
