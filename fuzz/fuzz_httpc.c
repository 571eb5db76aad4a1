/*
 * libFuzzer target: the HTTP answer parser of vireo and vireod's clients
 * (httpc_parse_response(), daemon/httpc.c), which reads what vireod (over
 * a Unix socket or TLS) or a vireo-vmm sends back.
 *
 * Input: the answer's bytes.  A parsed answer has a status of 100 to 599
 * and a NUL-terminated body no longer than the input; an error has a
 * one-line message.  Seeds: fuzz/corpus/httpc/.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256], *resp = NULL;
	int status = -1;
	char *buf = malloc(size + 1);

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	err[0] = '\0';
	int r = httpc_parse_response(buf, size, &status, &resp, err, sizeof(err));
	if (r == 0) {
		if (!resp || status < 100 || status > 599 || strlen(resp) > size)
			abort();
	} else {
		if (resp || (r != -EIO && r != -ENOMEM) || !err[0] || strchr(err, '\n'))
			abort();
	}
	free(resp);
	free(buf);
	return 0;
}
