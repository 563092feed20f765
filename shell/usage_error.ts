/**
 * A mistake in what the user typed (unknown command, missing argument, bad number, bad flag
 * name, closed object). Reported in one line; nothing is sent to the kernel.
 * @module
 */

/** Bad input: nothing was sent. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }

  /** JSON form for `--json`. */
  toJSON(): Record<string, unknown> {
    return { error: "UsageError", message: this.message };
  }
}
