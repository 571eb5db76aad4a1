/* vCPU threads: one per vCPU, each looping on KVM_RUN and dispatching
 * port/MMIO exits to the buses.  A vCPU that hits a fatal exit reports one
 * line plus a register dump and asks the VM to stop. */
#ifndef VIREO_VMM_VCPU_H
#define VIREO_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	unsigned dumped_gen;             /* last vm->dump_gen handled */
};

int vcpu_create(struct vm *vm, unsigned index, struct vcpu **out);
void vcpu_destroy(struct vcpu *v);
int vcpu_start(struct vcpu *v);
/* Make KVM_RUN return and keep it from re-entering (any thread). */
void vcpu_kick(struct vcpu *v);
void vcpu_join(struct vcpu *v);
/* Signal used to kick vCPU threads out of KVM_RUN. */
#define VCPU_KICK_SIGNAL SIGUSR1

#endif
