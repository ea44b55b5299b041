// zlib (gzip layers), zstd (zstd layers) and OpenSSL's libcrypto (SHA-256 digests) for the Appliances and Staging modules.
#include <zlib.h>
#include <zstd.h>
#include <openssl/evp.h>

// deflateInit2 is a macro; Swift cannot call it.
static inline int dctl_deflate_init_gzip(z_stream *stream, int level) {
    return deflateInit2(stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}

static inline int dctl_inflate_init_gzip(z_stream *stream) {
    return inflateInit2(stream, 15 + 16);
}

#ifdef __linux__
// syncfs(2) is declared only under _GNU_SOURCE; Staging flushes a staged series with one call.
extern int syncfs(int fd);
static inline int dctl_syncfs(int fd) { return syncfs(fd); }
#endif
