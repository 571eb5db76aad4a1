/* vireo's net-* verbs (vireo-net.c): vireod's virtual networks. */
#ifndef VIREO_CLI_VIREO_NET_H
#define VIREO_CLI_VIREO_NET_H

#include <stdbool.h>

#include "connect.h"

/* Whether @verb is one of them. */
bool vireo_net_verb(const char *verb);
/* Run @verb with its @argc arguments @argv against vireod at @at; the exit
 * status (vireo(1)). */
int vireo_net_main(const struct vconn_target *at, const char *verb, int argc, char **argv);

#endif
