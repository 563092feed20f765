/** /proc and /sys through libc: text files, directory listings, the fd list. */

import { deepStrictEqual as eq, ok } from "node:assert/strict";
import { listDir, openFds, readProcText } from "../../ffi/procfs.ts";
import { cstr, libc, O } from "../../ffi/libc.ts";

Deno.test("readProcText: procfs text, large files in chunks, undefined when unreadable", () => {
  const release = readProcText("/proc/sys/kernel/osrelease");
  ok(release && /^\d+\.\d+/.test(release), release);
  eq(readProcText("/proc/self/stat")?.split(" ")[0], String(Deno.pid));
  const maps = readProcText("/proc/self/maps", 1 << 20);
  ok(maps && maps.length > 4096, "more than one read chunk");
  eq(readProcText("/proc/self/maps", 4096)?.length, 4096, "stops at max");
  eq(readProcText("/nonexistent/file"), undefined);
});

Deno.test("listDir: sorted entries without . and .., undefined when missing", () => {
  const self = listDir("/proc/self");
  ok(self?.includes("fd") && self.includes("maps"));
  ok(!self?.includes(".") && !self?.includes(".."));
  eq(self, [...self!].sort());
  eq(listDir("/nonexistent/dir"), undefined);
});

Deno.test("openFds: sees an fd appear and go, without counting its own", () => {
  const before = openFds();
  ok(before.includes(0) || before.includes(1) || before.includes(2));
  const fd = libc().open(cstr("/proc/self/stat"), O.RDONLY | O.CLOEXEC, 0);
  ok(fd >= 0);
  const during = openFds();
  ok(during.includes(fd));
  libc().close(fd);
  eq(openFds(), before);
});
