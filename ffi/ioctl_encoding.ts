/**
 * The kernel's ioctl request encoding (include/uapi/asm-generic/ioctl.h, as used on x86):
 * bits 0..7 number, 8..15 type, 16..29 argument size, 30..31 direction.
 * @module
 */

const NRBITS = 8;
const TYPEBITS = 8;
const SIZEBITS = 14;
const NRSHIFT = 0;
const TYPESHIFT = NRSHIFT + NRBITS;
const SIZESHIFT = TYPESHIFT + TYPEBITS;
const DIRSHIFT = SIZESHIFT + SIZEBITS;

/** No data transfer. */
export const IOC_NONE = 0;
/** Userspace writes, the kernel reads (`_IOW`). */
export const IOC_WRITE = 1;
/** The kernel writes, userspace reads (`_IOR`). */
export const IOC_READ = 2;

/** `_IOC(dir, type, nr, size)`: the request number, as an unsigned 32-bit value. */
export function ioc(dir: number, type: number, nr: number, size: number): number {
  if (size < 0 || size >= 1 << SIZEBITS) throw new RangeError(`ioctl size ${size} does not fit 14 bits`);
  return ((dir << DIRSHIFT) | (type << TYPESHIFT) | (nr << NRSHIFT) | (size << SIZESHIFT)) >>> 0;
}

/** `_IO(type, nr)` */
export const io = (type: number, nr: number): number => ioc(IOC_NONE, type, nr, 0);
/** `_IOR(type, nr, size)` */
export const ior = (type: number, nr: number, size: number): number => ioc(IOC_READ, type, nr, size);
/** `_IOW(type, nr, size)` */
export const iow = (type: number, nr: number, size: number): number => ioc(IOC_WRITE, type, nr, size);
/** `_IOWR(type, nr, size)` */
export const iowr = (type: number, nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, type, nr, size);

/** Splits a request number back into its fields (for display). */
export function decodeIoc(req: number): { dir: number; type: number; nr: number; size: number } {
  return {
    dir: (req >>> DIRSHIFT) & 3,
    type: (req >>> TYPESHIFT) & 0xff,
    nr: (req >>> NRSHIFT) & 0xff,
    size: (req >>> SIZESHIFT) & ((1 << SIZEBITS) - 1),
  };
}
