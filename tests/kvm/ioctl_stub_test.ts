/**
 * ffi/libc.ts makes ioctl through libffi at start and binds its compiled call stub on the
 * IOCTL_STUB_AFTER-th call: answers and errno are the same on both sides of the switch, the switch
 * happens once, and every caller that loads `libc().ioctl` moves to the stub.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { kvmTest } from "../kvm_env.ts";

kvmTest(
  "libc ioctl: libffi first, the compiled stub from the IOCTL_STUB_AFTER-th call, same answers and errno",
  async () => {
    const w = new Worker(new URL("./ioctl_stub_worker.ts", import.meta.url), { type: "module" });
    // deno-lint-ignore no-explicit-any
    const r: any = await new Promise((resolve, reject) => {
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
    });
    w.terminate();
    const { EBADF, E2BIG, ENOTTY } = r.expect;
    eq(
      r.opened,
      [["syscall", "__errno_location"], ["kvmsh_syscall", "kvmsh_sigreturn_address"], ["kvmsh_ioctl"]],
      "libc and the raw library at start, then the stub alone",
    );
    eq(r.before.check, 1, "KVM_CHECK_EXTENSION(USER_MEMORY) through libffi");
    eq(r.before.msr.r, -1);
    eq(r.before.msr.errno, E2BIG, "KVM_GET_MSR_INDEX_LIST with no room: E2BIG through libffi");
    ok(r.before.msr.nmsrs > 0, "the kernel wrote nmsrs through ioctl_buf's pointer");
    ok(r.stillFfi, "no stub before the IOCTL_STUB_AFTER-th call");
    eq(r.boundary, { r: -1, errno: EBADF }, "the call that binds the stub fails with its own errno");
    ok(r.after.stub, "the stub was bound at that call");
    ok(r.after.same, "libc().ioctl stays one function (callers' call sites stay monomorphic)");
    eq(r.after.check, 1);
    eq(r.after.msr, r.before.msr, "ioctl_buf answers the same through the stub");
    eq(r.after.badFd, { r: -1, errno: EBADF });
    eq(r.after.notKvm, { r: -1, errno: ENOTTY });
    ok(r.kept, "a reference kept from before still answers (and the first assertion: nothing more was bound)");
  },
);
