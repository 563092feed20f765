/**
 * Kvm.close() closes every VM and the /dev/kvm fd even when one VM's close fails with something
 * other than "in use" (its first error is thrown once all is done): it stopped at that VM, leaving
 * the others and the /dev/kvm fd open.
 * @module
 */

import { deepStrictEqual as eq, throws } from "node:assert/strict";
import { ClosedError, Kvm } from "../../mod.ts";
import { fdSnapshot, kvmTest } from "../kvm_env.ts";

kvmTest("Kvm.close(): a VM whose close fails does not keep the others or /dev/kvm open", () => {
  const before = fdSnapshot();
  const kvm = Kvm.open();
  const a = kvm.createVm();
  const b = kvm.createVm();
  const close = a.close.bind(a);
  // As a close that went to its end and then reported what it could not do.
  a.close = () => {
    close();
    throw new Error("a's close failed after closing");
  };
  throws(() => kvm.close(), /a's close failed after closing/);
  eq(fdSnapshot(), before, "every VM fd and /dev/kvm are closed");
  throws(() => b.checkExtension(0), ClosedError);
  throws(() => kvm.checkExtension(0), ClosedError);
});
