/*
 * Save and restore of a VM (PUT /vm/save, --restore DIR): the KVM and
 * device state into state.h's file, guest RAM into a sparse memory file.
 *
 * A save directory holds two files:
 *   state   the state file (state.h)
 *   memory  guest RAM, the regions one after another (state.h's config
 *           gives their offsets); pages of zeros are holes
 * Both are written as NAME.new and renamed when complete, so a directory
 * never holds a half-written save under the final names, and a VM
 * restored from a directory can save into the same one (its RAM stays
 * mapped from the replaced file).
 */
#ifndef VIREO_VMM_SNAPSHOT_H
#define VIREO_VMM_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "gmem.h"

struct vm;
struct vmm_opts;
struct vstate;
struct vstate_config;
struct vstate_writer;

#define SNAPSHOT_STATE_FILE  "state"
#define SNAPSHOT_MEMORY_FILE "memory"

/*
 * On the event loop (vm_call), every vCPU parked: write the VM into @dir
 * (made, mode 0700, when missing).  0, or -errno with one line in @msg:
 * -ENOTSUP for a device that cannot be saved (named), the errno of a file
 * operation otherwise.
 */
int snapshot_save(struct vm *vm, const char *dir, char *msg, size_t msglen);

/*
 * PUT /vm/snapshot, on the event loop, every vCPU parked: take an internal
 * snapshot named @name (vstate_snapshot_name_ok) of every writable disk
 * (each must be a qcow2 image without one of that name; read-only disks
 * are left out), then save the VM as snapshot_save does into @dir (NULL:
 * "PATH.snap-NAME" beside the first such disk's image PATH), the state
 * file naming the snapshot and its disks.  On failure nothing is left in
 * the images.  0, or -errno with one line in @msg: -EINVAL (the name),
 * -EEXIST (a disk has a snapshot of that name), -ENOTSUP (a device that
 * cannot be saved, a writable raw disk, no writable qcow2 disk), the
 * errno of a file or image operation otherwise.
 */
int snapshot_take(struct vm *vm, const char *name, const char *dir, char *msg, size_t msglen);

/*
 * On the event loop, every vCPU parked: the state file into @w (devices
 * that cannot be saved refused, the disks' requests completed first), as
 * snapshot_save and the migration (migrate.c) send it.  0 or -errno with
 * one line in @msg.
 */
int snapshot_state(struct vm *vm, struct vstate_writer *w, char *msg, size_t msglen);
/* Whether every device of @vm can be saved: 0, or -ENOTSUP with one line
 * in @msg naming the device that "cannot be @what" (saved, migrated). */
int snapshot_check_devices(struct vm *vm, const char *what, char *msg, size_t msglen);
/* The CONFIG section of @vm's state. */
void snapshot_config(struct vm *vm, struct vstate_config *c);

/*
 * --incoming (migrate.c), before the hold: take the received, checked
 * state (@state of @len bytes, malloc'd, parsed into @st; owned from now
 * on) and guest RAM (@mem_fd, laid out as the memory file, and @mem_map,
 * its shared mapping of the config's memory_file_size bytes, into which
 * it was received; both owned) as a restore would, the machine into @o.
 * The mapping is moved into place (mremap) as the guest's RAM, with the
 * pages it already maps.  0, or -EINVAL after one error line.
 */
int snapshot_prepare_incoming(struct vmm_opts *o, void *state, size_t len,
			      const struct vstate *st, int mem_fd, void *mem_map);
/*
 * --incoming, the stream's checked CONFIG in (@c) and the rest still to
 * come into @mem_fd: 1 when the VM can be built now, while the rest comes
 * (the machine set into @o from @c; guest RAM will map @mem_fd anew, owned
 * from now on), 0 when it must wait for the whole stream
 * (snapshot_prepare_incoming): a VM with disks, or nets this command line
 * does not give in full (each with its MAC, none user-mode).  Then
 * snapshot_incoming_state() with the stream's state before snapshot_load.
 */
int snapshot_incoming_early(struct vmm_opts *o, const struct vstate_config *c, int mem_fd);
/* The state for snapshot_incoming_early's VM (as snapshot_prepare_incoming
 * takes it, owned from now on) and @mem_map, the mapping the stream was
 * received into (owned: snapshot_load moves it over guest RAM): the nets
 * checked against the ones built.  0, or -EINVAL after one error line. */
int snapshot_incoming_state(struct vmm_opts *o, void *state, size_t len, const struct vstate *st,
			    void *mem_map);

/*
 * --restore, before the hold and the sandbox: read and check DIR's state
 * file and the memory file's size, take the machine from the saved
 * configuration into @o (memory, vCPUs, options), and check what the
 * command line adds.  0, or -EINVAL after printing one error line.
 */
int snapshot_prepare(struct vmm_opts *o);
/* --restore, after the hold: the disks are the saved sizes; the save of
 * a snapshot reverts each of its disks to the internal snapshot (after
 * checking that every one has it: otherwise nothing is changed).  0, or
 * -EINVAL after printing one error line. */
int snapshot_check_disks(const struct vmm_opts *o);
/* The memory file's path (for the hold), or NULL without --restore. */
const char *snapshot_memory_path(void);
/* vm.c, guest RAM reserved and laid out: map the memory file over it
 * (MAP_PRIVATE; read in full first with --restore-prefault). */
int snapshot_map_memory(struct gmem *m, const struct vmm_opts *o);
/* vm.c instead of loading a kernel: the saved vCPUs, irqchip, PIT, clock
 * and devices.  0, or -errno after printing one error line. */
int snapshot_load(struct vm *vm);
/* Forget the state read by snapshot_prepare. */
void snapshot_release(void);

#endif
