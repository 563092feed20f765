/**
 * Child-process half of {@link touchInChild}: maps an inherited fd and does one real load or
 * store, so a SIGBUS kills this process, not kvmsh. Exit 0 with the byte read on stdout when
 * the access worked; 3 when the mapping itself failed (errno on stderr).
 * Usage: child_touch_main.ts <fd> <map-offset> <map-length> <access-offset> <read|write> [value]
 * @module
 */

import { errno, libc, MAP, MAP_FAILED, PROT } from "../ffi/libc.ts";
import { errnoName } from "../ffi/errno.ts";

const [fdText, mapOff, mapLen, accessOff, mode, value] = Deno.args;
const l = libc();
const p = l.mmap(null, BigInt(mapLen), PROT.READ | PROT.WRITE, MAP.SHARED, Number(fdText), BigInt(mapOff));
if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
  console.error(`mmap: ${errnoName(errno())}`);
  Deno.exit(3);
}
const view = new Deno.UnsafePointerView(p);
if (mode === "write") {
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 1, Number(accessOff)))[0] = Number(value ?? 0);
  console.log("written");
} else {
  console.log(String(view.getUint8(Number(accessOff))));
}
Deno.exit(0);
