/* Row 1: one trivial ioctl, KVM_CHECK_EXTENSION(KVM_CAP_USER_MEMORY) on /dev/kvm. ns per call. */
#include "common.h"

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  int kvm = kvm_open();
  double s[256];
  for (int r = -1; r < reps && r < 256; r++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < per; i++) {
      if (ioctl(kvm, KVMSH_KVM_CHECK_EXTENSION, KVMSH_CAP_USER_MEMORY) != 1) die("KVM_CHECK_EXTENSION");
    }
    if (r >= 0) s[r] = (double)(now_ns() - t0) / per;
  }
  print_samples(per, s, reps);
  return 0;
}
