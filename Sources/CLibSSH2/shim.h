// libssh2 (Debian libssh2-1-dev) for deployctl's SSH provider. Several libssh2 entry points are function-like
// macros, which Swift cannot import; these inline functions expose them.
#ifndef DEPLOYCTL_CLIBSSH2_SHIM_H
#define DEPLOYCTL_CLIBSSH2_SHIM_H

#include <libssh2.h>

static inline LIBSSH2_SESSION *dctl_session_init(void) { return libssh2_session_init(); }

static inline int dctl_userauth_publickey_fromfile(LIBSSH2_SESSION *session, const char *user, const char *publickey,
                                                   const char *privatekey, const char *passphrase) {
    return libssh2_userauth_publickey_fromfile(session, user, publickey, privatekey, passphrase);
}

/// Public-key authentication with each identity of the SSH agent at $SSH_AUTH_SOCK in turn; 0 when one is accepted.
static inline int dctl_userauth_agent(LIBSSH2_SESSION *session, const char *user) {
    LIBSSH2_AGENT *agent = libssh2_agent_init(session);
    if (!agent) return -1;
    int status = -1;
    if (libssh2_agent_connect(agent) == 0 && libssh2_agent_list_identities(agent) == 0) {
        struct libssh2_agent_publickey *identity = NULL, *previous = NULL;
        while (libssh2_agent_get_identity(agent, &identity, previous) == 0) {
            if (libssh2_agent_userauth(agent, user, identity) == 0) {
                status = 0;
                break;
            }
            previous = identity;
        }
        libssh2_agent_disconnect(agent);
    }
    libssh2_agent_free(agent);
    return status;
}

static inline LIBSSH2_CHANNEL *dctl_channel_open_session(LIBSSH2_SESSION *session) {
    return libssh2_channel_open_session(session);
}

static inline int dctl_channel_exec(LIBSSH2_CHANNEL *channel, const char *command) {
    return libssh2_channel_exec(channel, command);
}

static inline ssize_t dctl_channel_read(LIBSSH2_CHANNEL *channel, char *buffer, size_t length) {
    return libssh2_channel_read(channel, buffer, length);
}

static inline ssize_t dctl_channel_read_stderr(LIBSSH2_CHANNEL *channel, char *buffer, size_t length) {
    return libssh2_channel_read_stderr(channel, buffer, length);
}

static inline ssize_t dctl_channel_write(LIBSSH2_CHANNEL *channel, const char *buffer, size_t length) {
    return libssh2_channel_write(channel, buffer, length);
}

static inline int dctl_knownhost_readfile(LIBSSH2_KNOWNHOSTS *hosts, const char *path) {
    return libssh2_knownhost_readfile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
}

static inline int dctl_knownhost_writefile(LIBSSH2_KNOWNHOSTS *hosts, const char *path) {
    return libssh2_knownhost_writefile(hosts, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
}

/// The knownhost type mask for a host key type returned by libssh2_session_hostkey.
static inline int dctl_knownhost_keymask(int hostkey_type) {
    switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
    }
}

static inline int dctl_knownhost_check_mask(void) {
    return LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW;
}

#endif
