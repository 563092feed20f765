/**
 * kvm/host_file.ts: guest images read through open/fstat/read (ffi/), not Deno's file API —
 * the same bytes, the same kinds, nothing read from what is not a regular file.
 */

import { deepStrictEqual as eq, ok, throws } from "node:assert/strict";
import { hostFile, readHostFile } from "../../kvm/host_file.ts";
import { KvmError } from "../../kvm/errors.ts";

Deno.test("readHostFile: a regular file's bytes, any size; a file whose size says 0 (/proc) read to its end", () => {
  const dir = Deno.makeTempDirSync();
  try {
    for (const size of [0, 1, 4095, 4096, 4097, 200_000]) {
      const bytes = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff);
      Deno.writeFileSync(`${dir}/f`, bytes);
      eq(readHostFile(`${dir}/f`), bytes, `size ${size}`);
      eq(hostFile(`${dir}/f`), { kind: "file", size });
    }
    // The end is found without growing the buffer: one allocation of the file's size (+1).
    const big = new Uint8Array(1 << 20).fill(7);
    Deno.writeFileSync(`${dir}/big`, big);
    const got = readHostFile(`${dir}/big`);
    eq(got.length, big.length);
    ok(got.buffer.byteLength <= big.length + 4096, `buffer of ${got.buffer.byteLength} bytes for a 1 MiB file`);
    // Too large: refused before anything is read or allocated (a sparse 2 GiB file here).
    eq(readHostFile(`${dir}/big`, 1 << 20).length, 1 << 20, "exactly the limit is read");
    throws(() => readHostFile(`${dir}/big`, 1000), /is 1 MiB: more than the 1000 B kvmsh reads/);
    const sparse = Deno.openSync(`${dir}/sparse`, { write: true, create: true });
    sparse.truncateSync(2 ** 31);
    sparse.close();
    const t0 = performance.now();
    throws(() => readHostFile(`${dir}/sparse`), /is 2 GiB: more than the 1 GiB kvmsh reads/);
    ok(performance.now() - t0 < 200, "refused at once");
    const status = readHostFile("/proc/self/status");
    eq(hostFile("/proc/self/status")?.size, 0);
    ok(new TextDecoder().decode(status).includes(`\nPid:\t${Deno.pid}\n`));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("hostFile looks without opening for I/O: a writer blocked on a FIFO stays blocked", async () => {
  const dir = Deno.makeTempDirSync();
  const fifo = `${dir}/fifo`;
  try {
    if (!new Deno.Command("mkfifo", { args: [fifo] }).outputSync().success) return; // no mkfifo here
    // The writer's open blocks until some process opens the FIFO for reading.
    const writer = new Deno.Command("sh", { args: ["-c", `echo x > '${fifo}'`], stderr: "null" }).spawn();
    await new Promise((r) => setTimeout(r, 100));
    eq(hostFile(fifo)?.kind, "other");
    throws(() => readHostFile(fifo), /not a regular file \(other\)/);
    const done = await Promise.race([
      writer.status.then(() => "finished"),
      new Promise((r) => setTimeout(() => r("blocked"), 300)),
    ]);
    eq(done, "blocked", "nothing opened the FIFO for reading");
    Deno.readFileSync(fifo); // let the writer finish
    await writer.status;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("hostFile: kinds, and nothing there; readHostFile refuses what is not a regular file", () => {
  const dir = Deno.makeTempDirSync();
  try {
    eq(hostFile(dir), { kind: "directory", size: Deno.statSync(dir).size });
    eq(hostFile("/dev/zero")?.kind, "other");
    eq(hostFile(`${dir}/missing`), undefined);
    eq(hostFile(`${dir}/missing/below`), undefined);
    Deno.writeTextFileSync(`${dir}/file`, "x");
    eq(hostFile(`${dir}/file/below`), undefined, "ENOTDIR");
    // A FIFO with no writer: looked at without waiting for one.
    const mk = new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).outputSync();
    if (mk.success) eq(hostFile(`${dir}/fifo`)?.kind, "other");
    throws(() => readHostFile(dir), /is not a regular file \(directory\)/);
    throws(() => readHostFile("/dev/zero"), /is not a regular file \(other\)/);
    throws(
      () => readHostFile(`${dir}/missing`),
      (e: unknown) => e instanceof KvmError && e.errnoName === "ENOENT" && e.syscall === "open",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
