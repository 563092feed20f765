/* Row 5: fill + verify of a 1 GiB MMAP|INIT_SHARED guest_memfd mapping from the host: memset,
 * then memcmp against a 1 MiB pattern. GB/s (bytes written + bytes read per second). With "anon"
 * (argv[3]): a 1 GiB anonymous mapping instead (a host without guest_memfd). */
#include "common.h"

#define CHUNK (1u << 20)

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  uint64_t size = (uint64_t)per << 20; /* per = MiB */
  int kvm = kvm_open(), vm = vm_create(kvm);
  int anon = use_anon(argc, argv);
  int g = anon ? -1 : gmem_create(vm, size, KVMSH_GMEM_MMAP | KVMSH_GMEM_INIT_SHARED);
  unsigned char *mem = anon ? map_anon(size) : map_shared(g, size);
  static unsigned char ref[CHUNK];
  double s[256];
  for (int r = -1; r < reps && r < 256; r++) {
    int v = 0x11 + r + 1;
    memset(ref, v, CHUNK);
    uint64_t t0 = now_ns();
    memset(mem, v, size);
    for (uint64_t off = 0; off < size; off += CHUNK) {
      if (memcmp(mem + off, ref, CHUNK) != 0) {
        fprintf(stderr, "verify failed near %llu\n", (unsigned long long)off);
        return 1;
      }
    }
    if (r >= 0) s[r] = (double)(2 * size) / (double)(now_ns() - t0);
  }
  print_samples(per, s, reps);
  return 0;
}
