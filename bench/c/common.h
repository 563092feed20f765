/* Shared helpers of the C baselines: the plain libc + ioctl way to do what kvmsh does.
 * Numbers and offsets come from kvmsh_uapi.h, generated from kvmsh's ffi/ tables. */
#pragma once
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "kvmsh_uapi.h"
#include "kvmsh_guests.h"

#define F(p, type, st, field) (*(type *)((char *)(p) + KVMSH_OFF_##st##_##field))
#define LOAD_GPA (KVMSH_REAL_SEGMENT << 4)
#define REAL_MEM KVMSH_REAL_MEM

static inline uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "%s: %s\n", what, strerror(errno));
  exit(2);
}

static int xioctl(int fd, unsigned long req, unsigned long arg, const char *what) {
  int r = ioctl(fd, req, arg);
  if (r < 0) die(what);
  return r;
}

static int kvm_open(void) {
  int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) die("open /dev/kvm");
  return fd;
}

static int vm_create(int kvm) { return xioctl(kvm, KVMSH_KVM_CREATE_VM, 0, "KVM_CREATE_VM"); }

static int gmem_create(int vm, uint64_t size, uint64_t flags) {
  unsigned char a[KVMSH_SIZEOF_kvm_create_guest_memfd] = {0};
  F(a, uint64_t, kvm_create_guest_memfd, size) = size;
  F(a, uint64_t, kvm_create_guest_memfd, flags) = flags;
  return xioctl(vm, KVMSH_KVM_CREATE_GUEST_MEMFD, (unsigned long)a, "KVM_CREATE_GUEST_MEMFD");
}

static void *map_shared(int fd, uint64_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) die("mmap");
  return p;
}

static void *map_anon(uint64_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) die("mmap anon");
  return p;
}

static void memslot2(int vm, uint32_t slot, uint64_t gpa, uint64_t size, void *uaddr, int gmem) {
  unsigned char r[KVMSH_SIZEOF_kvm_userspace_memory_region2] = {0};
  F(r, uint32_t, kvm_userspace_memory_region2, slot) = slot;
  F(r, uint32_t, kvm_userspace_memory_region2, flags) = gmem >= 0 ? KVMSH_MEM_GUEST_MEMFD : 0;
  F(r, uint64_t, kvm_userspace_memory_region2, guest_phys_addr) = gpa;
  F(r, uint64_t, kvm_userspace_memory_region2, memory_size) = size;
  F(r, uint64_t, kvm_userspace_memory_region2, userspace_addr) = (uint64_t)(uintptr_t)uaddr;
  F(r, uint32_t, kvm_userspace_memory_region2, guest_memfd) = gmem >= 0 ? (uint32_t)gmem : 0;
  xioctl(vm, KVMSH_KVM_SET_USER_MEMORY_REGION2, (unsigned long)r, "KVM_SET_USER_MEMORY_REGION2");
}

struct vcpu {
  int fd;
  unsigned char *run;
  size_t run_size;
};

static struct vcpu vcpu_create(int kvm, int vm) {
  struct vcpu v;
  v.run_size = (size_t)xioctl(kvm, KVMSH_KVM_GET_VCPU_MMAP_SIZE, 0, "KVM_GET_VCPU_MMAP_SIZE");
  v.fd = xioctl(vm, KVMSH_KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
  v.run = mmap(NULL, v.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v.fd, 0);
  if (v.run == MAP_FAILED) die("mmap kvm_run");
  return v;
}

static void vcpu_close(struct vcpu *v) {
  munmap(v->run, v->run_size);
  close(v->fd);
}

/* KVM_SET_CPUID2 with what KVM_GET_SUPPORTED_CPUID answers (queried once per process). */
static void vcpu_cpuid(int kvm, struct vcpu *v) {
  static unsigned char *buf;
  static size_t len;
  if (!buf) {
    uint32_t cap = 256;
    for (;;) {
      len = KVMSH_SIZEOF_kvm_cpuid2 + (size_t)cap * KVMSH_SIZEOF_kvm_cpuid_entry2;
      buf = calloc(1, len);
      F(buf, uint32_t, kvm_cpuid2, nent) = cap;
      if (ioctl(kvm, KVMSH_KVM_GET_SUPPORTED_CPUID, buf) == 0) break;
      if (errno != E2BIG || cap >= 4096) die("KVM_GET_SUPPORTED_CPUID");
      free(buf);
      cap *= 2;
    }
  }
  xioctl(v->fd, KVMSH_KVM_SET_CPUID2, (unsigned long)buf, "KVM_SET_CPUID2");
}

/* 16-bit real mode as kvmsh's loader sets it (kvmtool's convention): every segment KVMSH_REAL_SEGMENT,
 * image at LOAD_GPA, IP 0, SP KVMSH_REAL_SP. */
static void vcpu_real_mode(struct vcpu *v) {
  static const int segs[] = {KVMSH_SREGS_CS, KVMSH_SREGS_DS, KVMSH_SREGS_ES,
                             KVMSH_SREGS_FS, KVMSH_SREGS_GS, KVMSH_SREGS_SS};
  unsigned char s[KVMSH_SIZEOF_kvm_sregs];
  xioctl(v->fd, KVMSH_KVM_GET_SREGS, (unsigned long)s, "KVM_GET_SREGS");
  for (unsigned i = 0; i < sizeof segs / sizeof segs[0]; i++) {
    unsigned char *g = s + segs[i];
    F(g, uint64_t, kvm_segment, base) = LOAD_GPA;
    F(g, uint16_t, kvm_segment, selector) = KVMSH_REAL_SEGMENT;
    F(g, uint32_t, kvm_segment, limit) = 0xffff;
    F(g, uint8_t, kvm_segment, type) = i == 0 ? 11 : 3;
    F(g, uint8_t, kvm_segment, s) = 1;
    F(g, uint8_t, kvm_segment, present) = 1;
    F(g, uint8_t, kvm_segment, db) = 0;
    F(g, uint8_t, kvm_segment, l) = 0;
    F(g, uint8_t, kvm_segment, g) = 0;
  }
  F(s, uint64_t, kvm_sregs, cr0) = KVMSH_REAL_CR0;
  F(s, uint64_t, kvm_sregs, cr4) = 0;
  F(s, uint64_t, kvm_sregs, efer) = 0;
  xioctl(v->fd, KVMSH_KVM_SET_SREGS, (unsigned long)s, "KVM_SET_SREGS");
  unsigned char r[KVMSH_SIZEOF_kvm_regs] = {0};
  F(r, uint64_t, kvm_regs, rip) = 0;
  F(r, uint64_t, kvm_regs, rsp) = KVMSH_REAL_SP;
  F(r, uint64_t, kvm_regs, rflags) = 2;
  xioctl(v->fd, KVMSH_KVM_SET_REGS, (unsigned long)r, "KVM_SET_REGS");
}

/* A VM with 1 MiB of anonymous memory in slot 0, `len` bytes of `code` at LOAD_GPA, and one vCPU
 * with KVM's CPUID in real mode at it: the set-up of rows 2, 3 and 7. */
static struct vcpu real_mode_guest(const void *code, size_t len) {
  int kvm = kvm_open(), vm = vm_create(kvm);
  unsigned char *mem = map_anon(REAL_MEM);
  if (len > REAL_MEM - LOAD_GPA) {
    fprintf(stderr, "guest too large\n");
    exit(2);
  }
  memcpy(mem + LOAD_GPA, code, len);
  memslot2(vm, 0, 0, REAL_MEM, mem, -1);
  struct vcpu v = vcpu_create(kvm, vm);
  vcpu_cpuid(kvm, &v);
  vcpu_real_mode(&v);
  return v;
}

static inline uint32_t vcpu_run(struct vcpu *v) {
  if (ioctl(v->fd, KVMSH_KVM_RUN, 0) < 0) die("KVM_RUN");
  return F(v->run, uint32_t, kvm_run, exit_reason);
}

/* argv: reps per  →  prints {"per":N,"samples":[…]} */
static void parse_args(int argc, char **argv, int *reps, long *per) {
  *reps = argc > 1 ? atoi(argv[1]) : 5;
  *per = argc > 2 ? atol(argv[2]) : 1000;
}

/* argv[3] of the memory rows (4, 5): "anon" for anonymous memory (a host without guest_memfd),
 * anything else (or nothing) for an MMAP|INIT_SHARED guest_memfd. */
static int use_anon(int argc, char **argv) { return argc > 3 && strcmp(argv[3], "anon") == 0; }

static void print_samples(long per, const double *s, int n) {
  printf("{\"per\":%ld,\"samples\":[", per);
  for (int i = 0; i < n; i++) printf("%s%.3f", i ? "," : "", s[i]);
  printf("]}\n");
}
