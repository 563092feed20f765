/**
 * replaceMemslot puts the old slot back when the kernel refuses the new one. When even that is
 * refused, the error is a KvmError (MemslotRestoreError: the restore's errno, the slot that is gone,
 * and the replacement's error as `cause`/`replaceError`), so a caller can still switch on
 * errnoName and `--json` keeps both errnos (it was a plain AggregateError: `{error:"AggregateError"}`).
 * The restore can only fail when kvmsh's books are stale, so the test makes them stale through the
 * untracked setUserMemoryRegion2. Anonymous memory only: runs on every host.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { Kvm, KvmError } from "../../mod.ts";
import { MemslotRestoreError } from "../../kvm/vm.ts";
import { errorJson } from "../../shell/output.ts";
import { fdSnapshot, kvmTest } from "../kvm_env.ts";

const SIZE = 0x10000n;

kvmTest(
  "replaceMemslot whose restore is refused: a KvmError carrying both errnos; the slot is gone, its memory freed",
  () => {
    const before = fdSnapshot();
    {
      using kvm = Kvm.open();
      using vm = kvm.createVm();
      const old = vm.addMemslot({ slot: 0, gpa: 0n, size: SIZE });
      const mem = old.backing!;
      // Behind kvmsh's back: slot 0 moves to 8 MiB (KVM's move, same memory) and slot 9 takes its
      // old GPA range, so putting slot 0 back where kvmsh thinks it was is an overlap (EEXIST).
      const raw = { flags: 0n, memorySize: SIZE, userspaceAddr: mem.address, guestMemfdOffset: 0n, guestMemfd: 0 };
      vm.setUserMemoryRegion2({ ...raw, slot: 0, guestPhysAddr: 0x800000n });
      vm.setUserMemoryRegion2({ ...raw, slot: 9, guestPhysAddr: 0n });
      // The replacement is refused (memory_size not page aligned: EINVAL), then the restore (EEXIST).
      throws(() => vm.replaceMemslot(0, { slot: 0, gpa: 0x200000n, size: SIZE + 1n }), (e: unknown) => {
        if (!(e instanceof MemslotRestoreError)) return false;
        ok(e instanceof KvmError, "a KvmError: callers switch on errnoName");
        eq([e.errnoName, e.vm, e.slot], ["EEXIST", vm.name, 0]);
        ok(e.replaceError instanceof KvmError && e.replaceError.errnoName === "EINVAL");
        eq(e.cause, e.replaceError);
        ok(e.message.startsWith("KVM_SET_USER_MEMORY_REGION2: EINVAL"), e.message);
        ok(e.message.includes(`; and slot 0 of ${vm.name} could not be put back, so it is gone: `), e.message);
        ok(e.message.includes("KVM_SET_USER_MEMORY_REGION2: EEXIST"), e.message);
        const json = errorJson(e);
        eq([json.error, json.errnoName, json.slotGone], ["KvmError", "EEXIST", 0], "--json keeps the restore's errno");
        eq((json.replaceError as Record<string, unknown>).errnoName, "EINVAL", "and the replacement's");
        return true;
      });
      eq([vm.memslots, mem.mapped], [[], false], "out of the books, its memory freed (no owner left)");
    }
    eq(fdSnapshot(), before, "no fd left");
  },
);
