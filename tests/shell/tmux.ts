/**
 * The real terminal for the TTY tests: kvmsh in a tmux session on a private tmux server (one
 * socket per test process), with its screen, keys, and the process in the pane.
 * @module
 */

import { KVMSH, ROOT } from "./helpers.ts";

/** A private tmux server; `kill()` ends it and every session in it. */
export class Tmux {
  readonly #sock: string;

  /** `prefix` names the socket (one per test process). */
  constructor(prefix: string) {
    this.#sock = `${prefix}-${Deno.pid}`;
  }

  /** Runs `tmux args…` on this server; its stdout. */
  run(...args: string[]): string {
    const o = new Deno.Command("tmux", { args: ["-L", this.#sock, ...args], stdout: "piped", stderr: "piped" })
      .outputSync();
    return new TextDecoder().decode(o.stdout);
  }

  /**
   * Starts `./kvmsh` in session `name` (`cols` × 50) from the repo root, after the shell words
   * `envPrefix` (e.g. `env -u NO_COLOR KVMSH_HISTORY=…`); the shell's exit status shows as EXIT=n.
   */
  start(name: string, envPrefix: string, cols = 200): void {
    this.run(
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      String(cols),
      "-y",
      "50",
      `cd ${ROOT} && ${envPrefix} ${KVMSH}; echo EXIT=$?; sleep 60`,
    );
  }

  /** The pane's text (`escapes`: with SGR codes; `history`: that many lines of scroll-back, joined). */
  screen(name: string, o: { escapes?: boolean; history?: number } = {}): string {
    return this.run(
      "capture-pane",
      "-p",
      ...(o.escapes ? ["-e"] : []),
      ...(o.history ? ["-J", "-S", `-${o.history}`] : []),
      "-t",
      name,
    );
  }

  /** Waits until the screen matches `re`; the screen then. */
  async waitFor(name: string, re: RegExp, ms = 20_000, history?: number): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const s = this.screen(name, { history });
      if (re.test(s)) return s;
      if (Date.now() > end) throw new Error(`timeout waiting for ${re}; screen:\n${s}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Types keys (tmux key names: `Enter`, `Tab`, `C-c`, …). */
  keys(name: string, ...k: string[]): void {
    this.run("send-keys", "-t", name, ...k);
  }

  /** The process running in the pane (the kvmsh the pane's shell started). */
  childPid(name: string): number {
    const pane = this.run("display-message", "-p", "-t", name, "#{pane_pid}").trim();
    const o = new Deno.Command("pgrep", { args: ["-P", pane], stdout: "piped" }).outputSync();
    const pids = new TextDecoder().decode(o.stdout).trim().split("\n").filter(Boolean).map(Number);
    if (pids.length !== 1) throw new Error(`children of the pane: ${pids}`);
    return pids[0];
  }

  /** Ends the server and its sessions. */
  kill(): void {
    this.run("kill-server");
  }
}
