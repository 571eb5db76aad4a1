#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runstate.h"

int runstate_init(struct runstate *rs)
{
	memset(rs, 0, sizeof(*rs));
	rs->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return rs->efd < 0 ? -errno : 0;
}

void runstate_destroy(struct runstate *rs)
{
	if (rs->efd >= 0)
		close(rs->efd);
	rs->efd = -1;
}

void runstate_request_stop(struct runstate *rs, enum vm_stop why, int status)
{
	int expected = VM_RUNNING;
	uint64_t one = 1;

	if (atomic_compare_exchange_strong(&rs->stop, &expected, (int)why)) {
		rs->status = status;
		if (write(rs->efd, &one, sizeof(one)) < 0) {
			/* an eventfd counter cannot overflow here */
		}
	}
}
