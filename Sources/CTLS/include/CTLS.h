// TLS 1.3 through the system's OpenSSL: contexts (pre-shared key or certificates), sessions on
// a connected blocking socket, and errors as one line of text. OpenSSL's PSK and verification
// hooks are C callbacks, and its API is mostly macros, so the glue is written here in C and
// Swift sees opaque pointers and plain functions.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct ssl_ctx_st ctls_context;
// Bytes a session reads ahead and buffers before sending: a few dozen TLS records.
enum { ctls_buffer_bytes = 256 * 1024 };
typedef struct ssl_st ctls_session;

// A TLS 1.3-only context for one side. With `psk` (psk_length bytes) the peers authenticate
// with the pre-shared key alone (psk_dhe_ke: a fresh ECDHE exchange keeps forward secrecy);
// otherwise `certificate` (PEM chain), `key` (PEM) and `authority` (PEM CA bundle) give mutual
// certificate authentication. NULL on failure, with the reason in `error`.
ctls_context *ctls_context_new(int server, const uint8_t *psk, size_t psk_length, const char *certificate,
                               const char *key, const char *authority, char *error, size_t error_length);
void ctls_context_free(ctls_context *context);

// A session on the connected socket `fd`; a client checks the server's certificate against
// `peer_host` (a name or an IP address), unused with a pre-shared key.
ctls_session *ctls_session_new(ctls_context *context, int fd, const char *peer_host, char *error, size_t error_length);
void ctls_session_free(ctls_session *session);

// Outcomes of the calls below.
enum {
    ctls_ok = 0,
    ctls_closed = -1,   // the peer closed the connection
    ctls_system = -2,   // a socket call failed: errno is set (EAGAIN: the socket's timeout passed)
    ctls_protocol = -3, // the TLS protocol failed: the reason is in `error`
};

// The handshake (client or server, by the context); ctls_ok or a failure.
int ctls_handshake(ctls_session *session, char *error, size_t error_length);
// Reads up to `count` bytes; the number read (> 0) or a failure.
ssize_t ctls_read(ctls_session *session, void *buffer, size_t count, char *error, size_t error_length);
// Writes all `count` bytes into the session's send buffer (full parts of it are sent on the way);
// ctls_ok or a failure. ctls_flush sends what is left: call it at the end of every message.
int ctls_write(ctls_session *session, const void *buffer, size_t count, char *error, size_t error_length);
int ctls_flush(ctls_session *session, char *error, size_t error_length);
// RFC 8446 keying material exported under `label`: both ends get the same bytes for this
// session only. ctls_ok or ctls_protocol.
int ctls_export(ctls_session *session, const char *label, uint8_t *output, size_t count);
