/**
 * A memslot id is a u32 in kvm_userspace_memory_region2: a negative id from JavaScript (-1) reaches
 * KVM as its u32 value (0xffffffff), and the EINVAL hint names that value, not `0x-1`. No KVM needed.
 */

import { deepStrictEqual as eq } from "node:assert/strict";
import { hintFor } from "../../mod.ts";

const REGION2 = "KVM_SET_USER_MEMORY_REGION2";

Deno.test("memslot EINVAL: slot -1 is hinted as the u32 KVM got (0xffffffff), never `0x-1`", () => {
  const args = {
    slot: -1,
    flags: "0",
    gpa: 0n,
    size: 0x1000n,
    userspace_addr: 0x7f0000000000n,
    gmem_fd: 0,
    gmem_offset: 0n,
  };
  eq(
    hintFor(REGION2, "EINVAL", args),
    "slot id 65535 (bits 0..15) is not below KVM_CAP_NR_MEMSLOTS (32764 on x86); slot 0xffffffff is in address " +
      "space 65535 (bits 16..31), which exists only where KVM_CAP_MULTI_ADDRESS_SPACE is above 65535 (x86 with SMM: 2)",
  );
});
