/**
 * The start-up bundle. A `kvmsh -c "vm create; run guest.bin"` process is mostly start-up: Deno
 * loads each TypeScript module on its own (emit cache, code cache, instantiation), which for the
 * ~70 modules the shell needs cost ~17 ms of a ~60 ms process. `./kvmsh` therefore runs the shell
 * (shell/cli.ts and everything it imports, statically or by `import()`) from a code-split bundle
 * made by `deno bundle`, kept in `.tools/bundle/`: an entry chunk for the wrapper
 * (`bundle_main.js`, from shell/bundle_main.ts), `cli.js` for main.ts, and a chunk per lazily
 * loaded command group (bench/README.md has the measurements).
 *
 * The bundle is a cache of the sources, never a second copy to maintain:
 * - it is used only while no source is newer than the build (make's rule), nor any directory
 *   holding one (a source removed, renamed or added there): the local modules of the shell's
 *   graph (`deno info --json`), this file, the `./kvmsh` wrapper and the Deno binary. The
 *   build's `stamp` file gets the newest of their mtimes (`touch -r`, to the nanosecond, before
 *   bundling: a source edited while the bundler runs is newer). One check, in sh: `current.sh`,
 *   written with the bundle; `./kvmsh` sources it and runs `bundle_main.js` directly (no
 *   Deno-side check, no entry point from the sources: ~1.5 ms of every start), and
 *   {@link shellEntry} runs the same check through `sh`. A bundle serves only the tree it was
 *   built in (its chunks name the sources by absolute URL): a copy or a move bundles again; a
 *   module bundled that the stamped list lacks (added during the build) records nothing, so the
 *   next start bundles again. Not seen (as by make): a source overwritten in place by an older
 *   copy that keeps its old mtime (`cp -p`; `rsync -a` renames into place, which its directory
 *   shows), or any change while a source's mtime lies in the future; `touch` it, or
 *   `KVMSH_BUNDLE=0`;
 * - the chunks' `import()`s of lazily loaded chunks name them by a computed string, so Deno does
 *   not read those chunks at every start ({@link deferLazyImports});
 * - `import.meta.url` in a bundled module is rewritten to that module's own source URL, so paths
 *   computed from it (the guest library, the recorder's `mod.ts`, the gmem child) still name the
 *   source tree; any other `import.meta` use fails the build;
 * - a build that fails (no esbuild from npm, read-only tree) is recorded with its stamp,
 *   so the shell runs from the sources until they change, without retrying each start;
 * - a build in progress elsewhere (lock file) means: run from the sources this time.
 *
 * `KVMSH_BUNDLE=0` runs the sources always; `KVMSH_BUNDLE=1` requires the bundle (fails loudly);
 * `KVMSH_BUNDLE_REPORT=1` says which ran and why (both go through main.ts).
 * `kvmsh scenario` never uses the bundled library: a scenario file imports the source `mod.ts`,
 * and one process must not hold two copies of it (the kick's signal handler, class identity);
 * bundle_main.js loads the bundled shell only for the shell.
 * @module
 */

/** Bumped when the bundle's layout or rewriting changes: older bundles are then rebuilt. */
export const BUNDLE_FORMAT = 2;

/** The modules the bundle is made from (relative to the project root). */
const ENTRIES = ["shell/cli.ts", "shell/bundle_main.ts"];
/** cli.ts's chunk: what main.ts imports (exports runShell). */
const CLI_CHUNK = "cli.js";
/** bundle_main.ts's chunk: what ./kvmsh runs. */
const MAIN_CHUNK = "bundle_main.js";
/** This file and the wrapper: how a bundle is made and run is part of what it is made from. */
const SELF = "shell/start_bundle.ts";
const WRAPPER = "kvmsh";
/** A build lock older than this is a dead build's: taken over. */
const STALE_LOCK_MS = 120_000;
/**
 * Old bundles are removed once there are more than KEEP_OLD of them and they are older than
 * KEEP_MS: a prompt started from one imports its command chunks later, maybe days later.
 */
const KEEP_OLD = 3;
const KEEP_MS = 7 * 24 * 3600_000;

/** `.tools/bundle/current.json`. */
export interface Manifest {
  format: number;
  deno: string;
  /** Directory (under the bundle dir) holding the chunks; null when the build failed. */
  dir: string | null;
  /** Directory (under the bundle dir) holding the build's `stamp` (its mtime: the newest source's). */
  stampDir: string;
  /**
   * The project root it was built for: its chunks name the sources by absolute URL, so a moved or
   * copied tree (mtimes kept) must not use it.
   */
  root: string;
  error?: string;
  /** What the stamp stands for: project-relative paths, and the Deno binary's absolute one. */
  sources: string[];
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

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A word for sh, quoted. */
function shQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The directories holding the project's sources ("" for the root), each once. */
function sourceDirs(sources: string[]): string[] {
  const dirs = sources.filter((p) => !p.startsWith("/")).map((p) =>
    p.includes("/") ? p.slice(0, p.lastIndexOf("/")) : ""
  );
  return [...new Set(dirs)].sort();
}

/**
 * `current.sh`: the bundle's name, whether its build worked, and `kvmsh_bundle_current`: true
 * while `$here` is the directory it was built in, no source, and no directory holding one, is
 * newer than the build's stamp, and no source missing when stamped has appeared (`present` tells
 * which existed). A source removed or renamed away changes its directory's mtime, so a file's
 * own test needs only `-nt` (two stats, where adding `! -e` made three: ~0.3 ms of every start).
 * `$here` is the project root.
 */
export function currentScript(m: Manifest, present: boolean[]): string {
  const q = (path: string) => path.startsWith("/") ? shQuote(path) : path ? `"$here"/${shQuote(path)}` : `"$here"`;
  const tests = [
    ...m.sources.map((path, i) => present[i] ? `[ ${q(path)} -nt "$kvmsh_t" ]` : `[ -e ${q(path)} ]`),
    ...sourceDirs(m.sources.filter((_, i) => present[i])).map((dir) => `[ ${q(dir)} -nt "$kvmsh_t" ]`),
  ];
  return [
    `# The start-up bundle ./kvmsh runs while it is current: written by shell/start_bundle.ts (format`,
    `# ${BUNDLE_FORMAT}). Sourced with $here set to the project root.`,
    `kvmsh_bundle=${shQuote(m.dir ?? "")}`,
    `kvmsh_bundle_ok=${m.dir === null ? 0 : 1}`,
    `kvmsh_bundle_current() {`,
    `  kvmsh_t="$here"/.tools/bundle/${shQuote(m.stampDir)}/stamp`,
    `  if [ ! -e "$kvmsh_t" ] || ! [ "$here" -ef ${shQuote(m.root)} ] ||`,
    `    ${m.sources.length ? tests.join(" ||\n    ") : "true"}; then`,
    `    return 1`,
    `  fi`,
    `}`,
    ``,
  ].join("\n");
}

/**
 * True when `root`'s current.sh says its bundle (or failed build) matches the sources: the
 * check ./kvmsh makes, run the same way.
 */
export function bundleCurrent(root: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", '. "$here/.tools/bundle/current.sh" && kvmsh_bundle_current', "sh"],
      env: { here: root },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false; // no sh to run: not known to be current
  }
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

/**
 * Makes each `import("./chunk.js")` of a lazily loaded chunk opaque to Deno's module graph
 * (`import(String("./chunk.js"))`, resolved the same way when it runs). Deno reads every
 * statically named `import()` target, and their imports, before the main module starts: the
 * command groups a `kvmsh -c "vm create; run …"` never loads cost it ~0.8 ms. The entry chunk's
 * `import("./cli.js")` stays as it is: that graph is wanted at start.
 */
export function deferLazyImports(chunk: string): string {
  return chunk.replace(/\bimport\("(\.\/[\w.-]+\.js)"\)/g, 'import(String("$1"))');
}

/** A module bundled that deno info had not listed: added to the shell while it was bundled. */
class SourcesChanged extends Error {
  constructor(readonly modules: string[]) {
    super(`modules added to the shell during the bundle build: ${modules.join(", ")}`);
  }
}

/**
 * The project modules a chunk holds (esbuild's `// path/to/module.ts` lines) that are not among
 * `known`, the sources listed (and stamped) before bundling.
 */
export function unlistedModules(chunk: string, known: ReadonlySet<string>): string[] {
  return [...chunk.matchAll(new RegExp(MARKER.source, "gm"))].map((m) => m[1]).filter((p) => !known.has(p));
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
 * What a bundle is made from, relative to root: the local modules of the shell's graph, static and
 * dynamic imports, also the ones deno info could not load (a syntax error, a missing file), so
 * fixing them is a change; the bundler (this file) and the wrapper; and, by absolute path, the
 * Deno binary (an upgrade bundles again with the new bundler).
 */
function shellSources(root: string): string[] {
  const prefix = fileUrl(root) + "/";
  const paths: string[] = [];
  for (const entry of ENTRIES) {
    const info = JSON.parse(run(root, ["info", "--json", "--no-config", entry])) as {
      modules: { specifier: string }[];
    };
    const local = info.modules.flatMap((m) =>
      m.specifier.startsWith(prefix) ? [decodeURIComponent(m.specifier.slice(prefix.length))] : []
    );
    if (!local.includes(entry)) throw new Error(`deno info did not list ${entry}`);
    paths.push(...local);
  }
  return [...new Set([...paths, SELF, WRAPPER])].sort().concat(Deno.execPath());
}

/**
 * Makes `<dir>/stamp` with the mtime of the newest source or source directory (`touch -r`: exact,
 * where a Deno Date has milliseconds only); returns which sources exist. Taken before bundling: a source edited
 * while the bundler runs is newer than the stamp.
 */
function stampSources(root: string, sources: string[], dir: string): boolean[] {
  const abs = (p: string) => p.startsWith("/") ? p : `${root}/${p}`;
  const present = sources.map((p) => exists(abs(p)));
  const there = sources.filter((_, i) => present[i]);
  if (there.length === 0) throw new Error("no sources to stamp");
  // The directories count too (currentScript): the stamp is as new as the newest of them all.
  const files = [...there.map(abs), ...sourceDirs(there).map((d) => d ? `${root}/${d}` : root)];
  Deno.mkdirSync(dir, { recursive: true });
  const out = new Deno.Command("sh", {
    args: [
      "-c",
      'stamp=$1; shift; n=$1; for f; do if [ "$f" -nt "$n" ]; then n=$f; fi; done; touch -r "$n" "$stamp"',
      "sh",
      `${dir}/stamp`,
      ...files,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).outputSync();
  if (!out.success) throw new Error(`stamping the sources failed: ${dec.decode(out.stderr).trim()}`);
  return present;
}

/** Writes `text` to `path` in one step (a reader sees the old file or the new one). */
function replaceFile(path: string, text: string): void {
  const next = `${path}.${Deno.pid}`;
  Deno.writeTextFileSync(next, text);
  Deno.renameSync(next, path);
}

/** Builds a bundle into `bundleDir` and makes it current. Returns the manifest written. */
export function buildBundle(root: string, bundleDir: string): Manifest {
  const rootUrl = fileUrl(root) + "/";
  let sources: string[] = [];
  let present: boolean[] = [];
  const tmp = `${bundleDir}/tmp-${Deno.pid}-${Date.now()}`;
  const name = `b-${Date.now()}-${Deno.pid}`;
  let dir: string | null = null;
  let error: string | undefined;
  try {
    // Stamps first: a source edited while the bundler runs then no longer matches its stamp.
    sources = shellSources(root);
    present = stampSources(root, sources, tmp);
    const out = `${tmp}/chunks`;
    run(root, [
      "bundle",
      "--quiet",
      "--no-config",
      "--platform",
      "deno",
      "--code-splitting",
      "--outdir",
      out,
      ...ENTRIES,
    ]);
    const known = new Set(sources);
    for (const e of Deno.readDirSync(out)) {
      if (!e.isFile || !e.name.endsWith(".js")) continue;
      const p = `${out}/${e.name}`;
      const raw = Deno.readTextFileSync(p);
      const added = unlistedModules(raw, known);
      if (added.length) throw new SourcesChanged(added);
      const text = rewriteImportMeta(raw, rootUrl, known);
      Deno.writeTextFileSync(p, e.name === MAIN_CHUNK ? text : deferLazyImports(text));
      Deno.renameSync(p, `${tmp}/${e.name}`);
    }
    Deno.removeSync(out);
    Deno.statSync(`${tmp}/${CLI_CHUNK}`);
    Deno.statSync(`${tmp}/${MAIN_CHUNK}`);
    dir = name;
  } catch (e) {
    error = String(e);
    try {
      Deno.removeSync(`${tmp}/chunks`, { recursive: true });
    } catch { /* not made */ }
    if (e instanceof SourcesChanged) {
      // Nothing recorded: the sources it saw are not those it bundled, and the next start,
      // finding them newer than the last build, bundles again.
      Deno.removeSync(tmp, { recursive: true });
      return { format: BUNDLE_FORMAT, deno: Deno.version.deno, dir: null, stampDir: name, root, error, sources };
    }
  }
  // A failed build keeps its stamp (when it got that far): the sources run until they change.
  Deno.mkdirSync(tmp, { recursive: true });
  Deno.renameSync(tmp, `${bundleDir}/${name}`);
  const manifest: Manifest = {
    format: BUNDLE_FORMAT,
    deno: Deno.version.deno,
    dir,
    stampDir: name,
    root,
    ...(error === undefined ? {} : { error }),
    sources,
  };
  replaceFile(`${bundleDir}/current.json`, JSON.stringify(manifest));
  // Last: ./kvmsh reads only this file.
  replaceFile(`${bundleDir}/current.sh`, currentScript(manifest, present));
  pruneOld(bundleDir, name);
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

/** Blocks the thread for `ms` (start-up code: no event loop to wait on). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Takes the build lock; false when another live build holds it. */
function lock(path: string): boolean {
  for (let tries = 0; tries < 2; tries++) {
    try {
      Deno.openSync(path, { write: true, createNew: true }).close();
      return true;
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      let age: number;
      try {
        age = Date.now() - (Deno.statSync(path).mtime?.getTime() ?? 0);
      } catch {
        continue; // its build just ended and removed it: try again
      }
      if (age < STALE_LOCK_MS) return false;
      try {
        Deno.removeSync(path);
      } catch { /* another process took it over first */ }
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
  const sources = { url: `${fileUrl(root)}/${ENTRIES[0]}`, from: "sources" as const };
  if (mode === "off") return { ...sources, reason: "KVMSH_BUNDLE=0" };
  const bundleDir = `${root}/.tools/bundle`;
  const found = (m: Manifest | undefined): ShellEntry | undefined => {
    if (!m || !bundleCurrent(root)) return undefined;
    if (m.dir === null) return { ...sources, reason: `the last bundle build failed: ${m.error}` };
    // A bundle directory removed by hand: build again.
    if (!exists(`${bundleDir}/${m.dir}/${CLI_CHUNK}`)) return undefined;
    return { url: fileUrl(`${bundleDir}/${m.dir}/${CLI_CHUNK}`), from: "bundle" };
  };
  let entry = found(readManifest(bundleDir));
  // KVMSH_BUNDLE=1 waits for a build running elsewhere (then uses it, or builds); "auto" runs the
  // sources meanwhile.
  const deadline = Date.now() + (mode === "require" ? STALE_LOCK_MS : 0);
  while (!entry) {
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
        break;
      }
      if (Date.now() >= deadline) {
        entry = { ...sources, reason: "a bundle build is running in another process" };
        break;
      }
      sleepSync(50);
      entry = found(readManifest(bundleDir));
    } catch (e) {
      entry = { ...sources, reason: `cannot build the bundle: ${e}` };
    }
  }
  entry ??= { ...sources, reason: "the sources changed during the bundle build" };
  if (mode === "require" && entry.from !== "bundle") throw new Error(`KVMSH_BUNDLE=1: ${entry.reason}`);
  return entry;
}
