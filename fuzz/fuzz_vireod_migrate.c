/*
 * libFuzzer target: the request bodies of vireod's live migration between
 * vireods (daemon/migrate-parse.c): POST /migrations/incoming (a VM's
 * definition, from another vireod or any API client, and a listen
 * address) and POST /vms/{name}/migrate (the URI handed to vireo-vmm).
 *
 * Input: one byte choosing the parser, then the body.
 * Seeds: fuzz/corpus/vireod_migrate/.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "migrate.h"
#include "vmdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], listen[MIGRATE_LISTEN_MAX + 1], uri[MIGRATE_URI_MAX + 1];
	struct in_addr a;
	struct vmdef def;
	int64_t dt, bw;

	if (size < 1)
		return 0;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;
	err[0] = '\0';
	if (data[0] & 1) {
		int r = migrate_parse_out(text, len, uri, &dt, &bw, err, sizeof(err));
		if (r == 0) {
			/* what reaches vireo-vmm: bounded, tcp: or unix:, no control bytes */
			size_t n = strlen(uri);
			if (!n || n > MIGRATE_URI_MAX || (strncmp(uri, "tcp:", 4) && strncmp(uri, "unix:", 5)))
				abort();
			for (size_t i = 0; i < n; i++)
				if ((unsigned char)uri[i] < 0x20)
					abort();
			if (dt < 0 || dt > 60000 || bw < 0 || bw > 1000000)
				abort();
		} else if ((r != 400 && r != 500) || !err[0]) {
			abort();   /* a refusal says why */
		}
	} else {
		int r = migrate_parse_incoming(text, len, &def, listen, err, sizeof(err));
		if (r == 0) {
			if (!vmdef_name_ok(def.name) || !vmdef_uuid_ok(def.uuid) ||
			    inet_pton(AF_INET, listen, &a) != 1)
				abort();
		} else if ((r != 400 && r != 500) || !err[0]) {
			abort();
		}
	}
	return 0;
}
