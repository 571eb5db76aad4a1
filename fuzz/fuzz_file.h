/* Shared by the fuzz targets that put fuzzed images into files. */
#ifndef VIREO_FUZZ_FILE_H
#define VIREO_FUZZ_FILE_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <vireo/util.h>

/* Write @n bytes to @path (created or emptied, mode 0600): 0 or -errno. */
static inline int put_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), r;

	if (fd < 0)
		return -errno;
	r = vio_write_full(fd, p, n);
	close(fd);
	return r < 0 ? r : 0;
}

#endif
