/**
 * What memory rows 4–6 measure on this host: an MMAP|INIT_SHARED guest_memfd where the kernel
 * offers one, else anonymous memory (the same kvmsh paths — memslot set-up, bulk fill/verify — on
 * the memory every KVM has), named in the row so the table never claims gmem it did not use.
 * @module
 */

import { CAP, gmemAbsence, GUEST_MEMFD_FLAGS, type Vm } from "../../mod.ts";

/** The memory a row uses: `gmem`, or `anon` with the reason this host has no usable gmem. */
export type Backing = { kind: "gmem" } | { kind: "anon"; why: string };

const WANT = GUEST_MEMFD_FLAGS.parse("mmap,init-shared");

/** Asks `vm` (a default VM) whether it can have an MMAP|INIT_SHARED guest_memfd. */
export function backingFor(vm: Vm): Backing {
  const absent = gmemAbsence({
    system: vm.kvm.checkExtension(CAP.GUEST_MEMFD),
    vm: vm.checkExtension(CAP.GUEST_MEMFD),
  });
  if (absent) return { kind: "anon", why: absent.reason };
  const have = vm.supportedGmemFlags();
  if ((have & WANT) !== WANT) {
    const names = GUEST_MEMFD_FLAGS.format(have) || "0";
    return {
      kind: "anon",
      why: `this host's guest_memfd has no mmap|init-shared (KVM_CAP_GUEST_MEMFD_FLAGS=${names})`,
    };
  }
  return { kind: "gmem" };
}

/** `name` with "gmem" replaced by what `b` uses, and the note that says why. */
export function describeBacking(name: string, b: Backing, note: string): { name: string; note: string } {
  if (b.kind === "gmem") return { name, note };
  return { name: name.replace("gmem", "anonymous"), note: `${note}; anonymous memory: ${b.why}` };
}

/** The C baselines' argument for the backing (argv[3]). */
export const cBackingArg = (b: Backing): string => b.kind;
