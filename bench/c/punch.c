/* Row 6: punch-hole + refault of a 1 GiB MMAP|INIT_SHARED guest_memfd in 2 MiB steps: per step
 * fallocate(PUNCH_HOLE|KEEP_SIZE) then memset of the step (faulting fresh pages). ns per GiB pass. */
#include "common.h"

#define STEP (2ull << 20)

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  uint64_t size = (uint64_t)per * STEP; /* per = steps */
  int kvm = kvm_open(), vm = vm_create(kvm);
  int g = gmem_create(vm, size, KVMSH_GMEM_MMAP | KVMSH_GMEM_INIT_SHARED);
  unsigned char *mem = map_shared(g, size);
  memset(mem, 1, size);
  double s[256];
  for (int r = -1; r < reps && r < 256; r++) {
    uint64_t t0 = now_ns();
    for (uint64_t off = 0; off < size; off += STEP) {
      if (fallocate(g, KVMSH_FALLOC_PUNCH_HOLE | KVMSH_FALLOC_KEEP_SIZE, (off_t)off, (off_t)STEP) < 0) die("fallocate");
      memset(mem + off, 0x22, STEP);
    }
    if (r >= 0) s[r] = (double)(now_ns() - t0);
  }
  print_samples(per, s, reps);
  return 0;
}
