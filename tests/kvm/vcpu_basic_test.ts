/** Vcpu basics on real KVM: create, kvm_run, regs/sregs/fpu/cpuid/MP state, guest debug, close. */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { fdSnapshot, kvmTest } from "../kvm_env.ts";
import { ClosedError, describeExit, Kvm, KvmError, runVcpu } from "../../mod.ts";
import { supportedCpuid } from "../../kvm/vcpu.ts";

kvmTest("createVcpu: ids count up, kvm_run mapped at KVM_GET_VCPU_MMAP_SIZE, VM close closes vCPUs", () => {
  const before = fdSnapshot().length;
  using kvm = Kvm.open();
  const vm = kvm.createVm();
  const a = vm.createVcpu();
  const b = vm.createVcpu();
  eq([a.id, b.id], [0, 1]);
  eq(a.mmapSize, kvm.vcpuMmapSize());
  ok(a.mmapSize >= 4096);
  eq(vm.vcpus.map((v) => v.id), [0, 1]);
  b.close();
  eq(vm.vcpus.map((v) => v.id), [0]);
  // KVM keeps a closed vCPU's id taken: the kernel says so.
  throws(() => vm.createVcpu(1), (e) => e instanceof KvmError && e.errnoName === "EEXIST");
  eq(vm.createVcpu().id, 2);
  vm.close();
  eq(a.open, false);
  kvm.close();
  eq(fdSnapshot().length, before);
});

kvmTest("regs: partial setRegs keeps the others; unknown register is refused", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const cpu = vm.createVcpu();
  const r0 = cpu.getRegs();
  eq(r0.rflags, 2n);
  eq(r0.rip, 0xfff0n); // x86 reset vector
  cpu.setRegs({ rax: 0x1234n, r15: 0xffff_ffff_ffff_ffffn });
  const r1 = cpu.getRegs();
  eq([r1.rax, r1.r15, r1.rip], [0x1234n, 0xffff_ffff_ffff_ffffn, 0xfff0n]);
  eq(cpu.getReg("rax"), 0x1234n);
  throws(() => cpu.setRegs({ eax: 1n } as never), /unknown register 'eax'/);
});

kvmTest("sregs: reset state decoded, partial segment update, fpu round trip", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const cpu = vm.createVcpu();
  const s = cpu.getSregs();
  eq([s.cs.selector, s.cs.base, s.cs.limit], [0xf000, 0xffff0000n, 0xffff]);
  eq(s.cr0, 0x60000010n);
  cpu.setSregs({ ds: { base: 0x10000n, selector: 0x1000 }, cr4: 0n });
  const s2 = cpu.getSregs();
  eq([s2.ds.base, s2.ds.selector, s2.ds.limit, s2.cs.selector], [0x10000n, 0x1000, 0xffff, 0xf000]);
  cpu.setFpu({ fcw: 0x27f, xmm: [0xab, 0xcd] });
  const f = cpu.getFpu();
  eq([f.fcw, f.xmm[0], f.xmm[1]], [0x27f, 0xab, 0xcd]);
});

kvmTest("cpuid: KVM_GET_SUPPORTED_CPUID → KVM_SET_CPUID2; MP state get/set by name", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const cpu = vm.createVcpu();
  const entries = supportedCpuid(vm);
  ok(entries.length > 5, `${entries.length} entries`);
  ok(entries.some((e) => e.function === 0));
  eq(cpu.setCpuid(entries), entries.length);
  eq(cpu.getMpState(), { state: 0, name: "RUNNABLE" });
  cpu.setMpState("runnable");
  // Without an in-kernel LAPIC (no KVM_CREATE_IRQCHIP) x86 KVM accepts only RUNNABLE.
  throws(() => cpu.setMpState("HALTED"), (e) => e instanceof KvmError && e.errnoName === "EINVAL");
  throws(() => cpu.setMpState("SLEEPY"), /unknown MP state/);
});

kvmTest("KVM_SET_GUEST_DEBUG single-step is accepted on this host", () => {
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  const cpu = vm.createVcpu();
  cpu.setGuestDebug({ singleStep: true });
  eq(cpu.singleStep, true);
  cpu.setGuestDebug({});
  eq(cpu.singleStep, false);
});

kvmTest("a closed vCPU's run() is a ClosedError, never a KVM_RUN of the vCPU that reuses its fd number", () => {
  using kvm = Kvm.open();
  const vm = kvm.createVm();
  const a = vm.createVcpu();
  const fd = a.fd;
  a.getCpuid(); // cached from here on (a fresh vCPU: no entries)
  a.close();
  const b = vm.createVcpu(5);
  // Usually b gets a's old number (the lowest free fd; another of Deno's threads may take it
  // first). Before: KVM_RUN went to that number, b's, and this host answered for b (ENOSPC: b has
  // no memory); with the number free, EBADF. Either way not the ClosedError asserted here.
  if (b.fd !== fd) console.warn(`# fd ${fd} went elsewhere (b has fd ${b.fd}): the reuse case is not shown`);
  throws(() => a.run(), (e) => e instanceof ClosedError && /vcpu\d+ is closed/.test(e.message));
  throws(() => runVcpu(a), (e) => e instanceof ClosedError, "the exit loop too (its watchdog reads kvm_run's address)");
  eq(typeof b.getRegs().rip, "bigint", "b is untouched and usable");
  throws(() => a.getCpuid(), ClosedError, "its cached CPUID too (it was returned)");
  throws(() => describeExit(a.exit), /vcpu\d+ is closed/, "its exit is gone (it decoded as IO port 0)");
});
