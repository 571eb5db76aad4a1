/*
 * VM definitions: the declarative JSON file of `vireo define` (json-c),
 * validated field by field, and the vireo-vmm command line built from it.
 * Pure: no I/O, so that unit tests and fuzz/fuzz_vmdef.c run it directly.
 */
#ifndef VIREO_DAEMON_VMDEF_H
#define VIREO_DAEMON_VMDEF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMDEF_MAX_JSON     (64 * 1024)  /* a definition file or request body */
#define VMDEF_NAME_MAX     63
#define VMDEF_PATH_MAX     1024
#define VMDEF_CMDLINE_MAX  2048
#define VMDEF_MAX_CPUS     256
#define VMDEF_MIN_MEM_MIB  16ULL
#define VMDEF_MAX_MEM_MIB  (1024ULL * 1024)   /* 1 TiB */
#define VMDEF_MAX_DISKS    16
#define VMDEF_MAX_NICS     8
#define VMDEF_MAX_HOSTFWD  16
#define VMDEF_HOSTFWD_MAX  64
#define VMDEF_TAP_MAX      15                 /* IFNAMSIZ - 1 */
#define VMDEF_NETWORK_MAX  32                 /* NETDEF_NAME_MAX */

enum vmdef_nic_type { VMDEF_NIC_USER, VMDEF_NIC_TAP, VMDEF_NIC_NETWORK };
enum vmdef_restart { VMDEF_RESTART_NEVER, VMDEF_RESTART_ON_FAILURE, VMDEF_RESTART_ALWAYS };

struct vmdef_disk {
	char path[VMDEF_PATH_MAX + 1];
	bool qcow2;
	bool readonly;
};

struct vmdef_nic {
	enum vmdef_nic_type type;
	char tap[VMDEF_TAP_MAX + 1];
	unsigned nr_hostfwd;
	char hostfwd[VMDEF_MAX_HOSTFWD][VMDEF_HOSTFWD_MAX + 1];
	/* type "network": a virtual network of vireod (network.h), the MAC
	 * ("" until given or generated at define: aa:bb:cc:dd:ee:ff, lower
	 * case, unicast) and an optional fixed IPv4 address for its DHCP. */
	char network[VMDEF_NETWORK_MAX + 1];
	char mac[18];
	char ip[16];
};

struct vmdef {
	char name[VMDEF_NAME_MAX + 1];
	char uuid[37];                  /* "" until given or generated */
	unsigned cpus;
	uint64_t memory_mib;
	char kernel[VMDEF_PATH_MAX + 1];
	char initrd[VMDEF_PATH_MAX + 1];    /* "" for none */
	char cmdline[VMDEF_CMDLINE_MAX + 1];
	bool has_cmdline;
	unsigned nr_disks;
	struct vmdef_disk disks[VMDEF_MAX_DISKS];
	unsigned nr_nics;
	struct vmdef_nic nics[VMDEF_MAX_NICS];
	bool rng;
	bool balloon;
	bool autostart;
	enum vmdef_restart restart;
};

/*
 * Parse and validate a definition of @len bytes (not NUL-terminated).
 * Returns 0, or -1 with one line in @err naming the field and the reason
 * ("disks[0].format: must be \"raw\" or \"qcow2\"").
 */
int vmdef_parse(const char *text, size_t len, struct vmdef *def, char *err, size_t errlen);

/* A valid VM name: 1..63 of [A-Za-z0-9._-], starting with a letter or digit. */
bool vmdef_name_ok(const char *name);
/* A UUID in its canonical 8-4-4-4-12 lower-case hex form. */
bool vmdef_uuid_ok(const char *uuid);

/* The canonical JSON of a definition (every field); malloc'd, NULL on ENOMEM. */
char *vmdef_to_json(const struct vmdef *def);

const char *vmdef_restart_name(enum vmdef_restart r);

/* A MAC address in canonical form: six lower-case hex pairs joined by ':',
 * unicast. */
bool vmdef_mac_ok(const char *mac);

/*
 * vireo-vmm's arguments for @def (argv[0] = @vmm; NULL-terminated;
 * malloc'd strings, free with vmdef_argv_free).  @rundir holds the API
 * socket and the console log.  A NIC of type "network" is given as
 * "fd=N": the caller passes the open taps of those NICs, in their order,
 * as file descriptors 3, 4, ...  NULL on ENOMEM.
 */
char **vmdef_vmm_argv(const struct vmdef *def, const char *vmm, const char *rundir);
void vmdef_argv_free(char **argv);

#endif
