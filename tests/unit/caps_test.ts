/** Capability names and values: resolving names/numbers, decoding bit-mask values by name. */

import { deepStrictEqual as eq } from "node:assert/strict";
import {
  CAP,
  CAP_NAMES,
  CAP_VALUE_FLAGS,
  capName,
  CAPS_UAPI_VERSION,
  describeCapValue,
  REPORT_CAPS,
  resolveCap,
} from "../../mod.ts";

Deno.test("caps: pinned numbers of the memory and guest_memfd caps", () => {
  eq(CAP.USER_MEMORY2, 231);
  eq(CAP.MEMORY_FAULT_INFO, 232);
  eq(CAP.MEMORY_ATTRIBUTES, 233);
  eq(CAP.GUEST_MEMFD, 234);
  eq(CAP.VM_TYPES, 235);
  eq(CAP.GUEST_MEMFD_FLAGS, 244);
  eq(CAP.EXIT_HYPERCALL, 201);
  eq(CAPS_UAPI_VERSION, "Linux 7.2");
  for (const [n, name] of Object.entries(CAP_NAMES)) eq(CAP[name], Number(n), `round trip ${n}`);
});

Deno.test("resolveCap: names in any spelling, numbers in decimal or hex, unknown → undefined", () => {
  eq(resolveCap("GUEST_MEMFD_FLAGS"), 244);
  eq(resolveCap("kvm_cap_guest_memfd_flags"), 244);
  eq(resolveCap("KVM_CAP_GUEST_MEMFD_FLAGS"), 244);
  eq(resolveCap("guest-memfd-flags"), 244);
  eq(resolveCap(" 244 "), 244);
  eq(resolveCap("0xf4"), 244);
  eq(resolveCap("250"), 250, "a number without a name is still probed raw");
  eq(resolveCap("bogus"), undefined);
  eq(resolveCap(""), undefined);
  for (const name of REPORT_CAPS) eq(typeof resolveCap(name), "number", name);
});

Deno.test("capName: KVM_CAP_ prefix, or KVM_CAP_#n for a number Linux 7.2 does not name", () => {
  eq(capName(244), "KVM_CAP_GUEST_MEMFD_FLAGS");
  eq(capName(0), "KVM_CAP_IRQCHIP");
  eq(capName(250), "KVM_CAP_#250");
  eq(capName(100000), "KVM_CAP_#100000");
});

Deno.test("describeCapValue: bit masks by name, unknown bits as hex, plain numbers as is", () => {
  eq(describeCapValue(CAP.GUEST_MEMFD_FLAGS, 3), "3 (mmap|init-shared)");
  eq(describeCapValue(CAP.GUEST_MEMFD_FLAGS, 1), "1 (mmap)");
  eq(describeCapValue(CAP.GUEST_MEMFD_FLAGS, 0), "0 (none)");
  eq(describeCapValue(CAP.GUEST_MEMFD_FLAGS, 0x13), "19 (mmap|init-shared|0x10)");
  eq(describeCapValue(CAP.MEMORY_ATTRIBUTES, 8), "8 (private)");
  eq(describeCapValue(CAP.MEMORY_ATTRIBUTES, 9), "9 (private|0x1)");
  eq(describeCapValue(CAP.EXIT_HYPERCALL, 1 << 12), "4096 (map-gpa-range)");
  eq(describeCapValue(CAP.VM_TYPES, 1), "1 (default)");
  eq(describeCapValue(CAP.VM_TYPES, -1).endsWith(")"), true, "a negative answer is read as u32, never dropped");
  eq(describeCapValue(CAP.NR_VCPUS, 288), "288");
  eq(Object.keys(CAP_VALUE_FLAGS).map(Number).sort((a, b) => a - b), [201, 233, 235, 244]);
});
