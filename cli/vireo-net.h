/* vireo's net-* verbs (vireo-net.c): vireod's virtual networks. */
#ifndef VIREO_CLI_VIREO_NET_H
#define VIREO_CLI_VIREO_NET_H

#include <stdbool.h>

/* Whether @verb is one of them. */
bool vireo_net_verb(const char *verb);
/* Run @verb with its @argc arguments @argv over the socket @sock; the exit
 * status (vireo(1)). */
int vireo_net_main(const char *sock, const char *verb, int argc, char **argv);

#endif
