#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostfwd.h"

static int net_hostfwd_port(const char *s, size_t n, uint16_t *port)
{
	char buf[8];
	char *end;
	unsigned long v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = 0;
	v = strtoul(buf, &end, 10);
	if (*end || v == 0 || v > 65535 || buf[0] < '0' || buf[0] > '9')
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* "[ADDR]:PORT" of n bytes at s; an empty ADDR leaves *addr as it is. */
static int net_hostfwd_end(const char *s, size_t n, struct in_addr *addr, uint16_t *port)
{
	const char *colon = memrchr(s, ':', n);
	char a[INET_ADDRSTRLEN];
	size_t alen;

	if (!colon)
		return -EINVAL;
	alen = (size_t)(colon - s);
	if (alen) {
		if (alen >= sizeof(a))
			return -EINVAL;
		memcpy(a, s, alen);
		a[alen] = 0;
		if (inet_pton(AF_INET, a, addr) != 1)
			return -EINVAL;
	}
	return net_hostfwd_port(colon + 1, n - alen - 1, port);
}

int net_hostfwd_parse(const char *s, struct net_hostfwd *out, char *err, size_t errlen)
{
	const char *rest, *dash;

	memset(out, 0, sizeof(*out));
	out->host_addr.s_addr = htonl(INADDR_ANY);
	inet_pton(AF_INET, "10.0.2.15", &out->guest_addr);
	if (!strncmp(s, "tcp:", 4))
		rest = s + 4;
	else if (!strncmp(s, "udp:", 4))
		rest = s + 4, out->udp = true;
	else
		goto bad;
	dash = strchr(rest, '-');
	if (!dash || net_hostfwd_end(rest, (size_t)(dash - rest), &out->host_addr,
				     &out->host_port) ||
	    net_hostfwd_end(dash + 1, strlen(dash + 1), &out->guest_addr, &out->guest_port))
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "hostfwd '%s': use tcp|udp:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT "
		 "(e.g. tcp:127.0.0.1:2222-:22), ports 1 to 65535", s);
	return -EINVAL;
}

