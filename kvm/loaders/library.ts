/**
 * The guest library (scripts/guests/, built by `deno task guests`, binaries committed): names
 * and paths, so the REPL's `run fill` and a scenario's `runGuest(vm, {elf: guestPath("fill")})`
 * need no file name.
 * @module
 */

/** The library's guests: file, mode, and what the args mean. */
export const GUEST_LIBRARY = Object.freeze(
  {
    fill: { file: "fill.elf", mode: "long", args: "gpa, size, value", about: "fills a range, ucall done(size)" },
    verify: {
      file: "verify.elf",
      mode: "long",
      args: "gpa, size, expected, new value (>= 256: none)",
      about: "checks every byte, then writes the new value; ucall assert(address, found) on a mismatch",
    },
    touch: {
      file: "touch.elf",
      mode: "long",
      args: "gpa, write (0/1), value",
      about: "one byte access; ucall done(value)",
    },
    hello16: { file: "hello16.bin", mode: "real", args: "", about: "Hello, world! on 0xE9 and COM1, then hlt" },
    ucall_demo: { file: "ucall_demo.elf", mode: "long", args: "", about: "print, sync(1), sync(2), done" },
    map_gpa: {
      file: "map_gpa.elf",
      mode: "long",
      args: "gpa, npages, attrs (0x10 = encrypted/private)",
      about: "KVM_HC_MAP_GPA_RANGE via vmcall; ucall done(rax)",
    },
  } as const,
);

/** A library guest's name. */
export type GuestName = keyof typeof GUEST_LIBRARY;

/** The path of a library guest's binary (RangeError for an unknown name). */
export function guestPath(name: string): string {
  const g = (GUEST_LIBRARY as Record<string, { file: string }>)[name];
  if (!g) throw new RangeError(`no guest '${name}' in the library (known: ${Object.keys(GUEST_LIBRARY).join(", ")})`);
  return decodeURIComponent(new URL(`../../scripts/guests/bin/${g.file}`, import.meta.url).pathname);
}
