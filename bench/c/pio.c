/* Row 2: PIO exit round trip. The guest loops on `out 0x10, al`; each exit is checked and the
 * vCPU re-entered. ns per exit. */
#include "common.h"

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  struct vcpu v = real_mode_guest(GUEST_PIO_LOOP, sizeof GUEST_PIO_LOOP);
  double s[256];
  for (int r = -1; r < reps && r < 256; r++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < per; i++) {
      uint32_t why = vcpu_run(&v);
      if (why != KVMSH_EXIT_IO || F(v.run, uint16_t, kvm_run, io_port) != GUEST_PIO_PORT) {
        fprintf(stderr, "unexpected exit %u\n", why);
        return 1;
      }
    }
    if (r >= 0) s[r] = (double)(now_ns() - t0) / per;
  }
  print_samples(per, s, reps);
  return 0;
}
