/* Row 3: MMIO read exit round trip. The guest loops on a 1-byte load from an address no memslot
 * covers; the host puts a byte in kvm_run.mmio.data and re-enters. ns per exit. */
#include "common.h"

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  struct vcpu v = real_mode_guest(GUEST_MMIO_LOOP, sizeof GUEST_MMIO_LOOP);
  double s[256];
  for (int r = -1; r < reps && r < 256; r++) {
    uint64_t t0 = now_ns();
    for (long i = 0; i < per; i++) {
      uint32_t why = vcpu_run(&v);
      if (why != KVMSH_EXIT_MMIO || F(v.run, uint64_t, kvm_run, mmio_phys_addr) != GUEST_MMIO_GPA ||
          F(v.run, uint8_t, kvm_run, mmio_is_write)) {
        fprintf(stderr, "unexpected exit %u\n", why);
        return 1;
      }
      unsigned char *data = v.run + KVMSH_OFF_kvm_run_mmio_data;
      uint32_t len = F(v.run, uint32_t, kvm_run, mmio_len);
      memset(data, 0, 8);
      data[0] = GUEST_MMIO_VALUE;
      (void)len;
    }
    if (r >= 0) s[r] = (double)(now_ns() - t0) / per;
  }
  print_samples(per, s, reps);
  return 0;
}
