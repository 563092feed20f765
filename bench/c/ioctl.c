/* Row 1: one trivial ioctl, KVM_CHECK_EXTENSION(KVM_CAP_USER_MEMORY) on /dev/kvm. ns per call.
 * With a third argument `threaded`, an idle second thread exists first: the kernel's fd lookup
 * then takes a reference on the file per call (as in any multi-threaded process, Deno's too). */
#include <pthread.h>
#include "common.h"

static void *idle(void *a) {
  (void)a;
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  int reps;
  long per;
  parse_args(argc, argv, &reps, &per);
  if (argc > 3 && strcmp(argv[3], "threaded") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL) != 0) die("pthread_create");
  }
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
