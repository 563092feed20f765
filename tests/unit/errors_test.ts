/** KvmError: message, fields, toJSON, hints; isErrno and check. */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { hintFor, isErrno, KvmError, kvmOpenHint } from "../../mod.ts";
import { check } from "../../kvm/errors.ts";
import { cstr, libc, O } from "../../ffi/libc.ts";

Deno.test("KvmError: message names the op, errno, strerror, args (bigints as hex) and the hint", () => {
  const e = new KvmError({
    syscall: "ioctl",
    op: "KVM_SET_MEMORY_ATTRIBUTES",
    errno: 25,
    args: { gpa: 1n << 32n, size: 4096n, attributes: "private" },
  });
  eq(e.name, "KvmError");
  eq(e.syscall, "ioctl");
  eq(e.op, "KVM_SET_MEMORY_ATTRIBUTES");
  eq(e.errno, 25);
  eq(e.errnoName, "ENOTTY");
  eq(e.strerror, "Inappropriate ioctl for device");
  ok(e.hint?.includes("KVM_CAP_MEMORY_ATTRIBUTES=0"));
  eq(
    e.message,
    `KVM_SET_MEMORY_ATTRIBUTES: ENOTTY (Inappropriate ioctl for device) [gpa=0x100000000 size=0x1000 attributes=private] — ${e.hint}`,
  );
  ok(e instanceof Error);
});

Deno.test("KvmError: toJSON is plain data; no args, no hint → short message", () => {
  const e = new KvmError({ syscall: "close", errno: 9 });
  eq(e.op, "close");
  eq(e.hint, undefined);
  eq(e.message, "close: EBADF (Bad file descriptor)");
  eq(e.toJSON(), {
    error: "KvmError",
    message: "close: EBADF (Bad file descriptor)",
    syscall: "close",
    op: "close",
    errno: 9,
    errnoName: "EBADF",
    strerror: "Bad file descriptor",
    args: {},
  });
  const j = new KvmError({ syscall: "mmap", errno: 19, args: { length: 4096n, shared: true } }).toJSON();
  eq(j.args, { length: "0x1000", shared: true });
  eq(j.hint, "this guest_memfd was created without the mmap flag");
  eq(JSON.parse(JSON.stringify(j)), j);
});

Deno.test("KvmError: an explicit hint wins over the table", () => {
  eq(new KvmError({ syscall: "mmap", errno: 19, hint: "mine" }).hint, "mine");
});

Deno.test("hintFor: per op and errno, with argument-dependent rules", () => {
  ok(hintFor("KVM_CREATE_GUEST_MEMFD", "EINVAL", { size: 1n })?.includes("multiple of the page size"));
  ok(hintFor("KVM_CREATE_GUEST_MEMFD", "EINVAL", { size: 4096n })?.includes("KVM_CAP_GUEST_MEMFD_FLAGS"));
  ok(hintFor("mmap", "EINVAL", { shared: false })?.includes("MAP_SHARED"));
  ok(hintFor("KVM_SET_USER_MEMORY_REGION2", "EEXIST")?.includes("overlaps"));
  ok(hintFor("process_vm_readv", "EFAULT")?.includes("SIGBUS"));
  eq(hintFor("KVM_RUN", "E2BIG"), undefined);
  eq(hintFor("nonesuch", "EINVAL"), undefined);
});

Deno.test("kvmOpenHint: any KVM device path, ENOENT → module, EACCES → kvm group", () => {
  ok(kvmOpenHint("ENOENT", "/dev/kvm")?.startsWith("no /dev/kvm: load the KVM module"));
  ok(kvmOpenHint("ENOENT", "/tmp/other-kvm")?.startsWith("no /tmp/other-kvm: load the KVM module"));
  const acc = kvmOpenHint("EACCES", "/srv/kvm0");
  ok(acc?.startsWith("no permission on /srv/kvm0"), acc);
  ok(acc?.includes("usermod -aG kvm"), acc);
  ok(kvmOpenHint("ENXIO", "/dev/kvm")?.includes("no KVM driver"));
  ok(kvmOpenHint("EPERM", "/dev/kvm")?.includes("not permitted"));
  eq(kvmOpenHint("EINVAL", "/dev/kvm"), undefined);
});

Deno.test("check and isErrno: errno read right after the failing call", () => {
  throws(
    () => check(libc().open(cstr("/nonexistent/kvmsh"), O.RDONLY, 0), "open", undefined, { path: "x" }),
    (err: unknown) => {
      ok(isErrno(err, "ENOENT"), String(err));
      ok(!isErrno(err, "EINVAL"));
      eq((err as KvmError).args, { path: "x" });
      return true;
    },
  );
  ok(!isErrno(new Error("x"), "ENOENT"));
  eq(check(3, "x"), 3);
  eq(check(0n, "x"), 0n);
});
