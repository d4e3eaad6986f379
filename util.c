/* util.c — errors, allocation, files, clock, threads. */
#include "dkd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

char dkd_errbuf[1024];

int dkd_fail(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    vsnprintf(dkd_errbuf, sizeof dkd_errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

void dkd_die(const char *fmt, ...) {
    va_list ap; va_start(ap, fmt);
    fprintf(stderr, "dkd: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) dkd_die("out of memory allocating %zu bytes", n);
    return p;
}
void *xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) dkd_die("out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}
void *xrealloc(void *q, size_t n) {
    void *p = realloc(q, n ? n : 1);
    if (!p) dkd_die("out of memory reallocating %zu bytes", n);
    return p;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

unsigned char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { dkd_fail("cannot open %s: %s", path, strerror(errno)); return NULL; }
    struct stat st;   /* fopen opens a directory too; its "size" is then nonsense */
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f); dkd_fail("cannot read %s: it is a directory, not a file", path); return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); dkd_fail("cannot seek in %s", path); return NULL; }
    long n = ftell(f);
    if (n < 0) { fclose(f); dkd_fail("cannot tell size of %s", path); return NULL; }
    rewind(f);
    unsigned char *buf = (unsigned char *)malloc((size_t)n + 1);
    if (!buf) { fclose(f); dkd_fail("out of memory reading %s (%ld bytes)", path, n); return NULL; }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) { free(buf); dkd_fail("short read on %s (%zu of %ld bytes)", path, got, n); return NULL; }
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

int write_file_atomic(const char *path, const void *data, size_t len) {
    size_t pl = strlen(path);
    char *tmp = (char *)xmalloc(pl + 16);
    snprintf(tmp, pl + 16, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) { int r = dkd_fail("cannot create %s: %s", tmp, strerror(errno)); free(tmp); return r; }
    const char *p = (const char *)data; size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) { if (errno == EINTR) continue; close(fd); unlink(tmp);
            int r = dkd_fail("cannot write %s: %s", tmp, strerror(errno)); free(tmp); return r; }
        p += w; left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) { unlink(tmp); int r = dkd_fail("cannot flush %s: %s", tmp, strerror(errno)); free(tmp); return r; }
    if (rename(tmp, path) != 0) { unlink(tmp); int r = dkd_fail("cannot rename %s to %s: %s", tmp, path, strerror(errno)); free(tmp); return r; }
    free(tmp);
    return 0;
}

int dkd_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int dkd_num_procs(void) {
#ifdef _OPENMP
    return omp_get_num_procs();
#else
    return 1;
#endif
}
void dkd_set_threads(int n) {
#ifdef _OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}
