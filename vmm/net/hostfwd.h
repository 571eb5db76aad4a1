/* hostfwd rules of user-mode networking (--net user,hostfwd=...): pure
 * parsing, shared by the option parser and vmm/net/user.c. */
#ifndef VIREO_VMM_NET_HOSTFWD_H
#define VIREO_VMM_NET_HOSTFWD_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_USER_MAX_FWD 16

/* tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT */
struct net_hostfwd {
	bool udp;
	struct in_addr host_addr;     /* INADDR_ANY when not given */
	uint16_t host_port;
	struct in_addr guest_addr;    /* 10.0.2.15 when not given */
	uint16_t guest_port;
};

/* Parse one rule.  Returns 0, or -EINVAL with one line in err. */
int net_hostfwd_parse(const char *s, struct net_hostfwd *out, char *err, size_t errlen);

#endif
