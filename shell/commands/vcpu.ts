/**
 * vCPU commands: `vcpu create`, `regs [set r=v …]`, `sregs`, `run <guest>` (the API's
 * runGuest: load, registers, exit loop), and `step`/`continue` (debug_step.ts), which go on from
 * where `run` stopped. Ctrl-C during `run` stops the guest through the API's kick and the prompt
 * comes back.
 * @module
 */

import {
  codeAt,
  formatExit,
  GUEST_MEMFD_FLAGS,
  guestMemoryFlags,
  hex,
  hostFile,
  type HostFileInfo,
  KvmError,
  readHostFile,
  REG_NAMES,
  runGuest,
} from "../../core.ts";
import { big, ident, int, str } from "../ts_literal.ts";
import { choice, flags, num, small } from "../values.ts";
import { UsageError } from "../usage_error.ts";
import { codeLine, consoleLines, conversionLine, guestOutput } from "./guest_view.ts";
import { adoptRunObjects, parseTimeout, vcpuOf, vcpuRef } from "./vcpu_ref.ts";
import type { Args, CommandImpls } from "./types.ts";
import type { Session } from "../session.ts";
import { stopStatus } from "./stop_status.ts";
import { gmemCapWarnings } from "./gmem_caps.ts";

function regArgs(a: Args): { vcpu?: string; set?: Record<string, bigint> } {
  const pos = [...a.pos];
  const vcpu = pos[0] && /^vcpu\d+$/.test(pos[0]) ? pos.shift() : undefined;
  if (!pos.length) return { vcpu };
  if (pos[0] !== "set") throw new UsageError(`regs: expected 'set r=v …', got '${pos[0]}'`);
  if (pos.length < 2) throw new UsageError("regs set: give at least one r=v (e.g. rax=1 rip=0x1000)");
  const set: Record<string, bigint> = {};
  for (const kv of pos.slice(1)) {
    const m = /^([a-z0-9]+)=(.+)$/i.exec(kv);
    if (!m) throw new UsageError(`regs set: '${kv}' is not r=v`);
    const r = m[1].toLowerCase(); // RAX=5 as rax=5
    if (!(REG_NAMES as string[]).includes(r)) {
      throw new UsageError(`unknown register '${m[1]}' (known: ${REG_NAMES.join(", ")})`);
    }
    if (r in set) throw new UsageError(`regs set: ${r} given twice`);
    set[r] = num(m[2], r);
  }
  return { vcpu, set };
}

interface RunArgs {
  guest: string;
  asm: boolean;
  mode?: "real" | "long";
  timeoutMs: number;
  memory?: string;
  userspace?: "none" | "gmem" | "anon";
  args: bigint[];
  /** KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL) with the MAP_GPA_RANGE bit before the run. */
  hypercallExit: boolean;
  vcpu?: string;
  /** How the recorded script names the vCPU given with --vcpu. */
  vcpuRef?: string;
}

function runArgs(a: Args, ctx: Session): RunArgs {
  const r: RunArgs = {
    guest: a.pos[0],
    asm: a.flags.asm === true,
    timeoutMs: parseTimeout(a.flags.timeout) ?? 5000,
    args: [],
    hypercallExit: a.flags["exit-hypercall"] === true,
  };
  if (a.flags.mode !== undefined) r.mode = choice(String(a.flags.mode), ["real", "long"] as const, "--mode");
  if (a.flags.memory !== undefined) {
    const m = String(a.flags.memory);
    if (m !== "anon" && m !== "gmem" && !m.startsWith("gmem:")) {
      throw new UsageError(`bad --memory '${m}' (anon, gmem, or gmem:<flags> like gmem:mmap,init-shared)`);
    }
    if (m.startsWith("gmem:")) flags(GUEST_MEMFD_FLAGS, m.slice("gmem:".length), "--memory"); // a typo is a usage error

    r.memory = m;
  }
  if (a.flags.userspace !== undefined) {
    r.userspace = choice(String(a.flags.userspace), ["none", "gmem", "anon"] as const, "--userspace");
    // runGuest reads `userspace` only for gmem memory: refuse rather than ignore it.
    if (!r.memory?.startsWith("gmem")) {
      throw new UsageError(
        `--userspace ${r.userspace} applies to guest_memfd memory only: add --memory gmem:<flags> (the main memory is anonymous)`,
      );
    }
  }
  if (a.flags.arg !== undefined) {
    // Repeated flags arrive joined by commas (parse.ts), so `--arg 1 --arg 2` is `--arg 1,2`.
    r.args = String(a.flags.arg).split(",").filter(Boolean).map((x) => num(x, "--arg"));
    if (r.args.length > 6) throw new UsageError("--arg: at most 6 values (rdi rsi rdx rcx r8 r9)");
  }
  // Without --vcpu: the VM's default (the one the last run used, else its first), named in the
  // recording too, so a replay runs the same vCPU; none yet: runGuest creates the first.
  const name = a.flags.vcpu !== undefined ? vcpuOf(ctx, String(a.flags.vcpu)).name : ctx.defaultVcpu();
  if (name !== undefined) {
    r.vcpu = name;
    r.vcpuRef = vcpuRef(ctx, name);
  }
  return r;
}

function specLit(r: RunArgs): string {
  // A file path is recorded absolute, so the script replays from any directory.
  const parts = [r.asm ? `asm: ${str(r.guest)}` : `image: ${str(absolute(r.guest))}`];
  if (r.mode) parts.push(`mode: ${str(r.mode)}`);
  parts.push(`timeoutMs: ${int(r.timeoutMs)}`);
  if (r.memory) parts.push(`memory: ${str(r.memory)} as kvmsh.GuestMemory`);
  if (r.userspace) parts.push(`userspace: ${str(r.userspace)}`);
  if (r.args.length) parts.push(`args: [${r.args.map(big).join(", ")}]`);
  if (r.hypercallExit) parts.push("hypercallExit: true");
  if (r.vcpuRef) parts.push(`vcpu: ${r.vcpuRef}`);
  return `{ ${parts.join(", ")} }`;
}

function absolute(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path;
  }
}

/** What a live `run` saw, for the recorded replay check. */
interface RunObserved {
  stop: string;
  exit: string;
  console: string;
  exitCode: { value: number; status: number } | null;
  ucalls: readonly { cmd: string; args: readonly bigint[]; message: string }[];
}

/**
 * The expectGuestResult expectation of a recorded run: the last exit, the console, the exit code
 * (or none) and every ucall with its args and message; the stop reason too, unless the run was
 * stopped from outside by its timeout or Ctrl-C (when that lands is not the guest's doing).
 */
function guestResultLit(o: RunObserved): string {
  const parts: string[] = [];
  if (o.stop !== "interrupt" && o.stop !== "timeout") parts.push(`stop: ${str(o.stop)}`);
  parts.push(`exit: ${str(o.exit)}`, `console: ${str(o.console)}`);
  parts.push(
    `exitCode: ${o.exitCode ? `{ value: ${int(o.exitCode.value)}, status: ${int(o.exitCode.status)} }` : "null"}`,
  );
  const ucall = (u: RunObserved["ucalls"][number]) =>
    `{ cmd: ${str(u.cmd)}, args: [${u.args.map(big).join(", ")}], message: ${str(u.message)} }`;
  parts.push(`ucalls: [${o.ucalls.map(ucall).join(", ")}]`);
  return `{ ${parts.join(", ")} }`;
}

/** Why a run stopped, for people: the exit's name when an exit ended it (`HLT`, `SHUTDOWN`), else the reason. */
export function stopName(r: { stop: string; exit: { name: string } }): string {
  return r.stop === "exit" ? r.exit.name : r.stop;
}

/** The run was stopped from outside the guest (its timeout, a deadline, Ctrl-C). */
export function stoppedOutside(stop: string): boolean {
  return stop === "timeout" || stop === "deadline" || stop === "interrupt";
}

/** The vcpu commands' behaviour (their table entries: specs/vcpu.ts). */
export const vcpuImpl: CommandImpls = {
  "vcpu create": {
    run(ctx, a) {
      const vm = ctx.vm();
      const id = a.flags.id === undefined ? undefined : small(a.flags.id, "--id");
      const v = vm.obj.createVcpu(id);
      const name = ctx.addVcpu(v, vm.name);
      return {
        lines: [`${name}: id ${v.id}, fd ${v.fd}, kvm_run ${hex(v.mmapSize)} bytes, vm ${vm.name}`],
        data: { name, id: v.id, fd: v.fd, vm: vm.name },
        bind: name,
      };
    },
    record(a, ctx) {
      const id = a.flags.id === undefined ? "" : int(small(a.flags.id, "--id"));
      return [{ expr: `${ident(ctx.vm().name)}.createVcpu(${id})` }];
    },
  },
  "regs": {
    run(ctx, a) {
      const r = regArgs(a);
      const v = vcpuOf(ctx, r.vcpu);
      if (r.set) v.obj.setRegs(r.set);
      const regs = v.obj.getRegs() as Record<string, bigint>;
      const names = Object.keys(regs);
      const lines: string[] = [];
      for (let i = 0; i < names.length; i += 4) {
        lines.push(
          names.slice(i, i + 4).map((n) => `${n.padStart(6)} ${`0x${regs[n].toString(16).padStart(16, "0")}`}`).join(
            "  ",
          ),
        );
      }
      return { lines: [`${v.name}:`, ...lines], data: { vcpu: v.name, regs } };
    },
    record(a, ctx) {
      const r = regArgs(a);
      const v = vcpuRef(ctx, r.vcpu);
      if (!r.set) return [{ expr: `${v}.getRegs()` }];
      const body = Object.entries(r.set).map(([k, x]) => `${k}: ${big(x)}`).join(", ");
      return [{ expr: `${v}.setRegs({ ${body} })` }];
    },
  },
  "sregs": {
    run(ctx, a) {
      const v = vcpuOf(ctx, a.pos[0]);
      const s = v.obj.getSregs() as unknown as Record<string, unknown>;
      const lines = [
        `${v.name}: cr0 ${hex(s.cr0 as bigint)} cr2 ${hex(s.cr2 as bigint)} cr3 ${hex(s.cr3 as bigint)} cr4 ${
          hex(s.cr4 as bigint)
        } cr8 ${hex(s.cr8 as bigint)} efer ${hex(s.efer as bigint)} apic_base ${hex(s.apic_base as bigint)}`,
      ];
      for (const seg of ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"]) {
        const g = s[seg] as Record<string, number | bigint> | undefined;
        if (!g) continue;
        lines.push(
          `  ${seg.padEnd(3)} sel ${hex(g.selector)} base ${hex(g.base)} limit ${
            hex(g.limit)
          } type ${g.type} dpl ${g.dpl} l ${g.l} db ${g.db} present ${g.present}`,
        );
      }
      for (const t of ["gdt", "idt"]) {
        const d = s[t] as Record<string, number | bigint> | undefined;
        if (d) lines.push(`  ${t} base ${hex(d.base)} limit ${hex(d.limit)}`);
      }
      return { lines, data: { vcpu: v.name, sregs: s } };
    },
    record(a, ctx) {
      return [{ expr: `${vcpuRef(ctx, a.pos[0])}.getSregs()` }];
    },
  },
  "run": {
    run(ctx, a) {
      const r = runArgs(a, ctx);
      const vm = ctx.vm();
      const onVcpu = r.vcpu ? vcpuOf(ctx, r.vcpu) : undefined;
      if (onVcpu && onVcpu.vm !== vm.name) {
        throw new UsageError(
          `run: ${onVcpu.name} belongs to ${onVcpu.vm}, and run uses the current VM ${vm.name} (use ${onVcpu.vm} first)`,
        );
      }
      const gmemFlags = guestMemoryFlags(r.memory);
      if (!r.asm) {
        let st: HostFileInfo | undefined;
        try {
          st = hostFile(r.guest);
        } catch (e) {
          if (!(e instanceof KvmError)) throw e;
          throw new UsageError(`run: cannot read '${r.guest}': ${e.errnoName}`);
        }
        if (!st) throw new UsageError(`run: no guest file '${r.guest}' (or give --asm "hlt")`);
        if (st.kind === "directory") throw new UsageError(`run: cannot read '${r.guest}': is a directory`);
        // A device or pipe would be read without end (run /dev/zero), with Ctrl-C held.
        if (st.kind !== "file") throw new UsageError(`run: '${r.guest}' is not a regular file`);
        // A /proc file says size 0 and is not empty: look at what reading it gives.
        if (st.size === 0 && readHostFile(r.guest).length === 0) throw new UsageError(`run: '${r.guest}' is empty`);
      }
      // After the file checks: nothing is sent (nor warned about) for a guest file that is not there.
      if (gmemFlags !== undefined) ctx.pendingWarnings.push(...gmemCapWarnings(vm.obj, vm.name, gmemFlags));
      // Each ucall prints a line as it happens (text mode); --json has them all in `ucalls`. The
      // API's console also holds each ucall print's text: shown once, as its `ucall print:` line,
      // the console lines keep the bytes the guest wrote to its console ports.
      const view = guestOutput(a.json);
      const hadGmems = new Set(ctx.gmems.keys());
      try {
        const res = ctx.blocking(() =>
          runGuest(vm.obj, {
            ...view.callbacks,
            ...(r.asm ? { asm: r.guest } : { image: r.guest }),
            mode: r.mode,
            timeoutMs: r.timeoutMs,
            memory: r.memory as never,
            userspace: r.userspace,
            args: r.args,
            hypercallExit: r.hypercallExit || undefined,
            vcpu: onVcpu?.obj,
          })
        );
        adoptRunObjects(ctx, vm.name, vm.obj);
        ctx.usedVcpu(res.vcpu);
        const lines: string[] = [];
        if (res.hypercallExit !== undefined) {
          lines.push(
            `exit-hypercall: KVM_ENABLE_CAP(KVM_CAP_EXIT_HYPERCALL, KVM_HC_MAP_GPA_RANGE): ${res.hypercallExit}`,
          );
        }
        lines.push(...res.conversions.map(conversionLine), ...consoleLines(view.consoleText(res.console)));
        lines.push(
          `stop: ${stopName(res)}${res.exitCode ? ` (exit code ${hex(res.exitCode.value)})` : ""}; last exit ${
            formatExit(res.exit)
          }; ${res.exits} exits in ${res.elapsedMs.toFixed(1)} ms`,
        );
        // Stopped from outside (timeout, Ctrl-C): where the guest was, e.g. spinning on a vmcall.
        const code = stoppedOutside(res.stop) ? codeAt(res.vcpu) : undefined;
        if (code) lines.push(codeLine(code));
        const status = stopStatus(ctx, "run", res, r.timeoutMs);
        return {
          lines,
          data: {
            vcpu: res.vcpu.name, // as step and continue name it: the default one, or the one run made
            stop: res.stop,
            exit: res.exit,
            console: res.console,
            exitCode: res.exitCode,
            ucalls: res.ucalls,
            conversions: res.conversions,
            ...(res.hypercallExit !== undefined ? { hypercallExit: res.hypercallExit } : {}),
            exits: res.exits,
            elapsedMs: res.elapsedMs,
            ...(code ? { code } : {}),
          },
          observed: {
            stop: res.stop,
            exit: res.exit.name,
            console: res.console,
            exitCode: res.exitCode ?? null,
            ucalls: [...res.ucalls],
          } satisfies RunObserved,
          ...status,
          // The guest_memfd this run made for its memory (`--memory gmem:…`), named in the session:
          // a recording binds it too, so the commands after it that use the name replay.
          sideBinds: [...ctx.gmems.keys()].filter((n) => !hadGmems.has(n)).map((name) => ({
            name,
            expr: `kvmsh.ownMemory(${ident(vm.name)}).gmems[0]`,
          })),
        };
      } finally {
        adoptRunObjects(ctx, vm.name, vm.obj);
      }
    },
    record(a, ctx) {
      const r = runArgs(a, ctx);
      return [{
        expr: `kvmsh.runGuest(${ident(ctx.vm().name)}, ${specLit(r)})`,
        check: (res, out, claim) => [
          `kvmsh.expectGuestResult(${res}, ${guestResultLit(out.observed as RunObserved)}, ${str(claim)});`,
        ],
      }];
    },
  },
};
