/**
 * A vCPU whose page tables' memslot was deleted, and that ran while it was gone, runs again once
 * the memory is back. The guest is a long-mode `hlt` (runGuest's identity-mapped tables, CR3 in
 * main memory at GPA 0). The scenario deletes the memslot that holds CR3 and runs the vCPU
 * (checked: the guest does not reach HLT; the exit is printed as a note: SHUTDOWN on a shadow
 * MMU, whose root has no memory behind it), then has runGuest put main memory back, rewrite the
 * guest and its tables and load the same registers, and expects the SAME vCPU to run the guest to
 * HLT. Upstream's shadow MMU checks the root's gfn each time it loads the roots (mmu_check_root)
 * and a failed load leaves no root behind, so the next KVM_RUN after the slot is back loads them
 * again. Controls (plain expectations, which hold on kvm_pvm too): a new vCPU on the same VM runs
 * the guest to HLT; the old vCPU runs a real-mode guest and then the long-mode guest again to
 * HLT; on a second VM, a vCPU that did not run while the memory was gone runs to HLT.
 *
 * kvm_pvm (seen on 6.18.44-fc-v1300) diverges (an XFAIL keyed on the vendor module): the vCPU
 * keeps answering SHUTDOWN on every KVM_RUN after the memory is back, and each time the kernel
 * logs `kvm-pvm: … guest CR3 0x2000 had no memory slot behind it (…); shutting the vCPU down
 * (KVM_EXIT_SHUTDOWN)`, although the slot is back. It recovers once KVM_SET_SREGS changes CR0,
 * CR3 or CR4 (a real-mode run does). A kernel that fixes it shows XPASS: drop the mark then.
 *
 * Run: `./kvmsh scenario scripts/vcpu_memslot_restore.ts` (`--bisect` for `git bisect run`).
 * @module
 */

import {
  expectEqual,
  expectExit,
  expectTrue,
  hex,
  note,
  runGuest,
  runVcpu,
  scenario,
  step,
  type Vcpu,
  vendorModules,
  type Vm,
  xfail,
} from "../mod.ts";

/** The guest: a long-mode `hlt`, with a watchdog far above what it needs. */
const LONG = { asm: "hlt", mode: "long", timeoutMs: 10_000 } as const;

/** True when the KVM answering is kvm_pvm (this host's software hypervisor). */
function onKvmPvm(): boolean {
  return vendorModules().some((m) => m.name === "kvm_pvm");
}

/** How a run ended, for a note: the exit's name, or the error the run threw (KVM_RUN's errno). */
function outcome(f: () => { exit: { name: string } }): string {
  try {
    return f().exit.name;
  } catch (e) {
    return (e as Error).message;
  }
}

/** The control registers and EFER: what a KVM_SET_SREGS that resets the MMU would change. */
function paging(vcpu: Vcpu): Record<"cr0" | "cr3" | "cr4" | "efer", string> {
  const s = vcpu.getSregs();
  return { cr0: hex(s.cr0), cr3: hex(s.cr3), cr4: hex(s.cr4), efer: hex(s.efer) };
}

/**
 * Runs the long-mode guest to HLT on `vm`'s first vCPU, checks that main memory holds its CR3,
 * deletes that memslot; returns the vCPU and its paging registers.
 */
function runThenDeleteTables(vm: Vm): { vcpu: Vcpu; before: ReturnType<typeof paging> } {
  const r = expectExit("HLT", () => runGuest(vm, LONG), "the long-mode guest runs to HLT");
  const before = paging(r.vcpu);
  const s = r.memslot;
  const where = `slot ${s.id}, GPA ${hex(s.gpa)}+${hex(s.size)}`;
  expectTrue(s.contains(BigInt(before.cr3)), `main memory (${where}) holds CR3 ${before.cr3}`, "it does not");
  vm.deleteMemslot(s.id);
  note(`deleted main memory (${where}): CR3 ${before.cr3} and RIP have no memslot behind them`);
  return { vcpu: r.vcpu, before };
}

/** True when a live memslot of `vm` covers `gpa`. */
const backed = (vm: Vm, gpa: string) => vm.memslots.some((s) => s.contains(BigInt(gpa)));

const PVM_REASON = "kvm_pvm keeps a vCPU in SHUTDOWN once a KVM_RUN found no memslot under its CR3: every KVM_RUN " +
  "after the slot is back answers SHUTDOWN while KVM_SET_SREGS reloads the same CR0/CR3/CR4 (it recovers when " +
  "one of them changes; a new vCPU runs)";

scenario("a vCPU runs again once the memslot under its page tables is back", async (t) => {
  const vm = t.vm();
  let vcpu!: Vcpu;
  let before!: ReturnType<typeof paging>;

  await step("run the guest, then delete the memslot under its CR3 and run it again", () => {
    ({ vcpu, before } = runThenDeleteTables(vm));
    const gone = outcome(() => runVcpu(vcpu, { timeoutMs: LONG.timeoutMs }));
    note(`the vCPU stopped with ${gone}`);
    expectTrue(gone !== "HLT", "with no memory under CR3 the guest does not reach HLT", `it stopped with ${gone}`);
  });

  await step("memory back, same vCPU, same registers", () => {
    xfail(
      PVM_REASON,
      () => expectExit("HLT", () => runGuest(vm, { ...LONG, vcpu }), "the same vCPU runs the guest to HLT"),
      { when: onKvmPvm() },
    );
    const now = paging(vcpu);
    expectTrue(backed(vm, now.cr3), `main memory is back under CR3 ${now.cr3}`, "no memslot covers it");
    expectEqual(now, before, "runGuest loaded the same CR0/CR3/CR4/EFER as before the delete");
    note(`one more run of the same vCPU: ${outcome(() => runGuest(vm, { ...LONG, vcpu }))}`);
  });

  await step("control: a new vCPU on the same VM", () => {
    const fresh = vm.createVcpu();
    expectExit("HLT", () => runGuest(vm, { ...LONG, vcpu: fresh }), "a new vCPU runs the same guest to HLT");
  });

  await step("control: the old vCPU after a real-mode run (CR0, CR3, CR4 and EFER change)", () => {
    expectExit("HLT", () => runGuest(vm, { asm: "hlt", mode: "real", vcpu }), "the old vCPU runs a real-mode hlt");
    expectExit("HLT", () => runGuest(vm, { ...LONG, vcpu }), "then the old vCPU runs the long-mode guest to HLT");
  });

  await step("control: a vCPU that did not run while the memory was gone", () => {
    const vm2 = t.vm();
    const { vcpu: idle } = runThenDeleteTables(vm2);
    expectExit("HLT", () => runGuest(vm2, { ...LONG, vcpu: idle }), "memory back: the vCPU runs the guest to HLT");
  });
});
