/* Row 4: create a VM, a 2 MiB MMAP|INIT_SHARED guest_memfd, its mapping, a memslot on it, a vCPU;
 * load `hlt`, run to HLT, and close everything. ns per cycle. With "anon" (argv[3]): 2 MiB of
 * anonymous memory instead of the guest_memfd (a host without one). */
#include "common.h"

#define SIZE (2ull << 20)

static int anon;

static void cycle(int kvm) {
  int vm = vm_create(kvm);
  int g = anon ? -1 : gmem_create(vm, SIZE, KVMSH_GMEM_MMAP | KVMSH_GMEM_INIT_SHARED);
  unsigned char *mem = anon ? map_anon(SIZE) : map_shared(g, SIZE);
  memcpy(mem + LOAD_GPA, GUEST_HLT, sizeof GUEST_HLT);
  memslot2(vm, 0, 0, SIZE, mem, g);
  struct vcpu v = vcpu_create(kvm, vm);
  vcpu_cpuid(kvm, &v);
  vcpu_real_mode(&v);
  uint32_t why = vcpu_run(&v);
  if (why != KVMSH_EXIT_HLT) {
    fprintf(stderr, "unexpected exit %u\n", why);
    exit(1);
  }
  vcpu_close(&v);
  munmap(mem, SIZE);
  if (g >= 0) close(g);
  close(vm);
}

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  anon = use_anon(argc, argv);
  int kvm = kvm_open();
  double s[256];
  for (int r = -1; r < reps && r < 256; r++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < per; i++) cycle(kvm);
    if (r >= 0) s[r] = (double)(now_ns() - t0) / per;
  }
  print_samples(per, s, reps);
  return 0;
}
