// See CTLS.h. Every function returns its failure as text so Swift never reads OpenSSL's
// thread-local error queue itself.
#include "CTLS.h"
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

// The identity both ends name the pre-shared key by; the key itself comes from the caller.
static const unsigned char psk_identity[] = "engram-external-psk-v1";
// TLS_AES_128_GCM_SHA256: the suite a SHA-256 pre-shared key is used with.
static const unsigned char psk_suite[] = {0x13, 0x01};

struct psk {
    size_t length;
    unsigned char key[64];
};

static int psk_slot = -1;
static pthread_once_t psk_slot_once = PTHREAD_ONCE_INIT;

static void psk_free(void *parent, void *pointer, CRYPTO_EX_DATA *data, int index, long argl, void *argp) {
    (void)parent; (void)data; (void)index; (void)argl; (void)argp;
    if (pointer) OPENSSL_clear_free(pointer, sizeof(struct psk));
}
static void psk_slot_make(void) { psk_slot = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, psk_free); }

// The session OpenSSL resumes as the external pre-shared key.
static SSL_SESSION *psk_session(SSL *ssl) {
    const struct psk *psk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_slot);
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);
    if (!psk || !cipher) return NULL;
    SSL_SESSION *session = SSL_SESSION_new();
    if (!session) return NULL;
    if (!SSL_SESSION_set1_master_key(session, psk->key, psk->length) || !SSL_SESSION_set_cipher(session, cipher) ||
        !SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION)) {
        SSL_SESSION_free(session);
        return NULL;
    }
    return session;
}

static int psk_use(SSL *ssl, const EVP_MD *digest, const unsigned char **identity, size_t *identity_length, SSL_SESSION **session) {
    *identity = NULL;
    *identity_length = 0;
    *session = NULL;
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);
    // A retried ClientHello may ask for another digest: then no key is offered.
    if (digest && cipher && SSL_CIPHER_get_handshake_digest(cipher) != digest) return 1;
    *session = psk_session(ssl);
    if (!*session) return 0;
    *identity = psk_identity;
    *identity_length = sizeof psk_identity - 1;
    return 1;
}

static int psk_find(SSL *ssl, const unsigned char *identity, size_t identity_length, SSL_SESSION **session) {
    *session = NULL;
    // An unknown identity is not an error here: the handshake then fails for want of a key.
    if (identity_length != sizeof psk_identity - 1 || memcmp(identity, psk_identity, identity_length) != 0) return 1;
    *session = psk_session(ssl);
    return *session ? 1 : 0;
}

// The first queued OpenSSL error as text (or `fallback`), and the queue emptied.
static void error_text(char *error, size_t error_length, const char *fallback) {
    unsigned long code = ERR_get_error();
    if (code) {
        const char *reason = ERR_reason_error_string(code);
        if (reason) snprintf(error, error_length, "%s", reason);
        else ERR_error_string_n(code, error, error_length);
    } else {
        snprintf(error, error_length, "%s", fallback);
    }
    ERR_clear_error();
}

// A file OpenSSL refused: "WHAT PATH: REASON; EXPECTED" in `error`, and the context freed.
static ctls_context *refuse(SSL_CTX *context, char *error, size_t error_length, const char *what, const char *path, const char *expected) {
    char reason[200];
    error_text(reason, sizeof reason, "unreadable");
    snprintf(error, error_length, "%s %s: %s; %s", what, path, reason, expected);
    SSL_CTX_free(context);
    return NULL;
}

ctls_context *ctls_context_new(int server, const uint8_t *psk, size_t psk_length, const char *certificate,
                               const char *key, const char *authority, char *error, size_t error_length) {
    ERR_clear_error();
    SSL_CTX *context = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!context) { error_text(error, error_length, "cannot make a TLS context"); return NULL; }
    SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(context, TLS1_3_VERSION);
    // The page protocol frames its own data, so a peer that vanishes is caught there; no tickets: every connection authenticates afresh.
    SSL_CTX_set_options(context, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(context, SSL_MODE_AUTO_RETRY);
    // Read ahead into a large buffer: one recv brings many records, not two calls per record.
    SSL_CTX_set_read_ahead(context, 1);
    SSL_CTX_set_default_read_buffer_len(context, ctls_buffer_bytes);
    if (server) SSL_CTX_set_num_tickets(context, 0);
    if (psk) {
        pthread_once(&psk_slot_once, psk_slot_make);
        struct psk *held = OPENSSL_zalloc(sizeof *held);
        if (psk_slot < 0 || !held || psk_length == 0 || psk_length > sizeof held->key) {
            OPENSSL_free(held);
            SSL_CTX_free(context);
            snprintf(error, error_length, "cannot hold a pre-shared key of %zu bytes", psk_length);
            return NULL;
        }
        // The server takes a pre-shared key only under a suite with the key's digest (SHA-256).
        if (SSL_CTX_set_ciphersuites(context, "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256") != 1) {
            OPENSSL_free(held);
            error_text(error, error_length, "cannot choose the TLS 1.3 suites");
            SSL_CTX_free(context);
            return NULL;
        }
        memcpy(held->key, psk, psk_length);
        held->length = psk_length;
        SSL_CTX_set_ex_data(context, psk_slot, held);
        if (server) SSL_CTX_set_psk_find_session_callback(context, psk_find);
        else SSL_CTX_set_psk_use_session_callback(context, psk_use);
        return context;
    }
    if (SSL_CTX_use_certificate_chain_file(context, certificate) != 1) {
        return refuse(context, error, error_length, "certificate", certificate, "expected a PEM certificate chain");
    }
    int loaded = SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM);
    if (loaded != 1 && ERR_GET_REASON(ERR_peek_last_error()) != X509_R_KEY_VALUES_MISMATCH) {
        return refuse(context, error, error_length, "key", key, "expected a PEM private key");
    }
    if (loaded != 1 || SSL_CTX_check_private_key(context) != 1) {
        ERR_clear_error();
        snprintf(error, error_length, "key %s is not the private key of certificate %s", key, certificate);
        SSL_CTX_free(context);
        return NULL;
    }
    if (SSL_CTX_load_verify_locations(context, authority, NULL) != 1) {
        return refuse(context, error, error_length, "certificate authority", authority, "expected PEM certificates");
    }
    // Both ends must show a certificate the authority signed.
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    return context;
}

void ctls_context_free(ctls_context *context) { SSL_CTX_free(context); }

// The writer under the buffer: OpenSSL's socket BIO writes with write(2), which raises SIGPIPE
// (ending the VMM) when the peer has closed; this one sends with MSG_NOSIGNAL, so a peer that
// leaves is an error on the connection, as on every plain socket of Engram's.
static BIO_METHOD *sending_method;
static pthread_once_t sending_once = PTHREAD_ONCE_INIT;

static int sending_write(BIO *bio, const char *data, int length) {
    int fd = (int)(intptr_t)BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    ssize_t sent;
    do { sent = send(fd, data, (size_t)length, MSG_NOSIGNAL); } while (sent < 0 && errno == EINTR);
    // A send timeout (SO_SNDTIMEO) reads as "retry", as with the socket BIO; the caller decides.
    if (sent <= 0 && BIO_sock_should_retry((int)sent)) BIO_set_retry_write(bio);
    return (int)sent;
}

static long sending_control(BIO *bio, int command, long number, void *pointer) {
    (void)bio; (void)number; (void)pointer;
    return command == BIO_CTRL_FLUSH ? 1 : 0;
}

static int sending_create(BIO *bio) {
    BIO_set_init(bio, 1);
    return 1;
}

static void sending_make(void) {
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "engram socket sender");
    if (method && BIO_meth_set_write(method, sending_write) && BIO_meth_set_ctrl(method, sending_control) && BIO_meth_set_create(method, sending_create)) {
        sending_method = method;
    } else {
        BIO_meth_free(method);
    }
}

static BIO *sending_bio(int fd) {
    pthread_once(&sending_once, sending_make);
    BIO *bio = sending_method ? BIO_new(sending_method) : NULL;
    if (bio) BIO_set_data(bio, (void *)(intptr_t)fd);
    return bio;
}

ctls_session *ctls_session_new(ctls_context *context, int fd, const char *peer_host, char *error, size_t error_length) {
    ERR_clear_error();
    SSL *ssl = SSL_new(context);
    // Reads straight from the socket; writes through a buffer, so a page frame's records leave in
    // a few large sends rather than one send per 16 KiB record (ctls_flush ends each message).
    BIO *reader = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *buffer = BIO_new(BIO_f_buffer());
    BIO *writer = sending_bio(fd);
    if (!ssl || !reader || !buffer || !writer || BIO_set_write_buffer_size(buffer, ctls_buffer_bytes) != 1) {
        error_text(error, error_length, "cannot make a TLS session");
        BIO_free(reader);
        BIO_free(buffer);
        BIO_free(writer);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_bio(ssl, reader, BIO_push(buffer, writer));
    if (peer_host && SSL_CTX_get_verify_mode(context) & SSL_VERIFY_PEER) {
        unsigned char address[16];
        int checked;
        if (inet_pton(AF_INET, peer_host, address) == 1 || inet_pton(AF_INET6, peer_host, address) == 1) {
            checked = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), peer_host);
        } else {
            checked = SSL_set1_host(ssl, peer_host) && SSL_set_tlsext_host_name(ssl, peer_host);
        }
        if (checked != 1) {
            error_text(error, error_length, "cannot check the peer's name");
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

void ctls_session_free(ctls_session *session) { SSL_free(session); }

// Classifies a failed SSL call: the peer closed, a socket error (errno set), or a TLS failure
// (the reason in `error`, naming a certificate the peer showed and this end refused).
static int failure(SSL *ssl, int result, char *error, size_t error_length) {
    int saved = errno;
    int kind = SSL_get_error(ssl, result);
    if (kind == SSL_ERROR_ZERO_RETURN) { ERR_clear_error(); return ctls_closed; }
    if (kind == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
        if (saved == 0) return ctls_closed;
        errno = saved;
        return ctls_system;
    }
    if (kind == SSL_ERROR_WANT_READ || kind == SSL_ERROR_WANT_WRITE) {
        // A blocking socket says "want" only when its SO_RCVTIMEO or SO_SNDTIMEO passed.
        ERR_clear_error();
        errno = EAGAIN;
        return ctls_system;
    }
    long verified = SSL_get_verify_result(ssl);
    if (verified != X509_V_OK) {
        ERR_clear_error();
        snprintf(error, error_length, "its certificate: %s", X509_verify_cert_error_string(verified));
    } else {
        error_text(error, error_length, "the TLS protocol failed");
    }
    return ctls_protocol;
}

int ctls_handshake(ctls_session *session, char *error, size_t error_length) {
    ERR_clear_error();
    errno = 0;
    int result = SSL_is_server(session) ? SSL_accept(session) : SSL_connect(session);
    return result == 1 ? ctls_ok : failure(session, result, error, error_length);
}

ssize_t ctls_read(ctls_session *session, void *buffer, size_t count, char *error, size_t error_length) {
    ERR_clear_error();
    errno = 0;
    size_t read = 0;
    int result = SSL_read_ex(session, buffer, count, &read);
    return result == 1 ? (ssize_t)read : failure(session, result, error, error_length);
}

int ctls_write(ctls_session *session, const void *buffer, size_t count, char *error, size_t error_length) {
    ERR_clear_error();
    errno = 0;
    size_t written = 0;
    int result = SSL_write_ex(session, buffer, count, &written);
    return result == 1 && written == count ? ctls_ok : failure(session, result, error, error_length);
}

int ctls_flush(ctls_session *session, char *error, size_t error_length) {
    ERR_clear_error();
    errno = 0;
    if (BIO_flush(SSL_get_wbio(session)) == 1) return ctls_ok;
    int saved = errno;
    if (saved == 0) {
        error_text(error, error_length, "cannot send the buffered records");
        return ctls_protocol;
    }
    errno = saved;
    return ctls_system;
}

int ctls_export(ctls_session *session, const char *label, uint8_t *output, size_t count) {
    int result = SSL_export_keying_material(session, output, count, label, strlen(label), NULL, 0, 0);
    ERR_clear_error();
    return result == 1 ? ctls_ok : ctls_protocol;
}
