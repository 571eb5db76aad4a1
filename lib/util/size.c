#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <vireo/util.h>

int vparse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (end == s || *end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

static int vsize_unit(const char *suffix, uint64_t default_unit, uint64_t *unit)
{
	static const struct { const char *name; unsigned shift; } units[] = {
		{ "", 0 }, { "b", 0 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
		{ "t", 40 }, { "tb", 40 }, { "tib", 40 },
		{ "p", 50 }, { "pb", 50 }, { "pib", 50 },
		{ "e", 60 }, { "eb", 60 }, { "eib", 60 },
	};

	if (!*suffix) {
		*unit = default_unit;
		return 0;
	}
	for (size_t i = 0; i < VIREO_ARRAY_SIZE(units); i++) {
		if (!strcasecmp(suffix, units[i].name)) {
			*unit = 1ULL << units[i].shift;
			return 0;
		}
	}
	return -EINVAL;
}

int vsize_parse(const char *s, uint64_t default_unit, uint64_t *out)
{
	char *end;
	uint64_t unit, whole;
	long double frac = 0;
	int ret;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	whole = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end == '.') {
		char *fend;
		frac = strtold(end, &fend);
		if (fend == end + 1)
			return -EINVAL;
		end = fend;
	}
	ret = vsize_unit(end, default_unit, &unit);
	if (ret)
		return ret;
	if (unit && whole > UINT64_MAX / unit)
		return -ERANGE;
	whole *= unit;
	if (frac != 0) {
		long double extra = frac * (long double)unit;
		if ((long double)(UINT64_MAX - whole) < extra)
			return -ERANGE;
		whole += (uint64_t)extra;
	}
	*out = whole;
	return 0;
}

char *vsize_format(uint64_t bytes, char *buf, size_t len)
{
	static const char *const names[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned i = 0;
	double v = (double)bytes;

	while (v >= 1024 && i + 1 < VIREO_ARRAY_SIZE(names)) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.3g %s", v, names[i]);
	return buf;
}
