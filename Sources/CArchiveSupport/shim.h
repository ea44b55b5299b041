// zlib (gzip reading), libdeflate (gzip layers), zstd (zstd layers) and OpenSSL's libcrypto (SHA-256 digests) for the
// Appliances and Staging modules.
#include <zlib.h>
#include <libdeflate.h>
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

// A layer's blob is written with O_DIRECT (declared only under _GNU_SOURCE; glibc's own name for it always is), or
// when that is refused, through the page cache with its writeback started as it goes (sync_file_range(2), also
// _GNU_SOURCE only), so that the fsync at its end waits for little.
#ifdef __linux__
#include <fcntl.h>
#include <sys/types.h>
extern int sync_file_range(int fd, off_t offset, off_t nbytes, unsigned int flags);
static inline int dctl_o_direct(void) { return __O_DIRECT; }
static inline void dctl_start_writeback(int fd, long long offset, long long count) {
    (void)sync_file_range(fd, offset, count, 2 /* SYNC_FILE_RANGE_WRITE */);
}
#else
static inline int dctl_o_direct(void) { return 0; }
static inline void dctl_start_writeback(int fd, long long offset, long long count) {}
#endif
