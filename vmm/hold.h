/*
 * What vireo-vmm opens once and keeps for every VM it builds: /dev/kvm,
 * the kernel and initrd, the console file, the disks (their back ends,
 * with their locks and I/O threads), the taps, /dev/vhost-net per queue
 * pair and /dev/vhost-vsock.  main.c opens them before the
 * sandbox and the filters; a VM built afterwards (also after a guest
 * reboot with --on-reboot restart) gets duplicates of the kept file
 * descriptors and the kept disks, so it needs no path of the host.
 */
#ifndef VIREO_VMM_HOLD_H
#define VIREO_VMM_HOLD_H

#include <sys/types.h>

#include "options.h"

struct blk_backend;

/* Before the sandbox's namespaces (in the host's network namespace): the
 * taps --net tap=NAME names (created there when missing).  0, or -errno
 * after printing one line. */
int hold_open_net(const struct vmm_opts *o);
/* The sandbox's monitor process: let go of what hold_open_net opened,
 * so that a tap vireo-vmm created goes when the VM's process ends. */
void hold_forget(void);

/* Open what the options name; 0, or -errno after printing one line (a
 * disk that cannot be used).  A file that cannot be opened is not an
 * error here: its open at VM build time fails the same way and says so. */
int hold_open(const struct vmm_opts *o);
void hold_close(void);

/*
 * open(2) for the VM's files: a duplicate of the kept descriptor for
 * @path (same access mode; O_TRUNC empties the file and rewinds it), the
 * kept errno if holding it failed, else open(2) itself (nothing held:
 * unit tests, tools).
 */
int hold_open_file(const char *path, int flags, mode_t mode);

/* The kept back end of disk @index as a new back end whose close() leaves
 * the kept one open: 1 and *out, or 0 when nothing is held. */
int hold_disk(unsigned index, struct blk_backend **out);

/* The kept tap of --net @index as a new back end (net_tap_dup): 1 and
 * *out, 0 when none is kept, or -errno. */
struct net_backend;
int hold_net_tap(unsigned index, struct net_backend **out);

/* /dev/vhost-net for pair @pair of --net @index: 1 and *fd (a duplicate
 * of the kept one, which this process may already own: vhost_attach
 * accepts that), or 1 and *fd = -errno when opening it failed; 0 when
 * nothing is kept (open it yourself). */
int hold_vhost_net(unsigned index, unsigned pair, int *fd);

#endif
