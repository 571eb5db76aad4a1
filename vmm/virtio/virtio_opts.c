/* Parsing of the virtio options of vireo-vmm. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vireo/util.h>

#include "virtio_opts.h"

VIREO_PRINTF(3, 4)
static int virtio_opts_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int virtio_opts_bool(const char *v, bool *out)
{
	if (!strcmp(v, "on") || !strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

bool virtio_opts_id_ok(const char *s)
{
	if (!*s || strlen(s) >= VIRTIO_DISK_ID_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

int virtio_opts_disk(struct virtio_opts *o, char *arg, char *err, size_t errlen)
{
	struct virtio_disk_opt *d;
	char *save = NULL, *item;
	const char *bad_format = NULL;
	bool first = true;
	unsigned nr_dirs = 0;

	if (o->nr_disks >= VIRTIO_OPTS_MAX_DISKS)
		return virtio_opts_err(err, errlen, "--disk: at most %d disks",
				       VIRTIO_OPTS_MAX_DISKS);
	d = &o->disk[o->nr_disks];
	memset(d, 0, sizeof(*d));
	for (item = strtok_r(arg, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		const char *key = item, *val;

		if (!eq) {
			if (!first)
				return virtio_opts_err(err, errlen, "--disk: '%s' is not KEY=VALUE "
						       "(keys: path, format, readonly, id, serial, "
						       "backing, backing-dir)",
						       item);
			d->path = item;
			first = false;
			continue;
		}
		first = false;
		*eq = 0;
		val = eq + 1;
		if (!strcmp(key, "path") || !strcmp(key, "file")) {
			d->path = val;
		} else if (!strcmp(key, "format")) {
			if (!strcmp(val, "raw"))
				d->format = VIRTIO_DISK_RAW;
			else if (!strcmp(val, "qcow2"))
				d->format = VIRTIO_DISK_QCOW2;
			else
				bad_format = val;   /* reported with the path below */
		} else if (!strcmp(key, "readonly") || !strcmp(key, "ro")) {
			if (virtio_opts_bool(val, &d->readonly))
				return virtio_opts_err(err, errlen,
						       "--disk readonly '%s': use on or off", val);
		} else if (!strcmp(key, "id")) {
			if (!virtio_opts_id_ok(val))
				return virtio_opts_err(err, errlen, "--disk id '%s': use 1 to %d "
						       "letters, digits, '-', '_' or '.'", val,
						       VIRTIO_DISK_ID_MAX - 1);
			snprintf(d->id, sizeof(d->id), "%s", val);
		} else if (!strcmp(key, "serial")) {
			if (strlen(val) > 20)
				return virtio_opts_err(err, errlen, "--disk serial '%s': at most "
						       "20 characters", val);
			snprintf(d->serial, sizeof(d->serial), "%s", val);
		} else if (!strcmp(key, "backing")) {
			bool on;
			if (virtio_opts_bool(val, &on))
				return virtio_opts_err(err, errlen,
						       "--disk backing '%s': use on or off", val);
			d->backing_off = !on;
		} else if (!strcmp(key, "backing-dir")) {
			if (!*val)
				return virtio_opts_err(err, errlen,
						       "--disk backing-dir: give a directory");
			if (nr_dirs == VIRTIO_DISK_MAX_BACKING_DIRS)
				return virtio_opts_err(err, errlen, "--disk: at most %d "
						       "backing-dir", VIRTIO_DISK_MAX_BACKING_DIRS);
			d->backing_dirs[nr_dirs++] = val;
		} else {
			return virtio_opts_err(err, errlen, "--disk: unknown key '%s' (keys: "
					       "path, format, readonly, id, serial, backing, "
					       "backing-dir)", key);
		}
	}
	if (!d->path || !*d->path)
		return virtio_opts_err(err, errlen, "--disk: no image given: use --disk "
				       "path=FILE[,format=raw|qcow2][,readonly=on][,id=NAME]");
	if (bad_format)
		return virtio_opts_err(err, errlen, "--disk %s: unknown format '%s': use "
				       "raw or qcow2", d->path, bad_format);
	if ((d->backing_off || nr_dirs) && d->format == VIRTIO_DISK_RAW)
		return virtio_opts_err(err, errlen, "--disk %s: backing and backing-dir "
				       "apply to format=qcow2 only", d->path);
	if (d->backing_off && nr_dirs)
		return virtio_opts_err(err, errlen, "--disk %s: backing=off and "
				       "backing-dir contradict each other", d->path);
	if (!d->id[0])
		snprintf(d->id, sizeof(d->id), "disk%u", o->nr_disks);
	for (unsigned i = 0; i < o->nr_disks; i++)
		if (!strcmp(o->disk[i].id, d->id))
			return virtio_opts_err(err, errlen, "--disk id '%s' is used twice", d->id);
	o->nr_disks++;
	return 0;
}

int virtio_opts_rng(struct virtio_opts *o, const char *arg, char *err,
		    size_t errlen)
{
	uint64_t v;

	o->rng = true;
	o->rng_rate = 0;
	if (!arg || !*arg)
		return 0;
	if (strncmp(arg, "rate=", 5) || vsize_parse(arg + 5, 1, &v) || v == 0 ||
	    v > (1ULL << 30))
		return virtio_opts_err(err, errlen, "--rng '%s': use --rng or --rng=rate=SIZE "
				       "(bytes per second, 1 to 1G, e.g. rate=64K)", arg);
	o->rng_rate = v;
	return 0;
}

/* ---- --vsock ---- */

bool virtio_opts_vsock_cid_ok(uint64_t cid)
{
	return cid >= 3 && cid <= VIRTIO_VSOCK_CID_MAX;
}

static int virtio_opts_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int virtio_opts_vsock(struct virtio_opts *o, const char *arg, char *err,
		      size_t errlen)
{
	uint64_t cid;

	if (o->vsock)
		return virtio_opts_err(err, errlen, "--vsock: only one vsock device per VM");
	if (!arg || strncmp(arg, "cid=", 4) || strchr(arg, ','))
		return virtio_opts_err(err, errlen, "--vsock '%s': use --vsock cid=N (N from 3)",
				       arg ? arg : "");
	if (virtio_opts_u64(arg + 4, &cid))
		return virtio_opts_err(err, errlen, "--vsock cid '%s': not a number", arg + 4);
	if (!virtio_opts_vsock_cid_ok(cid))
		return virtio_opts_err(err, errlen, "--vsock cid %s: %s", arg + 4,
				       cid <= 2 ? "CIDs 0, 1 and 2 are reserved (hypervisor, "
				       "local, host); use 3 or more" : "above the largest "
				       "CID 4294967294");
	o->vsock = true;
	o->vsock_cid = cid;
	return 0;
}

/* ---- --balloon ---- */

int virtio_opts_balloon(struct virtio_opts *o, const char *arg, char *err,
			size_t errlen)
{
	char buf[256], *save = NULL, *item;

	o->balloon = true;
	o->balloon_reporting = true;
	o->balloon_deflate_on_oom = false;
	o->balloon_target = 0;
	if (!arg || !*arg)
		return 0;
	if (strlen(arg) >= sizeof(buf))
		return virtio_opts_err(err, errlen, "--balloon: argument too long");
	strcpy(buf, arg);
	for (item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		const char *val;

		if (!eq)
			return virtio_opts_err(err, errlen, "--balloon: '%s' is not KEY=VALUE "
					       "(keys: free-page-reporting, deflate-on-oom, target)",
					       item);
		*eq = 0;
		val = eq + 1;
		if (!strcmp(item, "free-page-reporting")) {
			if (virtio_opts_bool(val, &o->balloon_reporting))
				return virtio_opts_err(err, errlen, "--balloon free-page-reporting "
						       "'%s': use on or off", val);
		} else if (!strcmp(item, "deflate-on-oom")) {
			if (virtio_opts_bool(val, &o->balloon_deflate_on_oom))
				return virtio_opts_err(err, errlen, "--balloon deflate-on-oom "
						       "'%s': use on or off", val);
		} else if (!strcmp(item, "target")) {
			uint64_t v;

			if (vsize_parse(val, 1, &v) || v > (1ULL << 46))
				return virtio_opts_err(err, errlen, "--balloon target '%s': use "
						       "a size such as 512M", val);
			o->balloon_target = v & ~4095ULL;
		} else {
			return virtio_opts_err(err, errlen, "--balloon: unknown key '%s' (keys: "
					       "free-page-reporting, deflate-on-oom, target)", item);
		}
	}
	return 0;
}

/* ---- --net ---- */

int virtio_opts_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char sep;

	if (strlen(s) != 17)
		return -EINVAL;
	sep = s[2];
	if (sep != ':' && sep != '-')
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		const char *p = s + 3 * i;
		char hex[3] = { p[0], p[1], 0 };
		char *end;

		if (i < 5 && p[2] != sep)
			return -EINVAL;
		if (!isxdigit((unsigned char)p[0]) || !isxdigit((unsigned char)p[1]))
			return -EINVAL;
		v[i] = (unsigned)strtoul(hex, &end, 16);
		if (*end)
			return -EINVAL;
	}
	if (v[0] & 1)
		return -EINVAL;   /* multicast */
	if (!(v[0] | v[1] | v[2] | v[3] | v[4] | v[5]))
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

bool virtio_opts_tapname_ok(const char *s)
{
	if (!*s || strlen(s) >= VIRTIO_NET_TAP_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || *s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

#define NET_KEYS "(keys: tap, fd, mac, vhost, queues, id; or user with hostfwd, mac, id)"

int virtio_opts_net(struct virtio_opts *o, char *arg, char *err, size_t errlen)
{
	struct virtio_net_opt *n;
	char *save = NULL, *item;
	bool have_tap = false, have_fd = false, have_vhost = false;

	if (o->nr_nets >= VIRTIO_OPTS_MAX_NETS)
		return virtio_opts_err(err, errlen, "--net: at most %d network devices",
				       VIRTIO_OPTS_MAX_NETS);
	n = &o->net[o->nr_nets];
	memset(n, 0, sizeof(*n));
	n->fd = -1;
	n->queues = 1;
	for (item = strtok_r(arg, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		const char *key = item, *val;
		uint64_t v;

		if (!eq) {
			if (!strcmp(item, "user") && item == arg) {
				n->user = true;
				continue;
			}
			return virtio_opts_err(err, errlen, "--net: '%s' is not KEY=VALUE "
					       NET_KEYS, item);
		}
		*eq = 0;
		val = eq + 1;
		if (!strcmp(key, "tap")) {
			if (!virtio_opts_tapname_ok(val))
				return virtio_opts_err(err, errlen, "--net tap '%s': not an "
						       "interface name (1 to %d characters, no "
						       "'/', ':' or blanks)", val,
						       VIRTIO_NET_TAP_MAX - 1);
			snprintf(n->tap, sizeof(n->tap), "%s", val);
			have_tap = true;
		} else if (!strcmp(key, "fd")) {
			if (vparse_u64(val, 0, 65535, &v))
				return virtio_opts_err(err, errlen, "--net fd '%s': not a file "
						       "descriptor number", val);
			n->fd = (int)v;
			have_fd = true;
		} else if (!strcmp(key, "mac")) {
			if (virtio_opts_mac(val, n->mac))
				return virtio_opts_err(err, errlen, "--net mac '%s': not a "
						       "unicast MAC address (use e.g. "
						       "52:54:00:12:34:56)", val);
			n->has_mac = true;
		} else if (!strcmp(key, "vhost")) {
			bool b;
			if (virtio_opts_bool(val, &b))
				return virtio_opts_err(err, errlen,
						       "--net vhost '%s': use on or off", val);
			n->vhost = b ? VIRTIO_NET_VHOST_ON : VIRTIO_NET_VHOST_OFF;
			have_vhost = true;
		} else if (!strcmp(key, "queues")) {
			if (vparse_u64(val, 1, VIRTIO_NET_MAX_PAIRS, &v))
				return virtio_opts_err(err, errlen, "--net queues '%s': use 1 "
						       "to %d queue pairs", val,
						       VIRTIO_NET_MAX_PAIRS);
			n->queues = (unsigned)v;
		} else if (!strcmp(key, "hostfwd")) {
			if (n->nr_fwd == NET_USER_MAX_FWD)
				return virtio_opts_err(err, errlen, "--net: at most %d hostfwd "
						       "rules", NET_USER_MAX_FWD);
			if (net_hostfwd_parse(val, &n->fwd[n->nr_fwd], err, errlen))
				return -EINVAL;
			n->nr_fwd++;
		} else if (!strcmp(key, "id")) {
			if (!virtio_opts_id_ok(val))
				return virtio_opts_err(err, errlen, "--net id '%s': use 1 to %d "
						       "letters, digits, '-', '_' or '.'", val,
						       VIRTIO_NET_ID_MAX - 1);
			snprintf(n->id, sizeof(n->id), "%s", val);
		} else {
			return virtio_opts_err(err, errlen, "--net: unknown key '%s' " NET_KEYS,
					       key);
		}
	}
	if (n->user && (have_tap || have_fd || have_vhost || n->queues != 1))
		return virtio_opts_err(err, errlen, "--net user: takes hostfwd, mac and id "
				       "only");
	if (!n->user && n->nr_fwd)
		return virtio_opts_err(err, errlen, "--net: hostfwd needs user-mode "
				       "networking (--net user,hostfwd=...)");
	if (!n->user && have_tap == have_fd)
		return virtio_opts_err(err, errlen, "--net: give exactly one of user, "
				       "tap=NAME or fd=N");
	if (have_fd && n->queues != 1)
		return virtio_opts_err(err, errlen, "--net fd=%d: an fd gives one queue "
				       "pair; queues must be 1", n->fd);
	if (!n->id[0])
		snprintf(n->id, sizeof(n->id), "net%u", o->nr_nets);
	for (unsigned i = 0; i < o->nr_nets; i++) {
		if (!strcmp(o->net[i].id, n->id))
			return virtio_opts_err(err, errlen, "--net id '%s' is used twice",
					       n->id);
		if (have_tap && !strcmp(o->net[i].tap, n->tap))
			return virtio_opts_err(err, errlen, "--net tap '%s' is used twice",
					       n->tap);
		if (have_fd && o->net[i].fd == n->fd)
			return virtio_opts_err(err, errlen, "--net fd %d is used twice", n->fd);
	}
	o->nr_nets++;
	return 0;
}

void virtio_opts_usage(FILE *f)
{
	fputs(
"  --disk path=FILE[,format=raw|qcow2][,readonly=on][,id=NAME][,serial=S]\n"
"                         a virtio-blk disk (repeatable; the image is locked\n"
"                         against a second writer; the guest sees /dev/vda...;\n"
"                         format=qcow2 opens a qcow2 image with its backing\n"
"                         chain through the image library; the format is\n"
"                         never guessed)\n"
"      [,backing=off][,backing-dir=DIR]...\n"
"                         qcow2 backing files must name their format and lie\n"
"                         (after symlinks) in the image's directory or a\n"
"                         backing-dir; backing=off refuses any backing file\n"
"  --virtio-console       a virtio console on the same output as COM1; add\n"
"                         console=hvc0 to --cmdline; keyboard input then goes\n"
"                         to it instead of COM1\n"
"  --rng[=rate=SIZE]      a virtio-rng device fed by getrandom(), optionally\n"
"                         limited to SIZE bytes per second\n"
"  --vsock cid=N          a virtio-vsock device through the host's vhost-vsock:\n"
"                         host programs reach the guest at AF_VSOCK CID N (>= 3)\n"
"  --balloon[=free-page-reporting=on|off,deflate-on-oom=on|off,target=SIZE]\n"
"                         a virtio-balloon device: guest pages it frees or\n"
"                         gives to the balloon go back to the host; target=SIZE\n"
"                         asks the guest for SIZE bytes at start (reporting on,\n"
"                         deflate-on-oom off by default)\n"
"  --net tap=NAME|fd=N[,mac=MAC][,vhost=on|off][,queues=N][,id=ID]\n"
"                         a virtio-net device on a Linux tap (repeatable):\n"
"                         an existing tap is opened, a missing one created\n"
"                         (root; removed when vireo-vmm exits); fd=N takes an\n"
"                         open tap fd; vhost-net when /dev/vhost-net opens\n"
"                         unless vhost=off; queues=N pairs (1-3); the MAC is\n"
"                         derived from --name when not given\n"
"  --net user[,hostfwd=tcp|udp:[HADDR]:HPORT-[GADDR]:GPORT]...[,mac=MAC][,id=ID]\n"
"                         user-mode NAT (libslirp, no root): the guest gets\n"
"                         10.0.2.15 by DHCP, 10.0.2.2 is the host, 10.0.2.3 DNS\n",
	      f);
}
