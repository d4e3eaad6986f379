/* tests/test_cifar.c — cifar.c (loading, epoch order) and kernels/augment.c.
 *
 * 1. A tiny CIFAR-100 data set is generated in a temporary folder in BOTH
 *    official formats: binary records and a Python-2 cPickle file
 *    written byte by byte (PROTO 2, a dict with SHORT_BINSTRING
 *    keys, numpy _reconstruct + BUILD with a BINSTRING payload, label lists as
 *    MARK / BININT1... / APPENDS in chunks of 1000, BINPUT memo entries like
 *    cPickle writes). Both must load to the generated images and labels.
 * 2. Bad files (size not a multiple of 3074, whole records but the wrong count,
 *    a label >= 100, CIFAR-10-sized records, a truncated pickle, a label list
 *    of the wrong length, a missing folder): -1 and a message naming the file.
 * 3. Augmentation against a straightforward re-derivation (pad to 40x40 in
 *    uint8, crop at the drawn offsets, flip, normalise), bit for bit; black
 *    and white pixels; determinism in (seed, epoch, sample); the draws'
 *    spread.
 * 4. The epoch order: a permutation, reproducible, different per epoch/seed.
 * 5. The real data set, when prepared (scripts/prepare_shared_data.sh):
 *    10 000 test images, 100 per class (and the train split if present).
 * 6. Python-format files as Python 3 writes them at protocol 2 (the pixels
 *    through _codecs.encode), 37 and 10 000 images, loaded in a child process
 *    (a crash is a failed check) and compared with the source pixels.
 * 7. The committed fuzzing seeds of both formats load.
 */
#include "dkd.h"
#include "test.h"
#include "tools/pickle_writer.h"
#include "each_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

static char tmpdir[256];

/* ------------------------------------------------------------------------- */
/* The generated data set                                                     */
/* ------------------------------------------------------------------------- */
typedef struct { int n; uint8_t *img; int *fine, *coarse; } Gen;

static Gen gen_split(int n, unsigned seed) {
    Gen g = {n, (uint8_t *)xmalloc((size_t)n * 3072), (int *)xmalloc(n * sizeof(int)), (int *)xmalloc(n * sizeof(int))};
    unsigned long long s = seed;
    for (size_t i = 0; i < (size_t)n * 3072; i++) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; g.img[i] = (uint8_t)(s >> 56); }
    for (int i = 0; i < n; i++) { g.fine[i] = (i * 37 + (int)seed) % 100; g.coarse[i] = g.fine[i] / 5; }
    return g;
}
static void gen_free(Gen *g) { free(g->img); free(g->fine); free(g->coarse); }

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) { printf("cannot write %s\n", path); exit(1); }
    fclose(f);
}

/* Binary: records of coarse, fine, 3072 pixels. */
static uint8_t *binary_bytes(const Gen *g, size_t *len) {
    *len = (size_t)g->n * 3074;
    uint8_t *b = (uint8_t *)xmalloc(*len);
    for (int i = 0; i < g->n; i++) {
        b[(size_t)i * 3074] = (uint8_t)g->coarse[i];
        b[(size_t)i * 3074 + 1] = (uint8_t)g->fine[i];
        memcpy(b + (size_t)i * 3074 + 2, g->img + (size_t)i * 3072, 3072);
    }
    return b;
}

/* A growing byte buffer for the pickle writer. */
typedef struct { uint8_t *p; size_t n, cap; int memo; } Buf;
static void put(Buf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = (uint8_t *)xrealloc(b->p, b->cap); }
    memcpy(b->p + b->n, s, n); b->n += n;
}
static void op(Buf *b, uint8_t c) { put(b, &c, 1); }
static void binput(Buf *b) { op(b, 'q'); op(b, (uint8_t)(++b->memo)); }   /* cPickle memoises every object */
static void short_binstring(Buf *b, const char *s) {
    op(b, 'U'); op(b, (uint8_t)strlen(s)); put(b, s, strlen(s)); binput(b);
}
static void binstring(Buf *b, const void *p, uint32_t n) {
    uint8_t le[4] = {(uint8_t)n, (uint8_t)(n >> 8), (uint8_t)(n >> 16), (uint8_t)(n >> 24)};
    op(b, 'T'); put(b, le, 4); put(b, p, n);
}
static void pint(Buf *b, int v) {   /* BININT1, BININT2 or BININT as Python 2 picks */
    if (v >= 0 && v < 256) { op(b, 'K'); op(b, (uint8_t)v); }
    else if (v >= 0 && v < 65536) { op(b, 'M'); op(b, (uint8_t)v); op(b, (uint8_t)(v >> 8)); }
    else { uint32_t u = (uint32_t)v; uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)}; op(b, 'J'); put(b, le, 4); }
}
static void global(Buf *b, const char *mod, const char *name) {
    op(b, 'c'); put(b, mod, strlen(mod)); op(b, '\n'); put(b, name, strlen(name)); op(b, '\n'); binput(b);
}
/* A list of ints: EMPTY_LIST, then MARK + up to 1000 items + APPENDS, repeated. */
static void int_list(Buf *b, const int *v, int n) {
    op(b, ']'); binput(b);
    for (int i0 = 0; i0 < n; i0 += 1000) {
        op(b, '(');
        for (int i = i0; i < n && i < i0 + 1000; i++) pint(b, v[i]);
        op(b, 'e');
    }
}
/* numpy's __reduce__ of a uint8 array (N, 3072), protocol 2. */
static void ndarray_u8(Buf *b, const uint8_t *data, int n, int shape1, uint32_t nbytes) {
    global(b, "numpy.core.multiarray", "_reconstruct");
    global(b, "numpy", "ndarray");
    pint(b, 0); op(b, 0x85); binput(b);              /* (0,) */
    short_binstring(b, "b");
    op(b, 0x87); binput(b);                           /* (ndarray, (0,), 'b') */
    op(b, 'R'); binput(b);                            /* REDUCE -> empty array */
    op(b, '(');                                       /* state tuple */
    pint(b, 1);
    pint(b, n); pint(b, shape1); op(b, 0x86); binput(b);   /* shape (N, 3072) */
    global(b, "numpy", "dtype");
    short_binstring(b, "u1"); pint(b, 0); pint(b, 1); op(b, 0x87); binput(b);
    op(b, 'R'); binput(b);                            /* dtype('u1', 0, 1) */
    op(b, '('); pint(b, 3); short_binstring(b, "|"); op(b, 'N'); op(b, 'N'); op(b, 'N');
    pint(b, -1); pint(b, -1); pint(b, 0); op(b, 't'); binput(b);
    op(b, 'b');                                       /* BUILD the dtype */
    op(b, 0x89);                                      /* NEWFALSE: not Fortran order */
    binstring(b, data, nbytes); binput(b);
    op(b, 't'); binput(b);                            /* (1, shape, dtype, False, raw) */
    op(b, 'b');                                       /* BUILD the array */
}

/* A Python-2 cPickle of {data, fine_labels, coarse_labels, batch_label, filenames}.
 * labels_first: another key order. n_labels: the length written for fine_labels. */
static uint8_t *python_bytes(const Gen *g, size_t *len, int labels_first, int n_labels, uint32_t data_bytes) {
    Buf b = {NULL, 0, 0, 0};
    op(&b, 0x80); op(&b, 2);                          /* PROTO 2 */
    op(&b, '}'); binput(&b);                          /* EMPTY_DICT */
    op(&b, '(');                                      /* MARK ... SETITEMS */
    for (int part = 0; part < 2; part++) {
        if ((part == 0) == (labels_first != 0)) {
            short_binstring(&b, "fine_labels"); int_list(&b, g->fine, n_labels);
            short_binstring(&b, "coarse_labels"); int_list(&b, g->coarse, g->n);
        } else {
            short_binstring(&b, "data"); ndarray_u8(&b, g->img, g->n, 3072, data_bytes);
        }
    }
    short_binstring(&b, "batch_label"); short_binstring(&b, "training batch 1 of 1");
    short_binstring(&b, "filenames"); op(&b, ']'); binput(&b); op(&b, '(');
    for (int i = 0; i < g->n && i < 50; i++) { char nm[64]; snprintf(nm, sizeof nm, "thing_s_%06d.png", i); short_binstring(&b, nm); }
    op(&b, 'e');
    op(&b, 'u');                                      /* SETITEMS */
    op(&b, '.');                                      /* STOP */
    *len = b.n;
    return b.p;
}

static void mkdirs(const char *a, const char *b) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, a); mkdir(p, 0755);
    if (b) { snprintf(p, sizeof p, "%s/%s/%s", tmpdir, a, b); mkdir(p, 0755); }
}
static const char *tpath(const char *rel) {
    static char p[4][600]; static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", tmpdir, rel);
    return p[k];
}

static int same_split(const CifarSplit *s, const Gen *g) {
    if (s->n != g->n) return 0;
    if (memcmp(s->images, g->img, (size_t)g->n * 3072)) return 0;
    for (int i = 0; i < g->n; i++) if (s->labels[i] != g->fine[i]) return 0;
    return 1;
}

/* Expect cifar_load_n to fail with a message containing both needles. */
static void expect_fail(const char *what, const char *dir, int train, int expect_n, const char *needle1, const char *needle2) {
    CifarSplit s = {7, (uint8_t *)0x1, (int *)0x1};
    dkd_errbuf[0] = 0;
    int r = cifar_load_n(dir, train, expect_n, &s);
    int ok = r == -1 && s.images == NULL && s.labels == NULL && strstr(dkd_errbuf, needle1) && (!needle2 || strstr(dkd_errbuf, needle2));
    check(ok, "%s -> -1: %s", what, dkd_errbuf);
    if (r == 0) cifar_free(&s);
}

/* ------------------------------------------------------------------------- */
/* Loading                                                                    */
/* ------------------------------------------------------------------------- */
static void test_loading(void) {
    enum { NTR = 1100, NTE = 37 };   /* > 1000 labels: several APPENDS chunks */
    Gen tr = gen_split(NTR, 1), te = gen_split(NTE, 2);
    size_t len;
    uint8_t *b;

    /* binary in bin/cifar-100-binary/, python in py/cifar-100-python/ */
    mkdirs("bin", "cifar-100-binary");
    b = binary_bytes(&tr, &len); write_bytes(tpath("bin/cifar-100-binary/train.bin"), b, len); free(b);
    b = binary_bytes(&te, &len); write_bytes(tpath("bin/cifar-100-binary/test.bin"), b, len); free(b);
    mkdirs("py", "cifar-100-python");
    b = python_bytes(&tr, &len, 0, NTR, NTR * 3072); write_bytes(tpath("py/cifar-100-python/train"), b, len); free(b);
    b = python_bytes(&te, &len, 1, NTE, NTE * 3072); write_bytes(tpath("py/cifar-100-python/test"), b, len); free(b);

    CifarSplit s1, s2;
    int r1 = cifar_load_n(tpath("bin"), 1, NTR, &s1), r2 = cifar_load_n(tpath("py"), 1, NTR, &s2);
    check(r1 == 0, "binary train loads (%s)", r1 ? dkd_errbuf : "1100 images");
    check(r2 == 0, "python train loads (%s)", r2 ? dkd_errbuf : "1100 images, labels in 2 APPENDS chunks");
    if (r1 == 0) check(same_split(&s1, &tr), "binary train: images and fine labels as generated");
    if (r2 == 0) check(same_split(&s2, &tr), "python train: images and fine labels as generated");
    if (r1 == 0 && r2 == 0)
        check(s1.n == s2.n && !memcmp(s1.images, s2.images, (size_t)s1.n * 3072) && !memcmp(s1.labels, s2.labels, s1.n * sizeof(int)),
              "binary and python formats load identically");
    if (r1 == 0) cifar_free(&s1);
    if (r2 == 0) cifar_free(&s2);
    check(s1.images == NULL && s1.n == 0, "cifar_free clears the split");
    r1 = cifar_load_n(tpath("bin"), 0, -1, &s1); r2 = cifar_load_n(tpath("py"), 0, -1, &s2);
    check(r1 == 0 && same_split(&s1, &te), "binary test split (37 images, any count)");
    check(r2 == 0 && same_split(&s2, &te), "python test split (keys in another order)");
    if (r1 == 0) cifar_free(&s1);
    if (r2 == 0) cifar_free(&s2);

    /* the .bin files directly in the folder; python files directly in the folder */
    check(cifar_load_n(tpath("bin/cifar-100-binary"), 0, NTE, &s1) == 0 && same_split(&s1, &te), "DIR/test.bin found directly");
    cifar_free(&s1);
    check(cifar_load_n(tpath("py/cifar-100-python"), 0, NTE, &s1) == 0 && same_split(&s1, &te), "DIR/test (python) found directly");
    cifar_free(&s1);

    /* official counts: cifar_load expects 50000 / 10000 unless DKD_CIFAR_ANY_SIZE=1 */
    unsetenv("DKD_CIFAR_ANY_SIZE");
    expect_fail("binary with 1100 records where 50000 are expected", tpath("bin"), 1, 0, "expected 50000", "train.bin");
    expect_fail("python with 37 images where 10000 are expected", tpath("py"), 0, 0, "expected 10000", "get_cifar100.sh");
    setenv("DKD_CIFAR_ANY_SIZE", "1", 1);
    check(cifar_load(tpath("bin"), 1, &s1) == 0 && s1.n == NTR, "DKD_CIFAR_ANY_SIZE=1: cifar_load accepts 1100 images");
    cifar_free(&s1);
    unsetenv("DKD_CIFAR_ANY_SIZE");

    /* the data directory: flag, else $DKD_DATA, else ./data */
    setenv("DKD_DATA", "/some/where", 1);
    check(!strcmp(cifar_find_dir("mine"), "mine"), "cifar_find_dir: --data wins");
    check(!strcmp(cifar_find_dir(NULL), "/some/where") && !strcmp(cifar_find_dir(""), "/some/where"), "cifar_find_dir: $DKD_DATA next");
    unsetenv("DKD_DATA");
    check(!strcmp(cifar_find_dir(NULL), "data"), "cifar_find_dir: ./data last");

    /* ---- bad binary files */
    mkdirs("bad", NULL);
    b = binary_bytes(&te, &len);
    write_bytes(tpath("bad/test.bin"), b, len - 100);                        /* truncated mid-record */
    expect_fail("truncated binary file", tpath("bad"), 0, -1, "bad/test.bin", "3074");
    uint8_t *b2 = (uint8_t *)xmalloc(len + 5); memcpy(b2, b, len); memset(b2 + len, 0, 5);
    write_bytes(tpath("bad/test.bin"), b2, len + 5);                         /* trailing bytes */
    expect_fail("binary file with 5 extra bytes", tpath("bad"), 0, -1, "not a whole number", "get_cifar100.sh");
    write_bytes(tpath("bad/test.bin"), b, 3074 * 36);                        /* whole records, one short */
    expect_fail("binary file with 36 of 37 records", tpath("bad"), 0, NTE, "36 records, expected 37", NULL);
    b[3074 * 5 + 1] = 100;                                                   /* fine label 100 */
    write_bytes(tpath("bad/test.bin"), b, len);
    expect_fail("binary file with a fine label of 100", tpath("bad"), 0, -1, "record 5", "fine label 100");
    write_bytes(tpath("bad/test.bin"), b, 0);
    expect_fail("empty binary file", tpath("bad"), 0, -1, "0 bytes", NULL);
    uint8_t *c10 = (uint8_t *)xcalloc(3073, 3074);                           /* 3074 CIFAR-10 records */
    write_bytes(tpath("bad/test.bin"), c10, (size_t)3073 * 3073);
    expect_fail("CIFAR-10-sized records (3073 bytes)", tpath("bad"), 0, -1, "3073", NULL);
    free(c10); free(b); free(b2);
    remove(tpath("bad/test.bin"));

    /* ---- bad python files */
    b = python_bytes(&te, &len, 0, NTE, NTE * 3072);
    write_bytes(tpath("bad/test"), b, len / 2);                              /* truncated inside the pixels */
    expect_fail("truncated python pickle", tpath("bad"), 0, -1, "bad/test", "truncated");
    free(b);
    te.fine[3] = 100;
    b = python_bytes(&te, &len, 0, NTE, NTE * 3072);
    write_bytes(tpath("bad/test"), b, len);
    expect_fail("python file with a fine label of 100", tpath("bad"), 0, -1, "fine_labels[3]", NULL);
    free(b);
    te.fine[3] = 3;
    b = python_bytes(&te, &len, 0, NTE - 1, NTE * 3072);
    write_bytes(tpath("bad/test"), b, len);
    expect_fail("python file with 36 labels for 37 images", tpath("bad"), 0, -1, "fine_labels", "36");
    free(b);
    b = python_bytes(&te, &len, 0, NTE, NTE * 3072 - 1);                    /* shape needs one byte more */
    write_bytes(tpath("bad/test"), b, len);
    expect_fail("python array with fewer bytes than its shape", tpath("bad"), 0, -1, "bad/test", NULL);
    free(b);
    write_bytes(tpath("bad/test"), "hello, not a pickle", 19);
    expect_fail("python file that is not a pickle", tpath("bad"), 0, -1, "not a pickle", NULL);
    remove(tpath("bad/test"));

    /* ---- missing things */
    expect_fail("missing directory", tpath("nowhere"), 1, 0, "does not exist", "get_cifar100.sh");
    expect_fail("directory without data", tpath("bad"), 1, 0, "no CIFAR-100 train split", "get_cifar100.sh");
    gen_free(&tr); gen_free(&te);
}

/* ------------------------------------------------------------------------- */
/* Augmentation                                                               */
/* ------------------------------------------------------------------------- */
static float norm1(int v, int c) {
    const float mean[3] = {CIFAR_MEAN_R, CIFAR_MEAN_G, CIFAR_MEAN_B}, sd[3] = {CIFAR_STD_R, CIFAR_STD_G, CIFAR_STD_B};
    return ((float)v / 255.0f - mean[c]) / sd[c];
}

/* The straightforward way: build the padded 40x40 image, crop, flip, normalise. */
static void reference_augment(float *x, const uint8_t *img, int ci, int cj, int flip) {
    static uint8_t pad[3][40][40];
    memset(pad, 0, sizeof pad);
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 32; r++)
            for (int w = 0; w < 32; w++) pad[c][r + 4][w + 4] = img[c * 1024 + r * 32 + w];
    uint8_t crop[3][32][32];
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 32; r++)
            for (int w = 0; w < 32; w++) crop[c][r][w] = pad[c][ci + r][cj + w];
    for (int c = 0; c < 3; c++)
        for (int r = 0; r < 32; r++)
            for (int w = 0; w < 32; w++) x[c * 1024 + r * 32 + w] = norm1(crop[c][r][flip ? 31 - w : w], c);
}

static void test_augment(void) {
    enum { N = 64, B = 23 };
    Gen g = gen_split(N, 5);
    int idx[B];
    for (int b = 0; b < B; b++) idx[b] = (b * 11 + 3) % N;            /* out of order, like a shuffle */
    idx[B - 1] = idx[0];                                               /* a repeated sample */
    float *x = (float *)xmalloc((size_t)B * 3072 * sizeof(float)), *y = (float *)xmalloc((size_t)B * 3072 * sizeof(float));
    float *ref = (float *)xmalloc((size_t)B * 3072 * sizeof(float));
    const uint64_t seed = 42; const int epoch = 7, next_epoch = epoch + 1;

    augment_batch_cpu(x, g.img, idx, B, seed, &epoch, 1);
    int seen_pad_top = 0, seen_pad_left = 0, seen_flip = 0;
    for (int b = 0; b < B; b++) {
        int ci, cj, flip;
        augment_draw(seed, epoch, idx[b], &ci, &cj, &flip);
        reference_augment(ref + (size_t)b * 3072, g.img + (size_t)idx[b] * 3072, ci, cj, flip);
        seen_pad_top |= ci < 4; seen_pad_left |= (flip ? cj > 4 : cj < 4); seen_flip |= flip;
    }
    check_same("augment=1 vs pad/crop/flip re-derivation", x, ref, (size_t)B * 3072 * sizeof(float));
    check(seen_pad_top && seen_pad_left && seen_flip, "the batch exercises top padding, left padding and flips");
    check_same("repeated sample in a batch gets the same crop", x, x + (size_t)(B - 1) * 3072, 3072 * sizeof(float));

    /* a single explicit case: sample with ci = 0 has 4 padded (black) rows on top */
    for (int s = 0; s < 1000; s++) {
        int ci, cj, flip;
        augment_draw(seed, epoch, s, &ci, &cj, &flip);
        if (ci != 0) continue;
        int one = s % N;   /* any image, stored as sample s (the draw depends on the index) */
        uint8_t *d = (uint8_t *)xmalloc((size_t)(s + 1) * 3072);
        memcpy(d + (size_t)s * 3072, g.img + (size_t)one * 3072, 3072);
        int id = s;
        float out[3072];
        augment_batch_cpu(out, d, &id, 1, seed, &epoch, 1);
        int ok = 1;
        for (int c = 0; c < 3; c++)
            for (int r = 0; r < 4; r++)
                for (int w = 0; w < 32; w++) ok &= out[c * 1024 + r * 32 + w] == norm1(0, c);
        /* row 4 is the image's row 0 (shifted by cj, maybe flipped) */
        int src_w = (flip ? 31 - 10 : 10) + cj - 4;
        if (src_w >= 0 && src_w < 32) ok &= out[4 * 32 + 10] == norm1(g.img[(size_t)one * 3072 + src_w], 0);
        check(ok, "sample %d (i=0, j=%d, flip=%d): top 4 rows are padding, row 4 is image row 0", s, cj, flip);
        free(d);
        break;
    }

    /* augment = 0: the plain normalised image */
    augment_batch_cpu(y, g.img, idx, B, seed, &epoch, 0);
    for (int b = 0; b < B; b++) reference_augment(ref + (size_t)b * 3072, g.img + (size_t)idx[b] * 3072, 4, 4, 0);
    check_same("augment=0 is the normalised image (no crop, no flip)", y, ref, (size_t)B * 3072 * sizeof(float));

    /* black and white pixels */
    uint8_t black[3072], white[3072];
    memset(black, 0, sizeof black); memset(white, 255, sizeof white);
    int z = 0;
    float xb[3072], xw[3072];
    augment_batch_cpu(xb, black, &z, 1, seed, &epoch, 0);
    augment_batch_cpu(xw, white, &z, 1, seed, &epoch, 0);
    const double mean[3] = {0.5071, 0.4867, 0.4408}, sd[3] = {0.2675, 0.2565, 0.2761};
    for (int c = 0; c < 3; c++) {
        float eb = (float)(-mean[c] / sd[c]), ew = (float)((1 - mean[c]) / sd[c]);
        char nm[80];
        snprintf(nm, sizeof nm, "black pixel, channel %d = -mean/std (%.4f)", c, eb);
        check_close(nm, xb + c * 1024, (float[]){eb}, 1, 1e-5, 1e-6);
        check(xb[c * 1024 + 1023] == xb[c * 1024], "  ... the whole plane");
        snprintf(nm, sizeof nm, "white pixel, channel %d = (1-mean)/std (%.4f)", c, ew);
        check_close(nm, xw + c * 1024 + 517, (float[]){ew}, 1, 1e-5, 1e-6);
    }
    check(fabsf(xb[0] + 1.8957f) < 1e-4f && fabsf(xb[1024] + 1.8975f) < 1e-4f && fabsf(xb[2048] + 1.5965f) < 1e-4f,
          "black = (-1.8957, -1.8975, -1.5965) as mdistiller's normalisation gives (%.4f, %.4f, %.4f)", xb[0], xb[1024], xb[2048]);

    /* determinism: a pure function of (seed, epoch, sample) */
    augment_batch_cpu(y, g.img, idx, B, seed, &epoch, 1);
    check_same("same seed/epoch/indices -> same batch", x, y, (size_t)B * 3072 * sizeof(float));
    augment_batch_cpu(y, g.img, idx, B, seed, &next_epoch, 1);
    check(memcmp(x, y, (size_t)B * 3072 * sizeof(float)) != 0, "next epoch -> a different batch");
    augment_batch_cpu(y, g.img, idx, B, seed + 1, &epoch, 1);
    check(memcmp(x, y, (size_t)B * 3072 * sizeof(float)) != 0, "another seed -> a different batch");
    /* a sample's crop does not depend on its position in the batch */
    augment_batch_cpu(y, g.img, idx + 5, 3, seed, &epoch, 1);
    check_same("a sample's crop does not depend on the batch it is in", x + 5 * 3072, y, 3 * 3072 * sizeof(float));

    /* the draws: every offset 0..8 occurs, flips about half the time, offsets about uniform */
    int ci_n[9] = {0}, cj_n[9] = {0}, flips = 0;
    const int D = 90000;
    for (int s = 0; s < D; s++) {
        int ci, cj, flip;
        augment_draw(seed, 3, s, &ci, &cj, &flip);
        if (ci < 0 || ci > 8 || cj < 0 || cj > 8 || (flip != 0 && flip != 1)) { ci_n[0] = -D; break; }
        ci_n[ci]++; cj_n[cj]++; flips += flip;
    }
    int unif = 1;
    for (int k = 0; k < 9; k++) unif &= ci_n[k] > D / 9 * 0.95 && ci_n[k] < D / 9 * 1.05 && cj_n[k] > D / 9 * 0.95 && cj_n[k] < D / 9 * 1.05;
    check(unif, "crop offsets uniform on 0..8 (+-5%% over %d draws)", D);
    check(flips > D * 0.48 && flips < D * 0.52, "flip probability about 1/2 (%d of %d)", flips, D);
    free(x); free(y); free(ref);
    gen_free(&g);
}

/* ------------------------------------------------------------------------- */
/* Epoch order                                                                */
/* ------------------------------------------------------------------------- */
static int is_perm(const int *p, int n) {
    char *seen = (char *)xcalloc((size_t)n + 1, 1);
    int ok = 1;
    for (int i = 0; i < n && ok; i++) { if (p[i] < 0 || p[i] >= n || seen[p[i]]) ok = 0; else seen[p[i]] = 1; }
    free(seen);
    return ok;
}

static void test_order(void) {
    const int n = 50000;
    int *a = (int *)xmalloc(n * sizeof(int)), *b = (int *)xmalloc(n * sizeof(int));
    cifar_epoch_order(a, n, 7, 1);
    check(is_perm(a, n), "epoch order is a permutation of 0..49999");
    int fixed = 0;
    for (int i = 0; i < n; i++) fixed += a[i] == i;
    check(fixed < 10, "and a shuffled one (%d fixed points; ~1 expected)", fixed);
    cifar_epoch_order(b, n, 7, 1);
    check_same("same (seed, epoch) -> same order (a resumed run)", a, b, n * sizeof(int));
    cifar_epoch_order(b, n, 7, 2);
    check(is_perm(b, n) && memcmp(a, b, n * sizeof(int)) != 0, "next epoch -> another permutation");
    cifar_epoch_order(b, n, 8, 1);
    check(memcmp(a, b, n * sizeof(int)) != 0, "another seed -> another permutation");
    cifar_epoch_order(b, 1, 7, 1);
    check(b[0] == 0, "n = 1");
    b[0] = -1;
    cifar_epoch_order(b, 0, 7, 1);
    check(b[0] == -1, "n = 0 writes nothing");
    /* uniformity: where item 0 lands, n = 10, over 20000 epochs */
    int pos[10] = {0};
    for (int e = 0; e < 20000; e++) {
        cifar_epoch_order(b, 10, 3, e);
        for (int i = 0; i < 10; i++) if (b[i] == 0) pos[i]++;
    }
    int unif = 1;
    for (int i = 0; i < 10; i++) unif &= pos[i] > 1800 && pos[i] < 2200;
    check(unif, "item 0 lands in each of 10 places about equally often (%d .. %d of 2000)", pos[0], pos[9]);
    free(a); free(b);
}

/* ------------------------------------------------------------------------- */
/* The real data set                                                          */
/* ------------------------------------------------------------------------- */
static void test_real(void) {
    struct stat st;
    if (stat("../shared/data/cifar-100-binary", &st) != 0) { skip("real data: ../shared/data/cifar-100-binary not present"); return; }
    if (stat("data/cifar-100-binary/test.bin", &st) != 0) {
        skip("real data: data/cifar-100-binary/test.bin not prepared (run scripts/prepare_shared_data.sh)");
        return;
    }
    for (int train = 0; train < 2; train++) {
        if (train && stat("data/cifar-100-binary/train.bin", &st) != 0) { skip("real data: no train.bin"); continue; }
        CifarSplit s;
        double t0 = now_seconds();
        int r = cifar_load_n("data", train, 0, &s);
        double t = now_seconds() - t0;
        int want = train ? 50000 : 10000;
        check(r == 0 && s.n == want, "real %s split: %d images (%.2f s) %s", train ? "train" : "test", r == 0 ? s.n : -1, t,
              r ? dkd_errbuf : "");
        if (r) continue;
        int count[100] = {0}, ok = 1;
        for (int i = 0; i < s.n; i++) count[s.labels[i]]++;
        for (int k = 0; k < 100; k++) ok &= count[k] == want / 100;
        check(ok, "real %s split: %d images per class", train ? "train" : "test", want / 100);
        double m = 0;
        for (size_t i = 0; i < (size_t)s.n * 1024; i += 7) m += s.images[(i / 1024) * 3072 + i % 1024];
        m /= ((double)s.n * 1024 / 7) * 255;
        check(m > 0.48 && m < 0.53, "real %s split: red-channel mean %.4f (CIFAR-100: ~0.507)", train ? "train" : "test", m);
        cifar_free(&s);
    }
}


/* ------------------------------------------------------------------------- */
/* Python 3, protocol 2 (issue 11): the pixels come through _codecs.encode,   */
/* so they live in the unpickler's memory, not in the file buffer.            */
/* ------------------------------------------------------------------------- */
/* Load dir's test split in a child process (a crash there is a failed check,
 * not a dead test program); the child exits 0 iff it loads to g. */
static int loads_as_generated_in_child(const char *dir, const Gen *g, char *why, size_t why_cap) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        CifarSplit s;
        if (cifar_load_n(dir, 0, g->n, &s)) { printf("    child: %s\n", dkd_errbuf); fflush(stdout); _exit(2); }
        int same = same_split(&s, g);
        cifar_free(&s);
        _exit(same ? 0 : 3);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) { snprintf(why, why_cap, "fork/wait failed"); return 0; }
    if (WIFSIGNALED(status)) snprintf(why, why_cap, "the loader crashed (signal %d)", WTERMSIG(status));
    else if (WEXITSTATUS(status) == 2) snprintf(why, why_cap, "the load failed");
    else if (WEXITSTATUS(status) == 3) snprintf(why, why_cap, "the images or labels differ from the source");
    else if (WEXITSTATUS(status) != 0) snprintf(why, why_cap, "the child exited %d (sanitizer report?)", WEXITSTATUS(status));
    else snprintf(why, why_cap, "pixels and labels equal the source");
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_python3_protocol2(void) {
    printf("python-format files written by Python 3 (protocol 2)\n");
    mkdirs("py3", "cifar-100-python");
    const int sizes[2] = {37, CIFAR_TEST_N};   /* a small file and one of the real test split's size */
    for (int k = 0; k < 2; k++) {
        Gen g = gen_split(sizes[k], 11u + (unsigned)k);
        PW b = {0};
        pw_cifar(&b, g.img, g.fine, g.n, 1);
        write_bytes(tpath("py3/cifar-100-python/test"), b.p, b.n);
        free(b.p);
        char why[128];
        int ok = loads_as_generated_in_child(tpath("py3"), &g, why, sizeof why);
        check(ok, "Python 3 protocol-2 file of %d images: %s", g.n, why);
        gen_free(&g);
    }
}

/* The committed fuzzing seeds of the CIFAR parsers (tests/fuzz/corpus) load. */
static int cifar_seed_loads(const char *path, const uint8_t *bytes, size_t len, void *python) {
    uint8_t *b = (uint8_t *)xmalloc(len ? len : 1);   /* the parsers take their buffer */
    memcpy(b, bytes, len);
    CifarSplit s;
    int rc = *(int *)python ? cifar_parse_python(b, len, path, -1, &s) : cifar_parse_binary(b, len, path, -1, &s);
    if (rc != 0) { printf("    %s\n", dkd_errbuf); return 0; }
    cifar_free(&s);
    return 1;
}

static void test_fuzz_seeds(void) {
    printf("fuzzing seeds\n");
    for (int python = 0; python < 2; python++) {
        const char *dir = python ? "tests/fuzz/corpus/cifar_py" : "tests/fuzz/corpus/cifar_bin";
        int n, good = each_file(dir, cifar_seed_loads, &python, &n);
        if (good < 0) { skip("%s not found (run from the repository root)", dir); continue; }
        check(n > 0 && good == n, "%s seeds: %d of %d load", dir, good, n);
    }
}

int main(void) {
    test_tmpdir(tmpdir, sizeof tmpdir, "test_cifar");
    test_loading();
    test_python3_protocol2();
    test_fuzz_seeds();
    test_augment();
    test_order();
    test_real();
    char cmd[400]; snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", tmpdir);
    return test_summary();
}
