/**
 * kvmsh's raw-syscall library (ffi/raw_syscall_lib.ts): its code is what `as` makes of its
 * source, the ELF image is a shared object binutils reads as one (no executable stack), and
 * ffi/libc.ts's errno is the kernel's answer whatever happens to libc's `errno` after the call —
 * the bug it exists for: V8 left ENOENT in the thread's errno between a failing ioctl and the
 * read, and kvmsh reported `KVM_CREATE_GUEST_MEMFD: ENOENT` for the kernel's ENOTTY.
 */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { RAW_ASM, RAW_CODE, RAW_ENTRY, RAW_SONAME, rawSyscallLibrary } from "../../ffi/raw_syscall_lib.ts";
import { cstr, errno, libc, LIBC_PATH, MAP, O, PROT, SYS } from "../../ffi/libc.ts";
import { ERRNO } from "../../ffi/errno.ts";

function has(cmd: string): boolean {
  try {
    return new Deno.Command(cmd, { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[]): string {
  const o = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const dec = new TextDecoder();
  eq(o.success, true, `${cmd}: ${dec.decode(o.stderr)}`);
  return dec.decode(o.stdout);
}

Deno.test({
  name: "RAW_CODE is what `as --64` assembles from RAW_ASM",
  ignore: !(has("as") && has("objcopy")),
  fn: () => {
    const dir = Deno.makeTempDirSync({ prefix: "kvmsh-raw-" });
    try {
      Deno.writeTextFileSync(`${dir}/r.s`, RAW_ASM);
      run("as", ["--64", "-o", `${dir}/r.o`, `${dir}/r.s`]);
      run("objcopy", ["-O", "binary", "-j", ".text", `${dir}/r.o`, `${dir}/r.bin`]);
      eq([...Deno.readFileSync(`${dir}/r.bin`)], [...RAW_CODE]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "the raw library's ELF image: a shared object with its soname, its functions, no executable stack",
  ignore: !has("readelf"),
  fn: () => {
    const dir = Deno.makeTempDirSync({ prefix: "kvmsh-raw-" });
    try {
      const path = `${dir}/${RAW_SONAME}`;
      Deno.writeFileSync(path, rawSyscallLibrary());
      const header = run("readelf", ["-hlW", path]);
      ok(/Type:\s+DYN \(Shared object file\)/.test(header), header);
      ok(/Machine:\s+Advanced Micro Devices X86-64/.test(header), header);
      ok(/GNU_STACK .* RW {2}/.test(header), header);
      ok(!/GNU_STACK .* RWE /.test(header), header);
      ok(/\.text +PROGBITS .* AX /.test(run("readelf", ["-SW", path])));
      const dyn = run("readelf", ["-dW", path]);
      ok(dyn.includes(`Library soname: [${RAW_SONAME}]`), dyn);
      const syms = run("readelf", ["--dyn-syms", "-W", path]);
      for (const name of Object.keys(RAW_ENTRY)) {
        ok(new RegExp(`FUNC +GLOBAL +DEFAULT +\\d+ ${name}$`, "m").test(syms), syms);
      }
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("the raw library answers from the kernel: a value or -errno; the sixth argument travels on the stack", () => {
  libc(); // loads the raw library (a later dlopen finds it by its soname)
  const raw = Deno.dlopen(RAW_SONAME, {
    kvmsh_syscall: { parameters: ["i64", "i64", "i64", "i64", "i64", "i64", "i64"], result: "i64" },
  });
  try {
    const call = (...a: (number | bigint)[]) =>
      BigInt(raw.symbols.kvmsh_syscall(...(a.map(BigInt) as [bigint, bigint, bigint, bigint, bigint, bigint, bigint])));
    eq(Number(call(SYS.getpid, 0, 0, 0, 0, 0, 0)), Deno.pid);
    eq(Number(call(SYS.close, -1, 0, 0, 0, 0, 0)), -ERRNO.EBADF);
    // The sixth argument travels on the stack: pwrite64's offset is the fourth, mmap's the sixth.
    const fd = libc().memfd_create(cstr("kvmsh-test"), 0);
    ok(fd >= 0);
    eq(Number(libc().pwrite(fd, new Uint8Array([1, 2, 3]), 3n, 4096n)), 3);
    const p = call(SYS.mmap, 0, 4096, PROT.READ, MAP.SHARED, fd, 4096);
    ok(p > 0n, `mmap: ${p}`);
    const page = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(Deno.UnsafePointer.create(p)!, 4));
    eq([...page], [1, 2, 3, 0], "mapped at file offset 4096 (the stack argument)");
    eq(Number(call(SYS.munmap, p, 4096, 0, 0, 0, 0)), 0);
    eq(libc().close(fd), 0);
  } finally {
    raw.close();
  }
});

Deno.test("errno() is the kernel's answer even when libc's errno is overwritten after the call", () => {
  const tls = Deno.dlopen(LIBC_PATH, { __errno_location: { parameters: [], result: "pointer" } });
  try {
    const libcErrno = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(tls.symbols.__errno_location()!, 4));
    const l = libc();
    const kvm = l.open(cstr("/dev/null"), O.RDWR | O.CLOEXEC, 0);
    ok(kvm >= 0);
    for (let i = 0; i < 300; i++) { // across the switch to ioctl's compiled stub
      eq(l.ioctl(kvm, 0xae03, 0n), -1);
      libcErrno[0] = ERRNO.ENOENT; // what V8 was seen to leave there
      eq(errno(), ERRNO.ENOTTY, `call ${i + 1}`);
    }
    eq(l.open(cstr("/nonexistent/kvmsh"), O.RDONLY, 0), -1);
    libcErrno[0] = ERRNO.EPERM;
    eq(errno(), ERRNO.ENOENT);
    eq(l.close(kvm), 0);
  } finally {
    tls.close();
  }
});
