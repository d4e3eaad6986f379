/* tests/tools/pickle_writer.h — build pickles and checkpoint files byte by byte
 * in C, for the tests and the fuzzing seeds (no Python needed).
 *
 * PW is a growing byte buffer. The pw_* functions append one pickle opcode with
 * its operand, written as Python 3's pickler writes them at protocol 2 (BINPUT
 * memo entries after every object it would memoise, BINUNICODE for str, bytes
 * as _codecs.encode(latin1_str, 'latin1')). On top of them:
 *   pw_tensor          torch._utils._rebuild_tensor_v2 of a storage persistent id
 *   pw_legacy_header   the first three pickles of a legacy (torch < 1.6) .pth
 *   pw_cifar           a CIFAR-100 python-format dict as Python 3 (or 2) writes it
 *   pw_zip             a ZIP of STORED entries (what torch.save writes)
 * Everything is header-only (static functions) so each test includes it. */
#ifndef DKD_PICKLE_WRITER_H
#define DKD_PICKLE_WRITER_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32.h"   // defines: test_crc32

typedef struct { uint8_t *p; size_t n, cap; unsigned memo; } PW;

static inline void pw_put(PW *b, const void *s, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) cap *= 2;
        b->p = (uint8_t *)realloc(b->p, cap);
        if (!b->p) { printf("pickle_writer: out of memory\n"); exit(1); }
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void pw_op(PW *b, unsigned c) { uint8_t x = (uint8_t)c; pw_put(b, &x, 1); }
static inline void pw_le(PW *b, uint64_t x, int bytes) { for (int k = 0; k < bytes; k++) pw_op(b, (unsigned)(x >> (8 * k)) & 0xff); }
static inline void pw_memo(PW *b) {                          /* BINPUT / LONG_BINPUT of the next index */
    if (b->memo < 256) { pw_op(b, 'q'); pw_op(b, b->memo); }
    else { pw_op(b, 'r'); pw_le(b, b->memo, 4); }
    b->memo++;
}
/* PROTO 2 starts a pickle: its memo starts empty */
static inline void pw_proto2(PW *b) { pw_op(b, 0x80); pw_op(b, 2); b->memo = 0; }
static inline void pw_int(PW *b, int64_t v) {                /* BININT1 / BININT2 / BININT / LONG1 */
    if (v >= 0 && v < 256) { pw_op(b, 'K'); pw_op(b, (unsigned)v); }
    else if (v >= 0 && v < 65536) { pw_op(b, 'M'); pw_le(b, (uint64_t)v, 2); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { pw_op(b, 'J'); pw_le(b, (uint64_t)v, 4); }
    else { pw_op(b, 0x8a); pw_op(b, 8); pw_le(b, (uint64_t)v, 8); }
}
static inline void pw_strn(PW *b, const char *s, size_t n) { pw_op(b, 'X'); pw_le(b, n, 4); pw_put(b, s, n); pw_memo(b); }
static inline void pw_str(PW *b, const char *s) { pw_strn(b, s, strlen(s)); }
static inline void pw_global(PW *b, const char *module, const char *name) {
    pw_op(b, 'c'); pw_put(b, module, strlen(module)); pw_op(b, '\n'); pw_put(b, name, strlen(name)); pw_op(b, '\n');
    pw_memo(b);
}
/* bytes at protocol 2 from Python 3: _codecs.encode(s.decode('latin1'), 'latin1'),
 * the str written as UTF-8 (bytes >= 0x80 take two). */
static inline void pw_bytes_py3(PW *b, const uint8_t *data, size_t n) {
    pw_global(b, "_codecs", "encode");
    size_t u = 0;
    for (size_t k = 0; k < n; k++) u += data[k] < 0x80 ? 1 : 2;
    pw_op(b, 'X'); pw_le(b, u, 4);
    uint8_t *s = (uint8_t *)malloc(u ? u : 1), *q = s;
    for (size_t k = 0; k < n; k++) {
        if (data[k] < 0x80) *q++ = data[k];
        else { *q++ = (uint8_t)(0xC0 | (data[k] >> 6)); *q++ = (uint8_t)(0x80 | (data[k] & 0x3F)); }
    }
    pw_put(b, s, u); free(s); pw_memo(b);
    pw_str(b, "latin1");
    pw_op(b, 0x86); pw_memo(b);                        /* TUPLE2 */
    pw_op(b, 'R'); pw_memo(b);                         /* REDUCE */
}

/* _rebuild_tensor_v2(('storage', torch.<storage_class>, key, 'cpu', storage_numel),
 *                    offset, size, stride, False, OrderedDict()) */
static inline void pw_tensor(PW *b, const char *storage_class, const char *key, int64_t storage_numel,
                      int64_t offset, int ndim, const int64_t *size, const int64_t *stride) {
    pw_global(b, "torch._utils", "_rebuild_tensor_v2");
    pw_op(b, '(');
    pw_op(b, '('); pw_str(b, "storage"); pw_global(b, "torch", storage_class);
    pw_str(b, key); pw_str(b, "cpu"); pw_int(b, storage_numel); pw_op(b, 't'); pw_memo(b);
    pw_op(b, 'Q');                                     /* BINPERSID */
    pw_int(b, offset);
    pw_op(b, '('); for (int d = 0; d < ndim; d++) pw_int(b, size[d]); pw_op(b, 't'); pw_memo(b);
    pw_op(b, '('); for (int d = 0; d < ndim; d++) pw_int(b, stride[d]); pw_op(b, 't'); pw_memo(b);
    pw_op(b, 0x89);
    pw_global(b, "collections", "OrderedDict"); pw_op(b, ')'); pw_op(b, 'R'); pw_memo(b);
    pw_op(b, 't'); pw_memo(b);
    pw_op(b, 'R'); pw_memo(b);
}

/* A legacy .pth starts with three pickles: torch's magic number (a 10-byte
 * LONG1), the protocol version 1001 and a sys_info dict. The object, the list
 * of storage keys and the storages follow (written by the caller). */
static inline void pw_legacy_header(PW *b) {
    static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    pw_proto2(b); pw_op(b, 0x8a); pw_op(b, 10); pw_put(b, magic, 10); pw_op(b, '.');
    pw_proto2(b); pw_op(b, 'M'); pw_le(b, 1001, 2); pw_op(b, '.');
    pw_proto2(b); pw_op(b, '}'); pw_op(b, '(');
    pw_str(b, "protocol_version"); pw_op(b, 'M'); pw_le(b, 1001, 2);
    pw_str(b, "little_endian"); pw_op(b, 0x88);
    pw_op(b, 'u'); pw_op(b, '.');
}
/* The list of storage keys (the fifth pickle) and each storage's int64 count + bytes. */
static inline void pw_legacy_keys(PW *b, const char *const *keys, int n) {
    pw_proto2(b); pw_op(b, ']'); pw_op(b, '(');
    for (int k = 0; k < n; k++) pw_str(b, keys[k]);
    pw_op(b, 'e'); pw_op(b, '.');
}
static inline void pw_legacy_storage(PW *b, const void *data, uint64_t count, size_t itemsize) {
    pw_le(b, count, 8); pw_put(b, data, (size_t)count * itemsize);
}

/* bytes as Python 2 writes a str: BINSTRING (raw, not copied by the unpickler). */
static inline void pw_bytes_py2(PW *b, const uint8_t *data, size_t n) {
    pw_op(b, 'T'); pw_le(b, n, 4); pw_put(b, data, n); pw_memo(b);
}
static inline void pw_bytes(PW *b, const uint8_t *data, size_t n, int py3) {
    if (py3) pw_bytes_py3(b, data, n); else pw_bytes_py2(b, data, n);
}

/* A CIFAR-100 python-format dict {'fine_labels': [...], 'coarse_labels': [...],
 * 'data': uint8 array (n, 3072)} as pickle.dump(d, f, protocol=2) writes it:
 * py3 = 1 as Python 3 does (the pixel bytes inside _codecs.encode), 0 with the
 * bytes as a Python 2 str (BINSTRING). */
static inline void pw_cifar(PW *b, const uint8_t *pixels, const int *fine, int n, int py3) {
    pw_proto2(b); pw_op(b, '}'); pw_memo(b); pw_op(b, '(');
    pw_str(b, "fine_labels"); pw_op(b, ']'); pw_memo(b);
    for (int i0 = 0; i0 < n; i0 += 1000) {
        pw_op(b, '(');
        for (int i = i0; i < n && i < i0 + 1000; i++) pw_int(b, fine[i]);
        pw_op(b, 'e');
    }
    pw_str(b, "coarse_labels"); pw_op(b, ']'); pw_memo(b);
    for (int i0 = 0; i0 < n; i0 += 1000) {
        pw_op(b, '(');
        for (int i = i0; i < n && i < i0 + 1000; i++) pw_int(b, fine[i] / 5);
        pw_op(b, 'e');
    }
    pw_str(b, "data");
    pw_global(b, "numpy.core.multiarray", "_reconstruct");
    pw_global(b, "numpy", "ndarray");
    pw_int(b, 0); pw_op(b, 0x85); pw_memo(b);
    pw_bytes(b, (const uint8_t *)"b", 1, py3);
    pw_op(b, 0x87); pw_memo(b); pw_op(b, 'R'); pw_memo(b);
    pw_op(b, '('); pw_int(b, 1);
    pw_int(b, n); pw_int(b, 3072); pw_op(b, 0x86); pw_memo(b);
    pw_global(b, "numpy", "dtype"); pw_str(b, "u1"); pw_int(b, 0); pw_int(b, 1); pw_op(b, 0x87); pw_memo(b);
    pw_op(b, 'R'); pw_memo(b);
    pw_op(b, '('); pw_int(b, 3); pw_str(b, "|"); pw_op(b, 'N'); pw_op(b, 'N'); pw_op(b, 'N');
    pw_int(b, -1); pw_int(b, -1); pw_int(b, 0); pw_op(b, 't'); pw_memo(b);
    pw_op(b, 'b');
    pw_op(b, 0x89);
    pw_bytes(b, pixels, (size_t)n * 3072, py3);
    pw_op(b, 't'); pw_memo(b); pw_op(b, 'b');
    pw_op(b, 'u'); pw_op(b, '.');
}

/* A ZIP of STORED entries with correct CRC-32s (no alignment padding). */
typedef struct { const char *name; size_t name_len; const uint8_t *data; size_t size; } PWEntry;
static inline void pw_zip(PW *z, const PWEntry *e, int n) {
    uint32_t *off = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)(n > 0 ? n : 1));
    for (int k = 0; k < n; k++) {
        size_t nl = e[k].name_len ? e[k].name_len : strlen(e[k].name);
        off[k] = (uint32_t)z->n;
        pw_le(z, 0x04034b50u, 4); pw_le(z, 20, 2); pw_le(z, 0, 2); pw_le(z, 0, 2); pw_le(z, 0, 2); pw_le(z, 0x21, 2);
        pw_le(z, test_crc32(e[k].data, e[k].size), 4); pw_le(z, e[k].size, 4); pw_le(z, e[k].size, 4);
        pw_le(z, nl, 2); pw_le(z, 0, 2);
        pw_put(z, e[k].name, nl); pw_put(z, e[k].data, e[k].size);
    }
    size_t cd = z->n;
    for (int k = 0; k < n; k++) {
        size_t nl = e[k].name_len ? e[k].name_len : strlen(e[k].name);
        pw_le(z, 0x02014b50u, 4); pw_le(z, 20, 2); pw_le(z, 20, 2); pw_le(z, 0, 2); pw_le(z, 0, 2);
        pw_le(z, 0, 2); pw_le(z, 0x21, 2);
        pw_le(z, test_crc32(e[k].data, e[k].size), 4); pw_le(z, e[k].size, 4); pw_le(z, e[k].size, 4);
        pw_le(z, nl, 2); pw_le(z, 0, 2); pw_le(z, 0, 2); pw_le(z, 0, 2); pw_le(z, 0, 2); pw_le(z, 0, 4);
        pw_le(z, off[k], 4);
        pw_put(z, e[k].name, nl);
    }
    size_t cd_size = z->n - cd;
    pw_le(z, 0x06054b50u, 4); pw_le(z, 0, 2); pw_le(z, 0, 2); pw_le(z, (uint64_t)n, 2); pw_le(z, (uint64_t)n, 2);
    pw_le(z, cd_size, 4); pw_le(z, cd, 4); pw_le(z, 0, 2);
    free(off);
}
#endif
