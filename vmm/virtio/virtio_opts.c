/* Parsing of the virtio options of vireo-vmm. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
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

static bool virtio_opts_id_ok(const char *s)
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
"                         limited to SIZE bytes per second\n",
	      f);
}
