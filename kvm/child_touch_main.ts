/**
 * Child-process half of {@link touchInChild}: maps an inherited fd and does one real access, so
 * a SIGBUS kills this process, not kvmsh. Modes: `read` one byte (printed on stdout), `write`
 * one byte, `fill` a range with memset (as the selftests' memset over a whole mapping). Exit 0
 * when the access worked; 3 when the mapping itself failed (errno name on stderr).
 * Usage: child_touch_main.ts <fd> <map-offset> <map-length> <access-offset> <read|write|fill> [value] [length]
 * @module
 */

import { errno, libc, MAP, MAP_FAILED, PROT } from "../ffi/libc.ts";
import { errnoName } from "../ffi/errno.ts";
import { CHILD_MMAP_FAILED } from "./child_touch.ts";

const [fdText, mapOff, mapLen, accessOff, mode, value, length] = Deno.args;
const l = libc();
const p = l.mmap(null, BigInt(mapLen), PROT.READ | PROT.WRITE, MAP.SHARED, Number(fdText), BigInt(mapOff));
if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
  console.error(`mmap: ${errnoName(errno())}`);
  Deno.exit(CHILD_MMAP_FAILED);
}
const at = Number(accessOff);
if (mode === "fill") {
  l.memset(Deno.UnsafePointer.offset(p, at), Number(value ?? 0), BigInt(length ?? 1));
  console.log("filled");
} else if (mode === "write") {
  new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, 1, at))[0] = Number(value ?? 0);
  console.log("written");
} else {
  console.log(String(new Deno.UnsafePointerView(p).getUint8(at)));
}
Deno.exit(0);
