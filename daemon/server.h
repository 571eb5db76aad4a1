/* vireod's HTTP server on its Unix socket (libmicrohttpd). */
#ifndef VIREO_DAEMON_SERVER_H
#define VIREO_DAEMON_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <microhttpd.h>

/* Listen on @path (mode 0660, group "vireo" when that group exists) and
 * serve api_dispatch().  0 or -1 with a message in @err. */
int server_start(const char *path, char *err, size_t errlen);
/* End the event streams (before vms_shutdown()). */
void server_quiesce(void);
/* Stop serving and remove the socket. */
void server_stop(void);

/* The request handlers, for another libmicrohttpd daemon serving the same
 * API (tls.c): its MHD_AccessHandlerCallback and its
 * MHD_OPTION_NOTIFY_COMPLETED callback. */
enum MHD_Result server_handle_request(void *cls, struct MHD_Connection *c, const char *url,
				      const char *method, const char *version,
				      const char *upload, size_t *upload_size, void **con_cls);
void server_request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			      enum MHD_RequestTerminationCode toe);

#endif
