/**
 * A real load or store of guest_memfd memory in a child process: the observation the kernel
 * selftests make with TEST_EXPECT_SIGBUS. The child inherits the fd, maps it and touches it;
 * kvmsh reports how it ended (SIGBUS, another signal, or the byte).
 * @module
 */

import { setCloexec } from "./fd.ts";
import { KvmError } from "./errors.ts";
import { ERRNO } from "../ffi/errno.ts";

/** The child's exit code when its mmap failed (errno name on stderr): child_touch_main.ts. */
export const CHILD_MMAP_FAILED = 3;

/** What the child does: load one byte, store one byte, or memset a range. */
export type TouchMode = "read" | "write" | "fill";

/** How the child's access ended. */
export interface TouchResult {
  /** The signal that killed the child (`SIGBUS`, `SIGSEGV`), or null when it exited. */
  signal: string | null;
  /** Exit code when it exited. */
  code: number;
  /** The byte read (read mode) when the access worked. */
  value?: number;
  /** What the child said on stderr (mmap failures). */
  stderr: string;
}

/** The child's module (a URL parsed only when a child runs: the first URL parse costs ~0.3 ms of start-up). */
const childModule = () => new URL("./child_touch_main.ts", import.meta.url).href;

/**
 * Maps file range `mapOffset`+`mapLength` of `fd` in a child Deno process and touches it at
 * `accessOffset` (relative to the mapping): `read`/`write` one byte, or `fill` `length` bytes
 * with `value`. The fd is made inheritable only while the child is spawned, then FD_CLOEXEC is
 * set again so no later child inherits it.
 */
export async function touchInChild(
  fd: number,
  mapOffset: bigint,
  mapLength: bigint,
  accessOffset: bigint,
  mode: TouchMode,
  value = 0,
  length = 1n,
): Promise<TouchResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-config",
      "--allow-ffi",
      childModule(),
      String(fd),
      String(mapOffset),
      String(mapLength),
      String(accessOffset),
      mode,
      String(value),
      String(length),
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
  setCloexec(fd, false);
  let child: Deno.ChildProcess;
  try {
    child = cmd.spawn();
  } finally {
    setCloexec(fd, true);
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  // The child's mmap refused (ENODEV: no mmap flag; EINVAL …): the kernel's answer, as an error,
  // not an access that "worked" with exit code 3.
  const refused = out.code === CHILD_MMAP_FAILED ? /^mmap: (E[A-Z0-9]+)/.exec(stderr) : null;
  if (refused && ERRNO[refused[1]] !== undefined) {
    throw new KvmError({
      syscall: "mmap",
      errno: ERRNO[refused[1]],
      args: { fd, offset: mapOffset, length: mapLength, shared: true, in: "child" },
    });
  }
  return {
    signal: out.signal ?? null,
    code: out.code,
    value: out.success && mode === "read" ? Number(text) : undefined,
    stderr,
  };
}
