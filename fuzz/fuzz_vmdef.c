/*
 * libFuzzer target: vireod's VM definition parser (daemon/vmdef.c), the
 * JSON of `vireo define` and of POST /vms.
 *
 * Input: the definition's bytes.  A definition that parses must survive
 * its canonical JSON unchanged (parse, print, parse: the same), and give
 * a vireo-vmm command line whose every argument is a C string of bounded
 * length.  Seeds: fuzz/corpus/vmdef/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmdef.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct vmdef a, b;
	char err[256];

	if (vmdef_parse((const char *)data, size, &a, err, sizeof(err))) {
		/* An error is one line naming a field or the JSON. */
		if (!err[0] || strchr(err, '\n'))
			abort();
		return 0;
	}
	if (!vmdef_name_ok(a.name) || a.kernel[0] != '/' || a.cpus < 1 || a.cpus > VMDEF_MAX_CPUS ||
	    a.memory_mib < VMDEF_MIN_MEM_MIB || a.memory_mib > VMDEF_MAX_MEM_MIB)
		abort();
	char *j = vmdef_to_json(&a);
	if (!j)
		return 0;
	if (vmdef_parse(j, strlen(j), &b, err, sizeof(err)) || memcmp(&a, &b, sizeof(a)))
		abort();
	free(j);
	char **argv = vmdef_vmm_argv(&a, "/usr/bin/vireo-vmm", "/run/vireo/vms/x");
	if (!argv)
		return 0;
	for (char **p = argv; *p; p++)
		if (strlen(*p) > 4096)
			abort();
	vmdef_argv_free(argv);
	return 0;
}
