/**
 * The prompt on a real terminal (tmux): tab completion of commands, sub-commands, flag names,
 * flag values from the FlagSets and object names; persistent history across sessions; Ctrl-C
 * abandons the line and stops a running guest; Ctrl-D leaves with exit code 0; colour on a TTY.
 * Where KVM cannot make the guest_memfd, the gmem create typed is refused (ENOTTY where there is
 * none) and object names are completed on a vCPU instead.
 * @module
 */

import assert from "node:assert/strict";
import { GMEM_MMAP_SKIP_REASON, GMEM_SKIP_REASON, kvmTest } from "../kvm_env.ts";
import { Tmux } from "./tmux.ts";

const t = new Tmux("kvmsh-test");
const screen = (name: string, escapes = false) => t.screen(name, { escapes });
const waitFor = (name: string, re: RegExp) => t.waitFor(name, re, 15_000);
const keys = (name: string, ...k: string[]) => t.keys(name, ...k);
/** Starts kvmsh in session `name` with colour (NO_COLOR unset) and history file `history`. */
const start = (name: string, history: string) => t.start(name, `env -u NO_COLOR KVMSH_HISTORY=${history}`, 160);

kvmTest("tty: completion, history, Ctrl-C, Ctrl-D at a real prompt (tmux)", async () => {
  const gmem = GMEM_MMAP_SKIP_REASON === undefined;
  const dir = await Deno.makeTempDir();
  const hist = `${dir}/history`;
  try {
    start("a", hist);
    await waitFor("a", /kvmsh>\s*$/m);
    // Colour on a terminal: the prompt is styled.
    assert.ok(screen("a", true).includes("\u001b[36m"), "the prompt is not coloured on a TTY");
    // Command and sub-command completion.
    keys("a", "vm cr", "Tab");
    await waitFor("a", /kvmsh> vm create\s*$/m);
    keys("a", "Enter");
    await waitFor("a", /vm0: fd \d+, type default \(current\)/);
    // Flag name and flag value completion (from GUEST_MEMFD_FLAGS).
    keys("a", "gmem create --si", "Tab");
    await waitFor("a", /gmem create --size\s*$/m);
    keys("a", "2M --flags mmap,", "Tab");
    await waitFor("a", /--flags mmap,init-shared$/m);
    keys("a", "Enter");
    if (gmem) {
      await waitFor("a", /gmem0: fd \d+, size 0x200000 \(2 MiB\), flags mmap\|init-shared/);
      // Object name completion.
      keys("a", "gmem stat gm", "Tab");
      await waitFor("a", /gmem stat gmem0\s*$/m);
      keys("a", "Enter");
      await waitFor("a", /fstat: st_size/);
    } else {
      // KVM cannot make it: the kernel's refusal (ENOTTY, and why, where it has no guest_memfd) and the prompt again.
      await waitFor("a", /error: KVM_CREATE_GUEST_MEMFD: E[A-Z]+ [^]*kvmsh\(vm0\)>\s*$/);
      if (GMEM_SKIP_REASON !== undefined) {
        await waitFor("a", /error: KVM_CREATE_GUEST_MEMFD: ENOTTY .* — this kernel has no guest_memfd/);
      }
      // Object name completion, on a vCPU.
      keys("a", "vcpu create", "Enter");
      await waitFor("a", /vcpu0: id 0, fd \d+/);
      keys("a", "sregs vc", "Tab");
      await waitFor("a", /sregs vcpu0\s*$/m);
      keys("a", "Enter");
      await waitFor("a", /vcpu0: cr0 0x/);
    }
    // Ctrl-C abandons a half-typed line; the prompt comes back.
    keys("a", "gmem create --size 99", "C-c");
    await waitFor("a", /\^C\n.*kvmsh\(vm0\)>\s*$/m);
    keys("a", "echo after ctrl-c", "Enter");
    await waitFor("a", /^after ctrl-c$/m);
    // Ctrl-C stops a running guest, and the shell goes on.
    keys("a", 'run "jmp ." --asm --timeout 60s', "Enter");
    await new Promise((r) => setTimeout(r, 1500));
    keys("a", "C-c");
    await waitFor("a", /stop: interrupt; last exit INTR/);
    keys("a", "echo still here", "Enter");
    await waitFor("a", /^still here$/m);
    // Ctrl-D leaves with 0.
    keys("a", "C-d");
    await waitFor("a", /EXIT=0/);
    const h = await Deno.readTextFile(hist);
    assert.match(h, /^vm create$/m);
    assert.match(h, /^gmem create --size 2M --flags mmap,init-shared$/m);
    assert.doesNotMatch(h, /--size 99/, "an abandoned line is not history");

    // History persists: a new session recalls the last line with Up.
    start("b", hist);
    await waitFor("b", /kvmsh>\s*$/m);
    keys("b", "Up");
    await waitFor("b", /kvmsh> echo still here$/m);
    keys("b", "C-u", "history 2", "Enter");
    await waitFor("b", /^\s+\d+\s+history 2$/m);
    keys("b", "exit", "Enter");
    await waitFor("b", /EXIT=0/);
  } finally {
    t.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
