/* Row 7: a whole process running a real-mode guest from a flat binary in 1 MiB of anonymous
 * memory: bytes on port 0xe9 go to stdout, a byte on 0xf4 ends the run (exit status as QEMU's
 * isa-debug-exit: value << 1 | 1), HLT exits 0. What `kvmsh run guest.bin` does. */
#include "common.h"

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: hello guest.bin\n");
    return 2;
  }
  int f = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (f < 0) die(argv[1]);
  static unsigned char image[REAL_MEM - LOAD_GPA];
  ssize_t len = read(f, image, sizeof image);
  if (len < 0) die("read");
  close(f);
  struct vcpu v = real_mode_guest(image, (size_t)len);
  for (;;) {
    uint32_t why = vcpu_run(&v);
    if (why == KVMSH_EXIT_HLT) return 0;
    if (why != KVMSH_EXIT_IO) {
      fprintf(stderr, "exit %u\n", why);
      return 1;
    }
    unsigned char *data = v.run + F(v.run, uint64_t, kvm_run, io_data_offset);
    uint16_t port = F(v.run, uint16_t, kvm_run, io_port);
    if (port == GUEST_CONSOLE_PORT) {
      if (write(1, data, 1) < 0) die("write");
    } else if (port == GUEST_EXIT_PORT) {
      return (data[0] << 1) | 1;
    }
  }
}
