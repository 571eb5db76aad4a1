/* vireod's HTTP server on its Unix socket (libmicrohttpd). */
#ifndef VIREO_DAEMON_SERVER_H
#define VIREO_DAEMON_SERVER_H

#include <stddef.h>

/* Listen on @path (mode 0660, group "vireo" when that group exists) and
 * serve api_dispatch().  0 or -1 with a message in @err. */
int server_start(const char *path, char *err, size_t errlen);
/* End the event streams (before vms_shutdown()). */
void server_quiesce(void);
/* Stop serving and remove the socket. */
void server_stop(void);

#endif
