/**
 * The start-up bundle. A `kvmsh -c "vm create; run guest.bin"` process is mostly start-up: Deno
 * loads each TypeScript module on its own (emit cache, code cache, instantiation), which for the
 * ~70 modules the shell needs cost ~17 ms of a ~60 ms process. `./kvmsh` therefore runs the shell
 * (shell/cli.ts and everything it imports, statically or by `import()`) from a code-split bundle
 * made by `deno bundle`, kept in `.tools/bundle/`: one entry chunk and a chunk per lazily loaded
 * command group (bench/README.md has the measurements).
 *
 * The bundle is a cache of the sources, never a second copy to maintain:
 * - its manifest lists every local module of the shell's graph (`deno info --json`) with the
 *   mtime and size read *before* bundling; it is used only while every one still matches (and
 *   the Deno version and this file's format are the same), else it is rebuilt (~0.5 s, once);
 * - `import.meta.url` in a bundled module is rewritten to that module's own source URL, so paths
 *   computed from it (the guest library, the recorder's `mod.ts`, the gmem child) still name the
 *   source tree; any other `import.meta` use fails the build;
 * - a build that fails (no esbuild from npm, read-only tree) is recorded with the same manifest,
 *   so the shell runs from the sources until they change, without retrying each start;
 * - a build in progress elsewhere (lock file) means: run from the sources this time.
 *
 * `KVMSH_BUNDLE=0` runs the sources always; `KVMSH_BUNDLE=1` requires the bundle (fails loudly).
 * `kvmsh scenario` never uses it: a scenario file imports the source `mod.ts`, and one process must
 * not hold two copies of the library (the kick's signal handler, class identity).
 * @module
 */

/** Bumped when the bundle's layout or rewriting changes: older bundles are then rebuilt. */
export const BUNDLE_FORMAT = 1;

/** The module the bundle is made from (relative to the project root); its chunk is `cli.js`. */
const ENTRY = "shell/cli.ts";
const ENTRY_CHUNK = "cli.js";
/** This file: how a bundle is made is part of what it is made from. */
const SELF = "shell/start_bundle.ts";
/** A build lock older than this is a dead build's: taken over. */
const STALE_LOCK_MS = 120_000;
/**
 * Old bundles are removed once there are more than KEEP_OLD of them and they are older than
 * KEEP_MS: a prompt started from one imports its command chunks later, maybe days later.
 */
const KEEP_OLD = 3;
const KEEP_MS = 7 * 24 * 3600_000;

/** One source file as the bundle saw it. */
export type SourceStamp = [path: string, mtimeMs: number, size: number];

/** `.tools/bundle/current.json`. */
export interface Manifest {
  format: number;
  deno: string;
  /** Directory (under the bundle dir) holding the chunks; null when the build failed. */
  dir: string | null;
  error?: string;
  sources: SourceStamp[];
}

/** What to run the shell from. */
export interface ShellEntry {
  /** URL of the module exporting `runShell`. */
  url: string;
  /** "bundle", or why the sources are used. */
  from: "bundle" | "sources";
  reason?: string;
}

const dec = new TextDecoder();

/** A file's stamp; a missing file stamps as [-1, -1] (an import of it may appear later). */
function statStamp(root: string, path: string): SourceStamp {
  try {
    const st = Deno.statSync(`${root}/${path}`);
    return [path, st.mtime?.getTime() ?? 0, st.size];
  } catch {
    return [path, -1, -1];
  }
}

/** True when every source still has the recorded mtime and size (or is still missing). */
export function sourcesUnchanged(root: string, sources: SourceStamp[]): boolean {
  for (const [path, mtime, size] of sources) {
    const now = statStamp(root, path);
    if (now[1] !== mtime || now[2] !== size) return false;
  }
  return sources.length > 0;
}

/** `file:` URL of an absolute path (each segment percent-encoded: spaces, `#`, `%`). */
export function fileUrl(path: string): string {
  return `file://${path.split("/").map(encodeURIComponent).join("/")}`;
}

/** The manifest in `dir`, if readable and of this format and Deno. */
export function readManifest(dir: string): Manifest | undefined {
  try {
    const m = JSON.parse(Deno.readTextFileSync(`${dir}/current.json`)) as Manifest;
    if (m.format !== BUNDLE_FORMAT || m.deno !== Deno.version.deno || !Array.isArray(m.sources)) return undefined;
    return m;
  } catch {
    return undefined;
  }
}

const MARKER = /^\/\/ ((?:[\w.-]+\/)*[\w.-]+\.(?:ts|js))$/;

/**
 * Rewrites `import.meta.url` in one bundled chunk to the source URL of the module it sits in
 * (esbuild starts each module's code with a `// path/to/module.ts` line). Throws on any other
 * `import.meta` use, or one outside a known module.
 */
export function rewriteImportMeta(chunk: string, rootUrl: string, known: ReadonlySet<string>): string {
  let current: string | undefined;
  return chunk.split("\n").map((line) => {
    const m = MARKER.exec(line);
    if (m && known.has(m[1])) current = m[1];
    if (!line.includes("import.meta")) return line;
    if (current === undefined) throw new Error(`import.meta outside a known module: ${line.trim()}`);
    const src = JSON.stringify(new URL(current, rootUrl).href);
    const out = line.replaceAll("import.meta.url", src);
    if (out.includes("import.meta")) throw new Error(`${current}: unsupported import.meta use: ${line.trim()}`);
    return out;
  }).join("\n");
}

function run(root: string, args: string[]): string {
  const out = new Deno.Command(Deno.execPath(), {
    args,
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
    env: { NO_COLOR: "1" },
  }).outputSync();
  if (!out.success) {
    // Deno's message, without the (empty) backtrace it appends.
    const text = dec.decode(out.stderr).split("Stack backtrace:")[0].trim();
    throw new Error(`deno ${args[0]} failed (${out.code}): ${text.split("\n").slice(-3).join(" ")}`);
  }
  return dec.decode(out.stdout);
}

/**
 * The local modules of the shell's graph, static and dynamic imports, relative to root: also the
 * ones deno info could not load (a syntax error, a missing file), so fixing them is a change.
 * The bundler (this file) is a source of every bundle too.
 */
function shellSources(root: string): string[] {
  const info = JSON.parse(run(root, ["info", "--json", "--no-config", ENTRY])) as {
    modules: { specifier: string }[];
  };
  const prefix = fileUrl(root) + "/";
  const paths = info.modules.flatMap((m) =>
    m.specifier.startsWith(prefix) ? [decodeURIComponent(m.specifier.slice(prefix.length))] : []
  );
  if (!paths.includes(ENTRY)) throw new Error(`deno info did not list ${ENTRY}`);
  return [...new Set([...paths, SELF])].sort();
}

/** Builds a bundle into `bundleDir` and makes it current. Returns the manifest written. */
export function buildBundle(root: string, bundleDir: string): Manifest {
  const rootUrl = fileUrl(root) + "/";
  let sources: SourceStamp[] = [];
  const tmp = `${bundleDir}/tmp-${Deno.pid}-${Date.now()}`;
  let manifest: Manifest;
  try {
    // Stamps first: a source edited while the bundler runs is then newer than its stamp.
    sources = shellSources(root).map((p) => statStamp(root, p));
    run(root, ["bundle", "--quiet", "--no-config", "--platform", "deno", "--code-splitting", "--outdir", tmp, ENTRY]);
    const known = new Set(sources.map((s) => s[0]));
    for (const e of Deno.readDirSync(tmp)) {
      if (!e.isFile || !e.name.endsWith(".js")) continue;
      const p = `${tmp}/${e.name}`;
      Deno.writeTextFileSync(p, rewriteImportMeta(Deno.readTextFileSync(p), rootUrl, known));
    }
    Deno.statSync(`${tmp}/${ENTRY_CHUNK}`);
    const dir = `b-${Date.now()}-${Deno.pid}`;
    Deno.renameSync(tmp, `${bundleDir}/${dir}`);
    manifest = { format: BUNDLE_FORMAT, deno: Deno.version.deno, dir, sources };
  } catch (e) {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* not made */ }
    manifest = { format: BUNDLE_FORMAT, deno: Deno.version.deno, dir: null, error: String(e), sources };
  }
  const next = `${bundleDir}/current.json.${Deno.pid}`;
  Deno.writeTextFileSync(next, JSON.stringify(manifest));
  Deno.renameSync(next, `${bundleDir}/current.json`);
  pruneOld(bundleDir, manifest.dir);
  return manifest;
}

function pruneOld(bundleDir: string, current: string | null): void {
  const entries = [...Deno.readDirSync(bundleDir)].filter((e) => e.isDirectory).map((e) => e.name);
  const madeAt = (name: string) => Number(name.split("-")[1]);
  const old = entries.filter((n) => n.startsWith("b-") && n !== current).sort((a, b) => madeAt(b) - madeAt(a));
  // Past the newest KEEP_OLD and old enough; and what a build that died left (tmp-<pid>-<ms>).
  const gone = [
    ...old.slice(KEEP_OLD).filter((n) => Date.now() - madeAt(n) > KEEP_MS),
    ...entries.filter((n) => n.startsWith("tmp-") && Date.now() - Number(n.split("-")[2]) > STALE_LOCK_MS),
  ];
  for (const name of gone) {
    try {
      Deno.removeSync(`${bundleDir}/${name}`, { recursive: true });
    } catch { /* another process pruned it */ }
  }
}

/** Takes the build lock; false when another live build holds it. */
function lock(path: string): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      Deno.openSync(path, { write: true, createNew: true }).close();
      return true;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      const age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
      if (age < STALE_LOCK_MS) return false;
      Deno.removeSync(path);
    }
  }
  return false;
}

/**
 * Where to load the shell from: the current bundle when it matches the sources, else (after
 * building it, unless a build is running elsewhere or the last one failed for these sources)
 * the sources. `mode`: "auto" (default), "off" (sources), "require" (throws unless the bundle).
 */
export function shellEntry(root: string, mode: "auto" | "off" | "require" = "auto"): ShellEntry {
  const sources = { url: `${fileUrl(root)}/${ENTRY}`, from: "sources" as const };
  if (mode === "off") return { ...sources, reason: "KVMSH_BUNDLE=0" };
  const bundleDir = `${root}/.tools/bundle`;
  const found = (m: Manifest | undefined): ShellEntry | undefined => {
    if (!m || !sourcesUnchanged(root, m.sources)) return undefined;
    if (m.dir === null) return { ...sources, reason: `the last bundle build failed: ${m.error}` };
    // A bundle directory removed by hand: build again.
    if (statStamp(bundleDir, `${m.dir}/${ENTRY_CHUNK}`)[2] < 0) return undefined;
    return { url: fileUrl(`${bundleDir}/${m.dir}/${ENTRY_CHUNK}`), from: "bundle" };
  };
  let entry = found(readManifest(bundleDir));
  if (!entry) {
    try {
      Deno.mkdirSync(bundleDir, { recursive: true });
      const lockPath = `${bundleDir}/build.lock`;
      if (lock(lockPath)) {
        try {
          // Another process may have finished a build between our check and the lock.
          entry = found(readManifest(bundleDir)) ?? found(buildBundle(root, bundleDir));
        } finally {
          Deno.removeSync(lockPath);
        }
      } else entry = { ...sources, reason: "a bundle build is running in another process" };
    } catch (e) {
      entry = { ...sources, reason: `cannot build the bundle: ${e}` };
    }
  }
  entry ??= { ...sources, reason: "the sources changed during the bundle build" };
  if (mode === "require" && entry.from !== "bundle") throw new Error(`KVMSH_BUNDLE=1: ${entry.reason}`);
  return entry;
}
