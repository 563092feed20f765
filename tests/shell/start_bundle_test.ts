/**
 * The start-up bundle (shell/start_bundle.ts): built from the sources, used only while no source
 * is newer than the build and none has gone, rebuilt after an edit, never retried after a failure
 * until the sources change, skipped while another build holds the lock; `import.meta.url` names
 * the source module; the ./kvmsh wrapper runs its entry chunk directly while it is current.
 * Most cases use a tiny project in a temp dir (its own shell/cli.ts); the last ones run the real
 * ./kvmsh from its bundle and from its sources and compare.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import {
  buildBundle,
  bundleCurrent,
  deferLazyImports,
  fileUrl,
  readManifest,
  rewriteImportMeta,
  shellEntry,
  unlistedModules,
} from "../../shell/start_bundle.ts";
import { kvmsh } from "./helpers.ts";
import { GMEM_SKIP_REASON, kvmTest } from "../kvm_env.ts";

const ROOT = "file:///p/";

Deno.test("rewriteImportMeta: each module's import.meta.url becomes its own source URL", () => {
  const chunk = [
    "// kvm/a.ts",
    'var A = new URL("./x.ts", import.meta.url);',
    "// shell/b.ts",
    "var B = import.meta.url + import.meta.url;",
  ].join("\n");
  const out = rewriteImportMeta(chunk, ROOT, new Set(["kvm/a.ts", "shell/b.ts"]));
  eq(out.split("\n"), [
    "// kvm/a.ts",
    'var A = new URL("./x.ts", "file:///p/kvm/a.ts");',
    "// shell/b.ts",
    'var B = "file:///p/shell/b.ts" + "file:///p/shell/b.ts";',
  ]);
  eq(rewriteImportMeta("// kvm/a.ts\nvar x = 1;", ROOT, new Set(["kvm/a.ts"])), "// kvm/a.ts\nvar x = 1;");
});

Deno.test("rewriteImportMeta: other import.meta uses, or one outside a known module, fail the build", () => {
  throws(
    () => rewriteImportMeta("// kvm/a.ts\nif (import.meta.main) go();", ROOT, new Set(["kvm/a.ts"])),
    /import\.meta\.main/,
  );
  throws(() => rewriteImportMeta("var u = import.meta.url;", ROOT, new Set(["kvm/a.ts"])), /outside a known module/);
  // A comment line that only looks like a marker (not a module of the graph) starts no section.
  throws(
    () => rewriteImportMeta("// notes/x.ts\nvar u = import.meta.url;", ROOT, new Set(["kvm/a.ts"])),
    /outside a known module/,
  );
});

Deno.test("deferLazyImports: a chunk's import() of another chunk is hidden from Deno's module graph", () => {
  eq(
    deferLazyImports('const m = await import("./gmem-AB12CD.js"); import("./repl.js").then(f);'),
    'const m = await import(String("./gmem-AB12CD.js")); import(String("./repl.js")).then(f);',
  );
  const other = 'import { a } from "./chunk-X.js";\nawait import(url);\nimport("npm:x");';
  eq(deferLazyImports(other), other, "static imports, computed and non-relative specifiers stay");
});

Deno.test("unlistedModules: a module bundled that the stamped list lacks (added during the build)", () => {
  const chunk = "// kvm/a.ts\nvar a = 1;\n// kvm/new.ts\nvar n = 2;\n// shell/b.ts\nvar b = 3;";
  eq(unlistedModules(chunk, new Set(["kvm/a.ts", "shell/b.ts", "kvm/new.ts"])), []);
  eq(unlistedModules(chunk, new Set(["kvm/a.ts", "shell/b.ts"])), ["kvm/new.ts"]);
});

/**
 * A project with shell/cli.ts (exports runShell) importing a module that uses import.meta.url, and
 * shell/bundle_main.ts (the wrapper's entry) printing "bundle: " and what runShell answers.
 */
function tinyProject(): string {
  const root = Deno.makeTempDirSync({ prefix: "kvmsh-bundle-" });
  Deno.mkdirSync(`${root}/shell`);
  Deno.writeTextFileSync(`${root}/shell/where.ts`, "export const WHERE = new URL('.', import.meta.url).href;\n");
  Deno.writeTextFileSync(
    `${root}/shell/bundle_main.ts`,
    "const { runShell } = await import('./cli.ts');\nconsole.log('bundle: ' + runShell());\n",
  );
  Deno.writeTextFileSync(
    `${root}/shell/cli.ts`,
    "import { WHERE } from './where.ts';\nexport function runShell(): string { return WHERE + ' v1'; }\n",
  );
  return root;
}

function touch(path: string, text: string): void {
  Deno.writeTextFileSync(path, text);
  // A later mtime even on a coarse clock.
  const later = new Date(Date.now() + 5000);
  Deno.utimeSync(path, later, later);
}

Deno.test("shellEntry: builds once, reuses while unchanged, rebuilds after an edit", async () => {
  const root = tinyProject();
  try {
    const first = shellEntry(root);
    eq(first.from, "bundle", first.reason);
    ok(first.url.startsWith(`file://${root}/.tools/bundle/b-`), first.url);
    const m = readManifest(`${root}/.tools/bundle`)!;
    // Both entries' graphs, the bundler and the wrapper (missing in this tiny project: stamped as
    // missing), and the Deno binary.
    eq(m.sources, [
      "kvmsh",
      "shell/bundle_main.ts",
      "shell/cli.ts",
      "shell/start_bundle.ts",
      "shell/where.ts",
      Deno.execPath(),
    ]);
    // The bundled module names the source directory, not the bundle's.
    const mod = await import(first.url);
    eq(mod.runShell(), `file://${root}/shell/ v1`);

    eq(shellEntry(root).url, first.url, "unchanged sources: the same bundle");

    touch(
      `${root}/shell/cli.ts`,
      "import { WHERE } from './where.ts';\nexport function runShell() { return WHERE + ' v2'; }\n",
    );
    const second = shellEntry(root);
    eq(second.from, "bundle");
    ok(second.url !== first.url, "an edited source: a new bundle");
    eq((await import(second.url)).runShell(), `file://${root}/shell/ v2`);
    // The previous bundle stays (a long-lived prompt may still load its chunks).
    ok(Deno.statSync(new URL(first.url)).isFile);

    // A bundle directory removed by hand is built again, not imported.
    Deno.removeSync(new URL(".", second.url), { recursive: true });
    const third = shellEntry(root);
    eq(third.from, "bundle");
    ok(third.url !== second.url && Deno.statSync(new URL(third.url)).isFile);

    eq(shellEntry(root, "off").from, "sources");
    eq(shellEntry(root, "off").url, `file://${root}/shell/cli.ts`);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("shellEntry: a failed build is recorded, not retried until a source changes", () => {
  const root = tinyProject();
  try {
    Deno.writeTextFileSync(`${root}/shell/where.ts`, "import './missing.ts';\nexport const WHERE = 'b';\n");
    const e = shellEntry(root);
    eq(e.from, "sources");
    ok(/last bundle build failed: .*missing\.ts/.test(e.reason ?? ""), e.reason);
    const m = readManifest(`${root}/.tools/bundle`)!;
    eq(m.dir, null);
    // Not rebuilt: the manifest file is the same one.
    const before = Deno.statSync(`${root}/.tools/bundle/current.json`).mtime?.getTime();
    eq(shellEntry(root).reason, e.reason);
    eq(Deno.statSync(`${root}/.tools/bundle/current.json`).mtime?.getTime(), before);
    throws(() => shellEntry(root, "require"), /KVMSH_BUNDLE=1: the last bundle build failed/);
    touch(`${root}/shell/where.ts`, "export const WHERE = 'fixed';\n");
    eq(shellEntry(root).from, "bundle");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("shellEntry: while another process holds the build lock, the sources run (KVMSH_BUNDLE=1 waits)", async () => {
  const root = tinyProject();
  try {
    Deno.mkdirSync(`${root}/.tools/bundle`, { recursive: true });
    Deno.writeTextFileSync(`${root}/.tools/bundle/build.lock`, "");
    const e = shellEntry(root);
    eq(e.from, "sources");
    eq(e.reason, "a bundle build is running in another process");
    // KVMSH_BUNDLE=1 waits for the build instead: here the "other build" ends after 0.3 s.
    const ender = new Deno.Command("sh", { args: ["-c", `sleep 0.3; rm '${root}/.tools/bundle/build.lock'`] }).spawn();
    const t0 = performance.now();
    eq(shellEntry(root, "require").from, "bundle");
    ok(performance.now() - t0 >= 250, "it waited for the lock");
    await ender.status;
    // A lock left by a dead build (older than two minutes) is taken over (sources edited since).
    touch(`${root}/shell/where.ts`, "export const WHERE = 'again';\n");
    Deno.writeTextFileSync(`${root}/.tools/bundle/build.lock`, "");
    const old = new Date(Date.now() - 10 * 60_000);
    Deno.utimeSync(`${root}/.tools/bundle/build.lock`, old, old);
    eq(shellEntry(root).from, "bundle");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("bundleCurrent: a newer source, a removed one (its directory), one missing at the build that appears", () => {
  const root = tinyProject();
  try {
    eq(shellEntry(root).from, "bundle");
    ok(bundleCurrent(root));
    // A copy of the tree (mtimes kept) or the tree moved elsewhere: its chunks name the old root.
    const copy = `${root}-copy`;
    new Deno.Command("cp", { args: ["-a", root, copy] }).outputSync();
    try {
      ok(bundleCurrent(root), "the original");
      ok(!bundleCurrent(copy), "a copy made with cp -a");
    } finally {
      Deno.removeSync(copy, { recursive: true });
    }
    const moved = `${root}-moved`;
    Deno.renameSync(root, moved);
    try {
      ok(!bundleCurrent(moved), "the tree moved");
    } finally {
      Deno.renameSync(moved, root);
    }
    ok(bundleCurrent(root), "back where it was built");
    const where = `${root}/shell/where.ts`;
    Deno.renameSync(where, `${where}.away`);
    ok(!bundleCurrent(root), "a source gone (its directory changed)");
    Deno.renameSync(`${where}.away`, where);
    ok(!bundleCurrent(root), "back, with the mtime it had: its directory still changed");
    eq(shellEntry(root).from, "bundle");
    ok(bundleCurrent(root), "rebuilt");
    Deno.writeTextFileSync(`${root}/shell/unrelated.txt`, "");
    ok(!bundleCurrent(root), "a file added next to the sources: a rebuild (cheap, and rare)");
    eq(shellEntry(root).from, "bundle");
    // Older than the build: still current (make's rule). Newer is not: the stamp has the newest
    // mtime exactly.
    const st = Deno.statSync(where);
    const older = new Date(st.mtime!.getTime() - 60_000);
    Deno.utimeSync(where, older, older);
    ok(bundleCurrent(root), "an older mtime");
    touch(where, Deno.readTextFileSync(where));
    ok(!bundleCurrent(root), "a newer mtime");
    eq(shellEntry(root).from, "bundle");
    ok(bundleCurrent(root), "rebuilt");
    // The bundler itself was missing when stamped: its appearing counts.
    Deno.writeTextFileSync(`${root}/shell/start_bundle.ts`, "");
    ok(!bundleCurrent(root), "a source missing at the build appears");
    Deno.removeSync(`${root}/shell/start_bundle.ts`);
    // No current.sh, or one without a stamp: never current.
    Deno.removeSync(`${root}/.tools/bundle/${readManifest(`${root}/.tools/bundle`)!.stampDir}/stamp`);
    ok(!bundleCurrent(root), "no stamp");
    Deno.removeSync(`${root}/.tools/bundle/current.sh`);
    ok(!bundleCurrent(root), "no current.sh");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("./kvmsh runs the bundle's entry chunk while it is current, else shell/main.ts", async () => {
  const root = tinyProject();
  try {
    Deno.copyFileSync(new URL("../../kvmsh", import.meta.url), `${root}/kvmsh`);
    Deno.chmodSync(`${root}/kvmsh`, 0o755);
    Deno.mkdirSync(`${root}/.tools/node_modules/.bin`, { recursive: true });
    Deno.symlinkSync(Deno.execPath(), `${root}/.tools/node_modules/.bin/deno`);
    Deno.writeTextFileSync(`${root}/shell/main.ts`, "console.log('sources: ' + Deno.args.join(' '));\n");
    const run = async (env: Record<string, string> = {}) => {
      const out = await new Deno.Command(`${root}/kvmsh`, { args: ["-c", "x y"], env, stdin: "null" }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      eq(out.code, 0, text);
      return text.trim();
    };
    eq(await run(), "sources: -c x y", "no bundle yet");
    eq(shellEntry(root).from, "bundle");
    eq(await run(), `bundle: ${fileUrl(root)}/shell/ v1`);
    eq(await run({ KVMSH_BUNDLE: "0" }), "sources: -c x y");
    eq(await run({ KVMSH_BUNDLE_REPORT: "1" }), "sources: -c x y", "the report comes from main.ts");
    touch(`${root}/shell/where.ts`, "export const WHERE = 'edited';\n");
    eq(await run(), "sources: -c x y", "an edited source");
    eq(shellEntry(root).from, "bundle");
    eq(await run(), "bundle: edited v1");
    // A failed build: main.ts (it says why).
    touch(`${root}/shell/where.ts`, "export const WHERE = ;\n");
    eq(shellEntry(root).from, "sources");
    eq(await run(), "sources: -c x y");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("buildBundle: the real shell bundles; its record chunk names the source mod.ts", () => {
  const root = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
  const dir = Deno.makeTempDirSync({ prefix: "kvmsh-bundle-real-" });
  try {
    const m = buildBundle(root, dir);
    ok(m.dir, m.error);
    const files = [...Deno.readDirSync(`${dir}/${m.dir}`)].map((e) => e.name);
    ok(files.includes("cli.js") && files.includes("bundle_main.js") && files.includes("stamp"), files.join(" "));
    const all = files.map((f) => Deno.readTextFileSync(`${dir}/${m.dir}/${f}`)).join("\n");
    ok(!all.includes("import.meta"), "no import.meta left");
    // Only the entry chunk names an import() target literally (cli.js: loaded at start anyway).
    const literal = files.flatMap((f) =>
      [...Deno.readTextFileSync(`${dir}/${m.dir}/${f}`).matchAll(/\bimport\("([^"]+)"\)/g)].map((x) => `${f}: ${x[1]}`)
    );
    eq(literal, ["bundle_main.js: ./cli.js"]);
    ok(/import\(String\("\.\/gmem-[\w-]+\.js"\)\)/.test(all), "the gmem group is imported by a computed name");
    ok(all.includes(`new URL("../mod.ts", "file://${root}/shell/recorder.ts")`), "recorder's MOD_URL");
    const paths = m.sources;
    for (const p of ["shell/cli.ts", "shell/commands/vcpu.ts", "core.ts", "kvm/run_guest.ts", "ffi/libc.ts"]) {
      ok(paths.includes(p), `manifest lists ${p}`);
    }
    ok(!paths.some((p) => p.startsWith("scenario/")), "scenario/ is not part of the shell's bundle");
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

kvmTest("./kvmsh from its bundle and from its sources: the same output; record names the source mod.ts", async () => {
  const dir = await Deno.makeTempDir();
  const rec = `${dir}/rec.ts`;
  // The gmem create loads the gmem group's chunk. Where KVM has no guest_memfd it is refused (ENOTTY), so the
  // line goes on with --keep-going (the guest still runs; the status is the refusal's, 1) and stderr is compared too.
  const gmem = GMEM_SKIP_REASON === undefined;
  const kg = gmem ? [] : ["--keep-going"];
  try {
    const line =
      `vm create; record start ${rec}; gmem create --size 2M --flags mmap; record stop; run --asm "movb $7, %al; outb %al, $0xf4"`;
    const bundled = await kvmsh([...kg, "-c", line], undefined, { KVMSH_BUNDLE: "1", KVMSH_BUNDLE_REPORT: "1" });
    ok(/shell from bundle: file:\/\/.*\.tools\/bundle\/b-/.test(bundled.stderr), bundled.stderr);
    const recorded = await Deno.readTextFile(rec);
    await Deno.remove(rec);
    const sources = await kvmsh([...kg, "-c", line], undefined, { KVMSH_BUNDLE: "0", KVMSH_BUNDLE_REPORT: "1" });
    ok(/shell from sources \(KVMSH_BUNDLE=0\)/.test(sources.stderr), sources.stderr);
    const strip = (s: string) => s.replace(/in [\d.]+ ms/g, "in N ms").replace(/fd \d+/g, "fd N");
    eq(strip(bundled.stdout), strip(sources.stdout));
    eq(bundled.code, sources.code);
    // And as ./kvmsh usually runs: the bundle's entry chunk, straight from the wrapper.
    await Deno.remove(rec);
    const direct = await kvmsh([...kg, "-c", line]);
    eq(strip(direct.stdout), strip(sources.stdout));
    eq(direct.code, sources.code);
    if (gmem) eq(bundled.code, 7 & 0xff);
    const mod = new URL("../../mod.ts", import.meta.url).href;
    ok(recorded.includes(mod), `the recording imports ${mod}:\n${recorded.slice(0, 400)}`);
    if (!gmem) {
      const report = /^kvmsh: shell from .*\n/gm;
      eq(bundled.stderr.replace(report, ""), sources.stderr.replace(report, ""));
      eq(direct.stderr, sources.stderr.replace(report, ""));
      ok(
        /^error: KVM_CREATE_GUEST_MEMFD: ENOTTY .* — this kernel has no guest_memfd/m.test(direct.stderr),
        direct.stderr,
      );
      ok(/^stop: exit-code \(exit code 0x7\)/m.test(direct.stdout), direct.stdout);
      ok(recorded.includes('kvmsh.expectErrno("ENOTTY", () => vm0.createGuestMemfd(0x200000n, "mmap"));'), recorded);
      eq(bundled.code, 1);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("shellEntry: a syntax error outside the entry is a source too: fixing it rebuilds", () => {
  const root = tinyProject();
  try {
    Deno.writeTextFileSync(`${root}/shell/where.ts`, "export const WHERE = ;\n");
    const e = shellEntry(root);
    eq(e.from, "sources");
    ok(/last bundle build failed/.test(e.reason ?? ""), e.reason);
    ok(readManifest(`${root}/.tools/bundle`)!.sources.includes("shell/where.ts"), "where.ts is stamped");
    touch(`${root}/shell/where.ts`, "export const WHERE = 'fixed';\n");
    eq(shellEntry(root).from, "bundle");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("shellEntry: a project path with a space and a '#' works (paths and URLs kept apart)", async () => {
  const parent = Deno.makeTempDirSync({ prefix: "kvmsh bundle #" });
  const root = `${parent}/proj`;
  Deno.renameSync(tinyProject(), root);
  try {
    eq(fileUrl("/a b/#c"), "file:///a%20b/%23c");
    const e = shellEntry(root);
    eq(e.from, "bundle", e.reason);
    eq((await import(e.url)).runShell(), `${fileUrl(root)}/shell/ v1`);
    eq(shellEntry(root).url, e.url, "the manifest's stamps match on the next start");
  } finally {
    Deno.removeSync(parent, { recursive: true });
  }
});
