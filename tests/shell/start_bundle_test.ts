/**
 * The start-up bundle (shell/start_bundle.ts): built from the sources, used only while every
 * source is unchanged, rebuilt after an edit, never retried after a failure until the sources
 * change, skipped while another build holds the lock; `import.meta.url` names the source module.
 * Most cases use a tiny project in a temp dir (its own shell/cli.ts); the last ones run the real
 * ./kvmsh from its bundle and from its sources and compare.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import {
  buildBundle,
  fileUrl,
  readManifest,
  rewriteImportMeta,
  shellEntry,
  type SourceStamp,
  sourcesUnchanged,
} from "../../shell/start_bundle.ts";
import { kvmsh } from "./helpers.ts";
import { kvmTest } from "../kvm_env.ts";

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

/** A project with shell/cli.ts (exports runShell) importing a module that uses import.meta.url. */
function tinyProject(): string {
  const root = Deno.makeTempDirSync({ prefix: "kvmsh-bundle-" });
  Deno.mkdirSync(`${root}/shell`);
  Deno.writeTextFileSync(`${root}/shell/where.ts`, "export const WHERE = new URL('.', import.meta.url).href;\n");
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
    // The graph, and the bundler itself (missing in this tiny project: stamped as missing).
    eq(m.sources.map((s) => s[0]), ["shell/cli.ts", "shell/start_bundle.ts", "shell/where.ts"]);
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

Deno.test("shellEntry: while another process holds the build lock, the sources run", () => {
  const root = tinyProject();
  try {
    Deno.mkdirSync(`${root}/.tools/bundle`, { recursive: true });
    Deno.writeTextFileSync(`${root}/.tools/bundle/build.lock`, "");
    const e = shellEntry(root);
    eq(e.from, "sources");
    eq(e.reason, "a bundle build is running in another process");
    // A lock left by a dead build (older than two minutes) is taken over.
    const old = new Date(Date.now() - 10 * 60_000);
    Deno.utimeSync(`${root}/.tools/bundle/build.lock`, old, old);
    eq(shellEntry(root).from, "bundle");
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("sourcesUnchanged: mtime, size and existence each count", () => {
  const root = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${root}/a.ts`, "x");
    const st = Deno.statSync(`${root}/a.ts`);
    const stamp: SourceStamp = ["a.ts", st.mtime!.getTime(), st.size];
    ok(sourcesUnchanged(root, [stamp]));
    ok(!sourcesUnchanged(root, [["a.ts", stamp[1] - 1, stamp[2]]]));
    ok(!sourcesUnchanged(root, [["a.ts", stamp[1], stamp[2] + 1]]));
    ok(!sourcesUnchanged(root, [["gone.ts", stamp[1], stamp[2]]]));
    ok(!sourcesUnchanged(root, []), "an empty manifest is never current");
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
    ok(files.includes("cli.js"));
    const all = files.map((f) => Deno.readTextFileSync(`${dir}/${m.dir}/${f}`)).join("\n");
    ok(!all.includes("import.meta"), "no import.meta left");
    ok(all.includes(`new URL("../mod.ts", "file://${root}/shell/recorder.ts")`), "recorder's MOD_URL");
    const paths = m.sources.map((s) => s[0]);
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
  try {
    const line =
      `vm create; record start ${rec}; gmem create --size 2M --flags mmap; record stop; run --asm "movb $7, %al; outb %al, $0xf4"`;
    const bundled = await kvmsh(["-c", line], undefined, { KVMSH_BUNDLE: "1", KVMSH_BUNDLE_REPORT: "1" });
    ok(/shell from bundle: file:\/\/.*\.tools\/bundle\/b-/.test(bundled.stderr), bundled.stderr);
    const recorded = await Deno.readTextFile(rec);
    await Deno.remove(rec);
    const sources = await kvmsh(["-c", line], undefined, { KVMSH_BUNDLE: "0", KVMSH_BUNDLE_REPORT: "1" });
    ok(/shell from sources \(KVMSH_BUNDLE=0\)/.test(sources.stderr), sources.stderr);
    const strip = (s: string) => s.replace(/in [\d.]+ ms/g, "in N ms").replace(/fd \d+/g, "fd N");
    eq(strip(bundled.stdout), strip(sources.stdout));
    eq(bundled.code, sources.code);
    eq(bundled.code, 7 & 0xff);
    const mod = new URL("../../mod.ts", import.meta.url).href;
    ok(recorded.includes(mod), `the recording imports ${mod}:\n${recorded.slice(0, 400)}`);
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
    ok(readManifest(`${root}/.tools/bundle`)!.sources.some((s) => s[0] === "shell/where.ts"), "where.ts is stamped");
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
