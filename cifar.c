/* cifar.c — CIFAR-100 on disk -> uint8 images + fine labels in memory, and the
 * per-epoch shuffling order (docs/recipe.md).
 *
 * A split (train: 50 000 images, test: 10 000) is held as
 *   images [N,3072] uint8   image n = 1024 red, 1024 green, 1024 blue bytes,
 *                           each plane 32x32 row-major (row 0 left to right, ...)
 *   labels [N]      int     fine label 0..99
 * which is exactly the layout of both official distributions, so the images are
 * never reordered: augmentation (kernels/augment.c, .cu) reads plane c, row r,
 * column w at images[n*3072 + c*1024 + r*32 + w].
 *
 * Two file formats, found under a data directory DIR (--data DIR, else
 * $DKD_DATA, else ./data), first match wins:
 *   DIR/cifar-100-binary/{train,test}.bin   binary (also DIR/{train,test}.bin)
 *   DIR/cifar-100-python/{train,test}       python (also DIR/{train,test})
 *
 *  - binary: records of 3074 bytes = coarse label, fine label,
 *    3072 pixel bytes. The file size must be an exact multiple of 3074 bytes
 *    (CIFAR-10's records are 3073 bytes: that mix-up is caught here).
 *  - python: one pickled dict (the official files: Python 2
 *    cPickle; re-pickled by Python 3 at protocol 2 they hold the pixels as
 *    _codecs.encode(str, 'latin1')); the images are a numpy uint8 array
 *    (N,3072) under 'data', the labels a list under 'fine_labels'. pickle.c's
 *    unpickler builds it without running any Python; the array bytes point into
 *    the file buffer (Python 2) or into the unpickler's memory (Python 3), and
 *    we move them to the start of the file buffer before the unpickler's memory
 *    is released, instead of copying 150 MB into a fresh one.
 *
 * Both formats are parsed from memory (cifar_parse_binary/_python, which the
 * fuzzing targets call too); cifar_load_n reads the file and hands it over.
 *
 * Every load checks the record count (50 000 / 10 000) and every label < 100
 * and fails with a message naming the file and how to get a good copy.
 *
 * Epoch order: cifar_epoch_order() is a Fisher-Yates shuffle whose random
 * numbers come from the counter-based dkd_rand32(seed, RNG_SHUFFLE, epoch, i):
 * a pure function of (seed, epoch), so a resumed run sees the same batches.
 */
#include "pickle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GET_HINT "get the data set with scripts/get_cifar100.sh (or scripts/prepare_shared_data.sh in this workplace)"

/* dkd_fail() with the current dkd_errbuf as the first %s: copy it out first
 * (vsnprintf must not read the buffer it writes). */
static int fail_wrap(const char *path, const char *what) {
    char msg[sizeof dkd_errbuf];
    memcpy(msg, dkd_errbuf, sizeof msg);
    msg[sizeof msg - 1] = 0;
    if (path) return dkd_fail("%s: %s%s%s", path, what ? what : "", msg, "; " GET_HINT);
    return dkd_fail("%s; %s", msg, GET_HINT);
}

const char *cifar_find_dir(const char *flag_dir) {
    if (flag_dir && *flag_dir) return flag_dir;
    const char *e = getenv("DKD_DATA");
    if (e && *e) return e;
    return "data";
}

void cifar_free(CifarSplit *s) {
    if (!s) return;
    free(s->images); free(s->labels);
    s->images = NULL; s->labels = NULL; s->n = 0;
}

static int is_file(const char *path, long long *size) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (size) *size = (long long)st.st_size;
    return 1;
}

/* The expected number of images: the official count, or any (>0) when
 * DKD_CIFAR_ANY_SIZE=1 (small generated data sets in tests). */
static int count_ok(int n, int expect) {
    if (expect > 0) return n == expect;
    return n > 0;
}

/* ------------------------------------------------------------------------- */
/* Binary format                                                              */
/* ------------------------------------------------------------------------- */
int cifar_parse_binary(uint8_t *buf, size_t len, const char *name, int expect, CifarSplit *out) {
    memset(out, 0, sizeof *out);
    if (len == 0 || len % CIFAR_RECORD_BYTES != 0) {
        free(buf);
        return dkd_fail("%s: %zu bytes is not a whole number of %d-byte CIFAR-100 records (truncated, or not "
                        "CIFAR-100: CIFAR-10 records are 3073 bytes); %s", name, len, CIFAR_RECORD_BYTES, GET_HINT);
    }
    size_t n = len / CIFAR_RECORD_BYTES;
    if (n > 1000000) { free(buf); return dkd_fail("%s: %zu records is far too many for CIFAR-100; %s", name, n, GET_HINT); }
    if (!count_ok((int)n, expect)) { free(buf); return dkd_fail("%s: %zu records, expected %d; %s", name, n, expect, GET_HINT); }
    int *labels = (int *)xmalloc(n * sizeof(int));
    /* record i = coarse, fine, 3072 pixels: slide its pixels down to i*3072
     * (always below the records still unread) */
    for (size_t i = 0; i < n; i++) {
        const uint8_t *rec = buf + i * CIFAR_RECORD_BYTES;
        if (rec[0] >= 20 || rec[1] >= CIFAR_NC) {
            int rc = dkd_fail("%s: record %zu has coarse label %d / fine label %d (must be < 20 / < %d): "
                              "corrupt file or not CIFAR-100; %s", name, i, rec[0], rec[1], CIFAR_NC, GET_HINT);
            free(buf); free(labels);
            return rc;
        }
        labels[i] = rec[1];
        memmove(buf + i * CIFAR_IMG_BYTES, rec + 2, CIFAR_IMG_BYTES);
    }
    uint8_t *images = (uint8_t *)realloc(buf, n * CIFAR_IMG_BYTES);
    out->n = (int)n; out->images = images ? images : buf; out->labels = labels;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Python format                                                              */
/* ------------------------------------------------------------------------- */
int cifar_parse_python(uint8_t *buf, size_t len, const char *path, int expect, CifarSplit *out) {
    memset(out, 0, sizeof *out);
    if (len < 2 || buf[0] != 0x80)
        { free(buf); return dkd_fail("%s: not a pickle (no PROTO opcode at byte 0); %s", path, GET_HINT); }
    PickleHooks hooks = {PICKLE_ALLOW_NUMPY, NULL, NULL};
    PyVal *root = pickle_load(buf, len, &hooks, NULL);
    if (!root) { free(buf); return fail_wrap(path, NULL); }

    int rc = 0, n = 0, *labels = NULL;
    const uint8_t *data = NULL;
    int ndim = 0; int64_t shape[8];
    const PyVal *arr = py_dict_get(root, "data"), *lab = py_dict_get(root, "fine_labels");
    if (root->kind != PV_DICT) rc = dkd_fail("%s: the pickle holds a %s, expected a dict", path, py_kind_name(root->kind));
    else if (!arr || !lab) rc = dkd_fail("%s: no '%s' entry (is this a CIFAR-100 python file? CIFAR-10 has "
                                         "'labels', not 'fine_labels')", path, arr ? "fine_labels" : "data");
    else if (py_ndarray_u8(arr, &ndim, shape, &data) != 0) {
        char m[sizeof dkd_errbuf]; memcpy(m, dkd_errbuf, sizeof m); m[sizeof m - 1] = 0;
        rc = dkd_fail("%s: 'data': %s", path, m);
    }
    else if (ndim != 2 || shape[1] != CIFAR_IMG_BYTES || shape[0] <= 0 || shape[0] > 1000000)
        rc = dkd_fail("%s: 'data' has shape (%lld, %lld) (ndim %d), expected (N, 3072)", path, (long long)shape[0],
                      (long long)(ndim > 1 ? shape[1] : 0), ndim);
    else if (!count_ok((int)shape[0], expect))
        rc = dkd_fail("%s: %lld images, expected %d", path, (long long)shape[0], expect);
    else if (lab->kind != PV_LIST || py_len(lab) != (size_t)shape[0])
        rc = dkd_fail("%s: 'fine_labels' is a %s of %zu items, expected a list of %lld ints", path,
                      py_kind_name(lab->kind), py_len(lab), (long long)shape[0]);
    else if ((size_t)shape[0] * CIFAR_IMG_BYTES > len)   /* the pixels must fit buf (below) */
        rc = dkd_fail("%s: 'data' holds more bytes than the file", path);
    if (rc == 0) {
        n = (int)shape[0];
        labels = (int *)xmalloc((size_t)n * sizeof(int));
        for (int i = 0; i < n && rc == 0; i++) {
            int64_t v;
            if (py_int(py_item(lab, (size_t)i), &v) != 0 || v < 0 || v >= CIFAR_NC)
                rc = dkd_fail("%s: fine_labels[%d] is not an int in 0..%d", path, i, CIFAR_NC - 1);
            else labels[i] = (int)v;
        }
    }
    /* The pixels are a slice of buf (Python 2: a BINSTRING), or bytes the
     * unpickler decoded into its own memory (Python 3: _codecs.encode). Either
     * way, move them to the start of buf NOW, while the unpickler's memory is
     * alive, and give back the rest: nothing reads buf's pickle after this. */
    size_t nbytes = rc == 0 ? (size_t)n * CIFAR_IMG_BYTES : 0;
    if (rc == 0) memmove(buf, data, nbytes);
    pickle_free(root);
    if (rc) { free(labels); free(buf); return fail_wrap(NULL, NULL); }
    uint8_t *images = (uint8_t *)realloc(buf, nbytes);
    out->n = n; out->images = images ? images : buf; out->labels = labels;
    return 0;
}

/* Read the whole file, then parse it in place. */
static int load_file(const char *path, int python, int expect, CifarSplit *out) {
    size_t len = 0;
    uint8_t *buf = read_file(path, &len);
    if (!buf) return fail_wrap(NULL, NULL);
    return python ? cifar_parse_python(buf, len, path, expect, out) : cifar_parse_binary(buf, len, path, expect, out);
}

/* ------------------------------------------------------------------------- */
/* Finding the files                                                          */
/* ------------------------------------------------------------------------- */
int cifar_load_n(const char *dir, int train, int expect_n, CifarSplit *out) {
    memset(out, 0, sizeof *out);
    if (!dir || !*dir) dir = cifar_find_dir(NULL);
    const char *split = train ? "train" : "test";
    if (expect_n == 0) {
        const char *any = getenv("DKD_CIFAR_ANY_SIZE");
        expect_n = (any && !strcmp(any, "1")) ? -1 : train ? CIFAR_TRAIN_N : CIFAR_TEST_N;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dkd_fail("CIFAR-100 data directory '%s' does not exist (set it with --data DIR or $DKD_DATA); %s",
                        dir, GET_HINT);
    char p[4][1200];
    snprintf(p[0], sizeof p[0], "%s/cifar-100-binary/%s.bin", dir, split);
    snprintf(p[1], sizeof p[1], "%s/%s.bin", dir, split);
    snprintf(p[2], sizeof p[2], "%s/cifar-100-python/%s", dir, split);
    snprintf(p[3], sizeof p[3], "%s/%s", dir, split);
    for (int k = 0; k < 4; k++) {
        if (!is_file(p[k], NULL)) continue;
        return load_file(p[k], k >= 2, expect_n, out);
    }
    return dkd_fail("no CIFAR-100 %s split under '%s' (looked for %s and %s); %s", split, dir, p[0], p[2], GET_HINT);
}

int cifar_load(const char *dir, int train, CifarSplit *out) { return cifar_load_n(dir, train, 0, out); }

/* ------------------------------------------------------------------------- */
/* Epoch order                                                                */
/* ------------------------------------------------------------------------- */
void cifar_epoch_order(int *perm, int n, uint64_t seed, int epoch) {
    for (int i = 0; i < n; i++) perm[i] = i;
    /* Fisher-Yates from the back: swap item i with a uniform pick j in 0..i.
     * j = floor(r * (i+1) / 2^32) for 32 random bits r (bias < n/2^32). */
    for (int i = n - 1; i > 0; i--) {
        uint32_t r = dkd_rand32(seed, RNG_SHUFFLE, (uint32_t)epoch, (uint32_t)i);
        int j = (int)(((uint64_t)r * (uint64_t)(i + 1)) >> 32);
        int t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}
