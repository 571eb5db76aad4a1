/*
 * vireod's virtual networks: a Linux bridge with an IPv4 address, an
 * nftables table of its own (NAT mode: masquerade from the subnet and
 * forwarding for the bridge; isolated mode: no forwarding), and a dnsmasq
 * for DHCP and DNS on the bridge only.  Definitions are in the store; a
 * started network has a directory NET_DIR/NAME/ with dnsmasq's conf file,
 * its DHCP hosts file (the defined VMs' MACs and names), leases, log and
 * vireod's pid file for it, and the marker "active".
 *
 * dnsmasq is supervised: restarted when it dies, adopted (by its pid file)
 * after a vireod restart.  VMs use a started network through taps that
 * vireod creates on the bridge at VM start (network_tap_open()).
 */
#ifndef VIREO_DAEMON_NETWORK_H
#define VIREO_DAEMON_NETWORK_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct net_config {
	const char *net_dir;    /* per-network run dirs: NET_DIR/NAME/ (0755) */
	struct store *store;
	/* Whether a running VM has a NIC on network @net (its name in @who). */
	bool (*users)(const char *net, char *who, size_t wholen);
	/* Call @cb for the NIC of type network of every defined VM. */
	void (*hosts)(void (*cb)(void *opaque, const char *vm, const char *net,
				 const char *mac, const char *ip), void *opaque);
};

/* Load the definitions, adopt the started networks (their dnsmasq),
 * start the supervisor thread.  0 or -errno (message logged). */
int networks_init(const struct net_config *cfg);
/* Start the networks marked autostart that are not started. */
void networks_autostart(void);
/* Stop the supervisor; the networks and their dnsmasq stay. */
void networks_shutdown(void);
/* The VMs' definitions changed: rewrite the hosts files, SIGHUP dnsmasq. */
void networks_vms_changed(void);

/*
 * A new tap (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR; not persistent: it goes
 * away with its last open file) attached to network @net's bridge and up,
 * for a VM's NIC.  Its name in @tap (IFNAMSIZ), the open file in *fd
 * (close-on-exec).  HTTP status: 200, 404 no such network, 409 not
 * started, 500.
 */
int network_tap_open(const char *net, char *tap, size_t taplen, int *fd, char *err, size_t errlen);

/* The REST operations: HTTP statuses, message in @err, JSON in *resp. */
int net_define(const char *body, size_t len, char **resp, char *err, size_t errlen);
int net_undefine(const char *name, bool force, char *err, size_t errlen);
int net_start(const char *name, char *err, size_t errlen);
int net_destroy(const char *name, bool force, char *err, size_t errlen);
int nets_list(char **resp, char *err, size_t errlen);
int net_info(const char *name, char **resp, char *err, size_t errlen);
int net_set_autostart(const char *name, const char *body, size_t len, char *err, size_t errlen);

#endif
