/**
 * A real load or store of guest_memfd memory in a child process: the observation the kernel
 * selftests make with TEST_EXPECT_SIGBUS. The child inherits the fd, maps it and touches one
 * byte; kvmsh reports how it ended (SIGBUS, another signal, or the byte).
 * @module
 */

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

const CHILD = new URL("./child_touch_main.ts", import.meta.url);

/**
 * Touches byte `accessOffset` of a mapping of `fd` (file range `mapOffset`, `mapLength`) in a
 * child Deno process. The fd must be inheritable (no FD_CLOEXEC).
 */
export async function touchInChild(
  fd: number,
  mapOffset: bigint,
  mapLength: bigint,
  accessOffset: bigint,
  mode: "read" | "write",
  value = 0,
): Promise<TouchResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--no-config",
      "--allow-ffi",
      CHILD.href,
      String(fd),
      String(mapOffset),
      String(mapLength),
      String(accessOffset),
      mode,
      String(value),
    ],
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  });
  const out = await cmd.output();
  const text = new TextDecoder().decode(out.stdout).trim();
  return {
    signal: out.signal ?? null,
    code: out.code,
    value: out.success && mode === "read" ? Number(text) : undefined,
    stderr: new TextDecoder().decode(out.stderr).trim(),
  };
}
