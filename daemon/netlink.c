/* rtnetlink requests (netlink.h). */
#include "netlink.h"

#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

struct nlreq {
	union {
		struct nlmsghdr h;
		char buf[1024];
	};
};

static void *tail(struct nlreq *r)
{
	return r->buf + NLMSG_ALIGN(r->h.nlmsg_len);
}

static struct rtattr *attr(struct nlreq *r, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = tail(r);
	size_t need = NLMSG_ALIGN(r->h.nlmsg_len) + RTA_SPACE(len);

	if (need > sizeof(r->buf))
		return NULL;
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	r->h.nlmsg_len = (uint32_t)need;
	return a;
}

static void nest_end(struct nlreq *r, struct rtattr *a)
{
	a->rta_len = (unsigned short)((char *)tail(r) - (char *)a);
}

static void init(struct nlreq *r, unsigned short type, unsigned short flags, const void *hdr, size_t len)
{
	memset(r, 0, sizeof(*r));
	r->h.nlmsg_len = (uint32_t)NLMSG_LENGTH(len);
	r->h.nlmsg_type = type;
	r->h.nlmsg_flags = (unsigned short)(NLM_F_REQUEST | NLM_F_ACK | flags);
	r->h.nlmsg_seq = (uint32_t)time(NULL);
	memcpy(NLMSG_DATA(&r->h), hdr, len);
}

/* Send @r and read the kernel's acknowledgement: 0 or -errno. */
static int talk(struct nlreq *r)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[4096];
	int fd, ret = -EIO;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, r, r->h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->h.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
					ret = -EIO;
					goto out;
				}
				struct nlmsgerr *e = NLMSG_DATA(h);
				ret = e->error;   /* 0 or -errno */
				goto out;
			}
		}
	}
out:
	close(fd);
	return ret;
}

static int index_of(const char *name)
{
	unsigned i = if_nametoindex(name);

	return i ? (int)i : -ENODEV;
}

int nl_bridge_add(const char *name)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct nlreq r;

	if (strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	attr(&r, IFLA_IFNAME, name, strlen(name) + 1);
	struct rtattr *li = attr(&r, IFLA_LINKINFO, NULL, 0);
	attr(&r, IFLA_INFO_KIND, "bridge", 7);
	nest_end(&r, li);
	return talk(&r);
}

int nl_link_del(const char *name)
{
	int idx = index_of(name);
	if (idx < 0)
		return idx;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = idx };
	struct nlreq r;

	init(&r, RTM_DELLINK, 0, &ifi, sizeof(ifi));
	return talk(&r);
}

int nl_addr_add(const char *name, uint32_t addr, unsigned prefix)
{
	int idx = index_of(name);
	if (idx < 0)
		return idx;
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix,
				 .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (unsigned)idx };
	uint32_t a = htonl(addr);
	uint32_t mask = prefix ? ~((1u << (32 - prefix)) - 1) : 0;
	uint32_t bc = htonl(addr | ~mask);
	struct nlreq r;

	init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	attr(&r, IFA_LOCAL, &a, 4);
	attr(&r, IFA_ADDRESS, &a, 4);
	attr(&r, IFA_BROADCAST, &bc, 4);
	return talk(&r);
}

static int set_link(const char *name, bool up, int master)
{
	int idx = index_of(name);
	if (idx < 0)
		return idx;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = idx };
	struct nlreq r;

	if (up) {
		ifi.ifi_flags = IFF_UP;
		ifi.ifi_change = IFF_UP;
	}
	init(&r, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	if (master > 0)
		attr(&r, IFLA_MASTER, &master, sizeof(master));
	return talk(&r);
}

int nl_link_up(const char *name)
{
	return set_link(name, true, 0);
}

int nl_link_set_master(const char *name, const char *master)
{
	int m = index_of(master);

	return m < 0 ? m : set_link(name, false, m);
}

int nl_link_master(const char *name)
{
	int idx = index_of(name);
	if (idx < 0)
		return idx;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = idx };
	struct nlreq r;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[16384];
	int fd, ret = -EIO;

	init(&r, RTM_GETLINK, 0, &ifi, sizeof(ifi));
	r.h.nlmsg_flags = NLM_F_REQUEST;
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &r, r.h.nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);
			ret = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error : -EIO;
			goto out;
		}
		if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(ifi)))
			continue;
		ret = 0;
		struct ifinfomsg *m = NLMSG_DATA(h);
		int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (struct rtattr *a = IFLA_RTA(m); RTA_OK(a, len); a = RTA_NEXT(a, len))
			if (a->rta_type == IFLA_MASTER && RTA_PAYLOAD(a) >= sizeof(int))
				memcpy(&ret, RTA_DATA(a), sizeof(int));
		goto out;
	}
out:
	close(fd);
	return ret;
}
