/**
 * The gmem commands' table entries; their behaviour (commands/gmem.ts) loads on first use.
 * @module
 */

import { GUEST_MEMFD_FLAGS } from "../../core.ts";
import { flagList, objects } from "../commands/complete_helpers.ts";
import type { Command } from "../commands/types.ts";

const load = () => import("../commands/gmem.ts").then((m) => m.gmemImpl);

const G = { name: "gmem", complete: objects("gmem") };
const rangeArgs = [G, { name: "offset" }, { name: "length" }];

/** gmem commands. */
export const gmemCommands: Command[] = [
  {
    name: "gmem create",
    summary: "KVM_CREATE_GUEST_MEMFD on the current VM (sent as typed: odd sizes and flags show the kernel's answer)",
    usage: "gmem create --size S [--flags mmap,init-shared]",
    example: "gmem create --size 2M --flags mmap,init-shared",
    flags: [
      { name: "size", value: "S", required: true, help: "size in bytes (4096, 0x1000, 4K, 2M, 1G)" },
      {
        name: "flags",
        value: "FLAGS",
        help: "GUEST_MEMFD_FLAG_* names or bits",
        complete: flagList(GUEST_MEMFD_FLAGS),
      },
    ],
    load,
  },
  {
    name: "gmem list",
    summary: "the open guest_memfds: fd, size, flags, mappings, memslot bindings",
    usage: "gmem list",
    example: "gmem list",
    load,
  },
  {
    name: "gmem stat",
    summary: "fstat of a guest_memfd plus its mappings and memslot bindings",
    usage: "gmem stat <gmem>",
    example: "gmem stat gmem0",
    args: [G],
    load,
  },
  {
    name: "gmem mmap",
    summary: "mmap(2) of a guest_memfd (ENODEV without the mmap flag, EINVAL for --private); names it mapN",
    usage: "gmem mmap <gmem> [--private] [--offset O] [--length L]",
    example: "gmem mmap gmem0 --length 4K",
    args: [G],
    flags: [
      { name: "private", help: "MAP_PRIVATE instead of MAP_SHARED" },
      { name: "offset", value: "O", help: "file offset" },
      {
        name: "length",
        value: "L",
        help: "length (default: size - offset; one page when --offset is at or past the end)",
      },
    ],
    load,
  },
  {
    name: "gmem punch",
    summary: "fallocate(PUNCH_HOLE|KEEP_SIZE): frees the range; it reads back as zeroes",
    usage: "gmem punch <gmem> <offset> <length>",
    example: "gmem punch gmem0 0 4K",
    args: rangeArgs,
    load,
  },
  {
    name: "gmem alloc",
    summary: "fallocate(KEEP_SIZE): allocates backing memory for the range (--no-keep-size sends mode 0)",
    usage: "gmem alloc <gmem> <offset> <length> [--no-keep-size]",
    example: "gmem alloc gmem0 0 2M",
    args: rangeArgs,
    flags: [{ name: "no-keep-size", help: "fallocate mode 0 (guest_memfd wants KEEP_SIZE: see the errno)" }],
    load,
  },
  {
    name: "gmem read",
    summary: "read(2) on the fd (guest_memfd refuses it: see the errno)",
    usage: "gmem read <gmem> <length>",
    example: "gmem read gmem0 16",
    args: [G, { name: "length" }],
    load,
  },
  {
    name: "gmem write",
    summary: "write(2) on the fd (guest_memfd refuses it)",
    usage: "gmem write <gmem> <bytes…|hex:…|str:…|fill:V[:len]>",
    example: "gmem write gmem0 0xaa 0xbb",
    args: [G, { name: "bytes", rest: true }],
    load,
  },
  {
    name: "gmem pread",
    summary: "pread(2) on the fd (guest_memfd refuses it)",
    usage: "gmem pread <gmem> <offset> <length>",
    example: "gmem pread gmem0 0 16",
    args: [G, { name: "offset" }, { name: "length" }],
    load,
  },
  {
    name: "gmem pwrite",
    summary: "pwrite(2) on the fd (guest_memfd refuses it)",
    usage: "gmem pwrite <gmem> <offset> <bytes…>",
    example: "gmem pwrite gmem0 0 0xaa",
    args: [G, { name: "offset" }, { name: "bytes", rest: true }],
    load,
  },
  {
    name: "gmem truncate",
    summary: "ftruncate(2) on the fd (guest_memfd refuses size changes)",
    usage: "gmem truncate <gmem> <length>",
    example: "gmem truncate gmem0 4M",
    args: [G, { name: "length" }],
    load,
  },
  {
    name: "gmem close",
    summary: "unmaps the guest_memfd's mappings and closes its fd",
    usage: "gmem close <gmem>",
    example: "gmem close gmem0",
    args: [G],
    load,
  },
];
