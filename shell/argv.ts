/**
 * kvmsh's own command line (before any shell command): `--json`, `--keep-going`, `-c "cmd; cmd"`,
 * `-h`, then the words of one command, or `scenario <files…>`. No imports: the entry point reads
 * it before it decides what to load.
 * @module
 */

/** The usage line kvmsh prints for `-h` and a bad option. */
export const USAGE = `usage: kvmsh [--json] [--keep-going|-k] [-c "cmd; cmd"] [command …]
  kvmsh                      interactive prompt (on a terminal), or commands from stdin
  kvmsh -c "vm create; caps" run commands, stop at the first failure unless --keep-going
  kvmsh caps [--json] [--all] [cap…]
  kvmsh scenario <file.ts>…   run scenarios (KTAP)
  kvmsh help                  every command, and the exit status
  $KVMSH_DEVICE               the KVM device node to open (default /dev/kvm)`;

/** What the command line asks for. */
export type Argv =
  | { kind: "shell"; json: boolean; keepGoing: boolean; scripts: string[]; rest: string[] }
  | { kind: "scenario"; rest: string[] }
  | { kind: "help" }
  | { kind: "usage"; message: string };

/** A command line that runs the shell. */
export type ShellArgv = Extract<Argv, { kind: "shell" }>;

/** Reads kvmsh's own options; `rest` is the command (or the scenario runner's arguments). */
export function parseArgv(argv: string[]): Argv {
  let json = false;
  let keepGoing = false;
  const scripts: string[] = [];
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--json") json = true;
    else if (a === "--keep-going" || a === "-k") keepGoing = true;
    else if (a === "-c") {
      if (i + 1 >= argv.length) return { kind: "usage", message: "kvmsh: -c needs a command string" };
      scripts.push(argv[++i]);
    } else if (a === "-h" || a === "--help") return { kind: "help" };
    else if (a.startsWith("-")) return { kind: "usage", message: `kvmsh: unknown option '${a}'\n${USAGE}` };
    else break;
  }
  const rest = argv.slice(i);
  if (rest[0] === "scenario") return { kind: "scenario", rest: rest.slice(1) };
  if (scripts.length && rest.length) {
    return { kind: "usage", message: `kvmsh: -c and a command (${rest[0]} …) together: give one\n${USAGE}` };
  }
  return { kind: "shell", json, keepGoing, scripts, rest };
}
