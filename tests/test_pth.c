/* tests/test_pth.c — the pickle VM (pickle.c) and PyTorch checkpoints (pth.c).
 *
 *  1. hand-assembled pickles: every accepted opcode family, the CIFAR-style
 *     numpy array (_reconstruct + BUILD), and malformed / forbidden programs;
 *  2. every golden .pth fixture reads, with sane names, shapes and dtypes; the
 *     legacy copies give bit-identical tensors to the zip copies;
 *  3. pth_write -> pth_read round trip (float32, float64, int64, 0-d, empty,
 *     int and float items), and the ZIP layout checked by an independent walk
 *     (CRC-32 computed here, 64-byte aligned data);
 *  4. bad files: truncations (zip directory, pickle, storages, legacy stream),
 *     empty, garbage, a forbidden GLOBAL inside a zip, a compressed entry, a
 *     bad CRC, random byte flips, a missing path: all return -1 with a message;
 *  5. Net <-> state_dict: strict checks and their messages, prefixes, dtype
 *     conversion, net_save_file -> net_load_file;
 *  6. regressions of hostile files (issue 11), each built here with
 *     tests/tools/pickle_writer.h: a legacy storage declared twice with two
 *     sizes, a directory as checkpoint, a 400-character storage key;
 *  7. the memory budget: 300 overlapping views of one storage and 5 M
 *     one-byte opcodes are rejected, and the peak RSS of the loading child
 *     (getrusage) stays within the budget of dkd.h;
 *  8. the committed fuzzing seeds (tests/fuzz/corpus) load, and the inputs of
 *     past fuzzing findings (tests/fuzz/regressions) do not crash.
 * Temporary files go to a mkdtemp directory under /tmp, removed at the end.
 */
#include "pickle.h"
#include "test.h"
#include "each_file.h"
#include "tools/pickle_writer.h"
#include "tools/crc32.h"    // defines: test_crc32 (bitwise, independent of pth.c's)

#include <dirent.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[64];
static char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static int write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = n ? fwrite(p, 1, n, f) : 0;
    fclose(f);
    return w == n ? 0 : -1;
}

/* pth_read must fail with a message (and not crash). */
static void expect_read_fails(const char *path, const char *what, const char *must_contain) {
    PthDict d;
    dkd_errbuf[0] = 0;
    int rc = pth_read(path, &d);
    int ok = rc == -1 && dkd_errbuf[0] && (!must_contain || strstr(dkd_errbuf, must_contain));
    check(ok, "%s: rejected (%s)", what, rc == -1 ? dkd_errbuf : "ACCEPTED");
    if (rc == 0) pth_dict_free(&d);
}

/* ---- an independent little ZIP writer / CRC for building test files ---- */
typedef struct { const char *name; const uint8_t *data; size_t size; int method; int bad_crc; } TestEntry;
static void w16(uint8_t **p, uint32_t x) { (*p)[0] = (uint8_t)x; (*p)[1] = (uint8_t)(x >> 8); *p += 2; }
static void w32(uint8_t **p, uint32_t x) { w16(p, x & 0xffff); w16(p, x >> 16); }
/* A plain ZIP of the entries (no alignment); returns malloc'd bytes. */
static uint8_t *make_zip(const TestEntry *e, int n, size_t *len) {
    size_t cap = 22;
    for (int k = 0; k < n; k++) cap += 30 + 46 + 2 * strlen(e[k].name) + e[k].size;
    uint8_t *buf = (uint8_t *)malloc(cap), *p = buf;
    uint32_t *off = (uint32_t *)malloc(sizeof(uint32_t) * (size_t)(n > 0 ? n : 1));
    for (int k = 0; k < n; k++) {
        off[k] = (uint32_t)(p - buf);
        uint32_t crc = test_crc32(e[k].data, e[k].size) ^ (e[k].bad_crc ? 1u : 0u);
        w32(&p, 0x04034b50u); w16(&p, 20); w16(&p, 0); w16(&p, (uint32_t)e[k].method); w16(&p, 0); w16(&p, 0);
        w32(&p, crc); w32(&p, (uint32_t)e[k].size); w32(&p, (uint32_t)e[k].size);
        w16(&p, (uint32_t)strlen(e[k].name)); w16(&p, 0);
        memcpy(p, e[k].name, strlen(e[k].name)); p += strlen(e[k].name);
        memcpy(p, e[k].data, e[k].size); p += e[k].size;
    }
    uint8_t *cd = p;
    for (int k = 0; k < n; k++) {
        uint32_t crc = test_crc32(e[k].data, e[k].size) ^ (e[k].bad_crc ? 1u : 0u);
        w32(&p, 0x02014b50u); w16(&p, 20); w16(&p, 20); w16(&p, 0); w16(&p, (uint32_t)e[k].method); w16(&p, 0); w16(&p, 0);
        w32(&p, crc); w32(&p, (uint32_t)e[k].size); w32(&p, (uint32_t)e[k].size);
        w16(&p, (uint32_t)strlen(e[k].name)); w16(&p, 0); w16(&p, 0); w16(&p, 0); w16(&p, 0); w32(&p, 0);
        w32(&p, off[k]);
        memcpy(p, e[k].name, strlen(e[k].name)); p += strlen(e[k].name);
    }
    uint32_t cd_size = (uint32_t)(p - cd), cd_off = (uint32_t)(cd - buf);
    w32(&p, 0x06054b50u); w16(&p, 0); w16(&p, 0); w16(&p, (uint32_t)n); w16(&p, (uint32_t)n);
    w32(&p, cd_size); w32(&p, cd_off); w16(&p, 0);
    *len = (size_t)(p - buf);
    free(off);
    return buf;
}

/* ------------------------------------------------------------------------- */
/* 1. The pickle VM on hand-assembled programs                                 */
/* ------------------------------------------------------------------------- */
static PyVal *load_bytes(const char *p, size_t n) { return pickle_load((const uint8_t *)p, n, NULL, NULL); }

static void test_pickle_vm(void) {
    printf("pickle VM: opcodes\n");
    /* {'a': [1, -2, 300, 70000, -1 (LONG1), 2**40 (LONG1), 1.5 (BINFLOAT BE)], b'k': b'xyz', 't': (None, True, False)} */
    static const char p1[] =
        "\x80\x02}q\x00(X\x01\x00\x00\x00" "a]q\x01(K\x01J\xfe\xff\xff\xffM\x2c\x01J\x70\x11\x01\x00"
        "\x8a\x01\xff\x8a\x06\x00\x00\x00\x00\x00\x01G\x3f\xf8\x00\x00\x00\x00\x00\x00" "eU\x01kC\x03xyz"
        "\x8c\x01tN\x88\x89\x87u.";
    PyVal *v = load_bytes(p1, sizeof p1 - 1);
    check(v != NULL, "protocol-2/4 mix loads (%s)", v ? "ok" : dkd_errbuf);
    if (v) {
        const PyVal *a = py_dict_get(v, "a"), *k = py_dict_get(v, "k"), *t = py_dict_get(v, "t");
        int64_t x[6] = {0}; double f = 0;
        int ok = a && py_len(a) == 7;
        for (int i = 0; ok && i < 6; i++) ok = py_int(py_item(a, (size_t)i), &x[i]) == 0;
        ok = ok && py_float(py_item(a, 6), &f) == 0;
        check(ok && x[0] == 1 && x[1] == -2 && x[2] == 300 && x[3] == 70000 && x[4] == -1 && x[5] == ((int64_t)1 << 40) && f == 1.5,
              "ints (BININT1/2, BININT<0, LONG1 -1 and 2^40) and big-endian BINFLOAT");
        size_t kl = 0;
        const uint8_t *kb = py_bytes(k, &kl);
        check(kb && kl == 3 && !memcmp(kb, "xyz", 3) && k->kind == PV_BYTES, "SHORT_BINSTRING key, SHORT_BINBYTES value");
        check(t && t->kind == PV_TUPLE && py_len(t) == 3 && py_item(t, 0)->kind == PV_NONE &&
              py_item(t, 1)->kind == PV_BOOL && py_item(t, 1)->i == 1 && py_item(t, 2)->i == 0,
              "SHORT_BINUNICODE key, TUPLE3 of None/True/False");
        check(py_dict_get(v, "missing") == NULL && py_item(a, 7) == NULL && py_len(k) == 0, "absent key / index give NULL");
        pickle_free(v);
    }
    /* protocol 4: FRAME, MEMOIZE, BINGET, APPEND, BINBYTES, BINSTRING */
    static const char p2[] =
        "\x80\x04\x95\x20\x00\x00\x00\x00\x00\x00\x00]\x94(K\x07K\x08" "eh\x00" "a" "B\x02\x00\x00\x00hiT\x03\x00\x00\x00" "abc\x86" "a.";
    v = load_bytes(p2, sizeof p2 - 1);
    check(v && v->kind == PV_LIST && py_len(v) == 4 && py_item(v, 2) == py_item(v, 2) &&
          py_item(v, 2)->kind == PV_LIST && py_item(v, 3)->kind == PV_TUPLE,
          "FRAME/MEMOIZE/BINGET/APPEND (a list containing itself), BINBYTES, BINSTRING (%s)", v ? "ok" : dkd_errbuf);
    if (v) pickle_free(v);

    /* a CIFAR-style pickle as Python 2's cPickle writes it */
    char p3[512]; size_t n = 0;
#define PUT(s) do { memcpy(p3 + n, s, sizeof(s) - 1); n += sizeof(s) - 1; } while (0)
    PUT("\x80\x02}q\x01(U\x04" "dataq\x02" "cnumpy.core.multiarray\n_reconstruct\nq\x03" "cnumpy\nndarray\nq\x04K\x00\x85U\x01" "b\x87Rq\x05"
        "(K\x01K\x02K\x03\x86" "cnumpy\ndtype\nq\x06U\x02u1K\x00K\x01\x87Rq\x07(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
        "T\x06\x00\x00\x00\x01\x02\x03\xfa\xfb\xfctbU\x0b" "fine_labelsq\x08]q\x09(K\x05K\x63" "eU\x0b" "batch_labelU\x05" "batchu.");
#undef PUT
    v = load_bytes(p3, n);
    check(v != NULL, "CIFAR-style numpy pickle loads (%s)", v ? "ok" : dkd_errbuf);
    if (v) {
        int nd = 0; int64_t shape[8]; const uint8_t *data = NULL;
        int rc = py_ndarray_u8(py_dict_get(v, "data"), &nd, shape, &data);
        check(rc == 0 && nd == 2 && shape[0] == 2 && shape[1] == 3 && data && data[0] == 1 && data[5] == 0xfc,
              "py_ndarray_u8: shape [2,3] and raw bytes of the uint8 array");
        const PyVal *lab = py_dict_get(v, "fine_labels");
        int64_t l1 = 0;
        check(py_len(lab) == 2 && py_int(py_item(lab, 1), &l1) == 0 && l1 == 99, "label list via bytes key lookup");
        check(py_ndarray_u8(py_dict_get(v, "fine_labels"), &nd, shape, &data) == -1 && dkd_errbuf[0], "py_ndarray_u8 on a list fails");
        pickle_free(v);
    }
    /* consumed length of concatenated pickles */
    size_t used = 0;
    v = pickle_load((const uint8_t *)"\x80\x02K\x05.\x80\x02K\x06.", 10, NULL, &used);
    check(v && used == 5 && v->i == 5, "pickle_load reports the bytes used (%zu)", used);
    if (v) pickle_free(v);

    printf("pickle VM: refusals\n");
#define B(lit) lit, sizeof(lit) - 1
    struct { const char *what, *bytes; size_t n; const char *needle; } bad[] = {
        {"GLOBAL os.system", B("\x80\x02" "cos\nsystem\nX\x02\x00\x00\x00" "ls\x85R."), "os.system"},
        {"GLOBAL builtins.eval", B("\x80\x02" "cbuiltins\neval\nX\x01\x00\x00\x00" "1\x85R."), "builtins.eval"},
        {"STACK_GLOBAL posix.system", B("\x80\x04\x8c\x05posix\x8c\x06system\x93."), "posix.system"},
        {"INST opcode", B("\x80\x02(ios\nsystem\n."), "INST"},
        {"NEWOBJ opcode", B("\x80\x02" "ccollections\nOrderedDict\n)\x81."), "NEWOBJ"},
        {"REDUCE on an empty stack", B("\x80\x02R."), "underflow"},
        {"BINGET of an unset memo slot", B("\x80\x02h\x07."), "never stored"},
        {"SETITEM on a list", B("\x80\x02]K\x01K\x02s."), "not a dict"},
        {"APPENDS without MARK", B("\x80\x02]e."), "MARK"},
        {"BINSTRING negative length", B("\x80\x02T\xff\xff\xff\xff."), "negative"},
        {"BINUNICODE longer than the input", B("\x80\x02X\x00\x00\x01\x00" "ab."), "truncated"},
        {"no STOP", B("\x80\x02K\x01"), "STOP"},
        {"huge LONG_BINPUT index", B("\x80\x02K\x01r\xff\xff\xff\xff."), "memo index"},
        {"OrderedDict called with arguments", B("\x80\x02" "ccollections\nOrderedDict\nK\x01\x85R."), "arguments"},
        {"tensor past its storage",
         B("\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00" "storagectorch\nFloatStorage\n"
           "X\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x02tQK\x00K\x03\x85K\x01\x85\x89}tR."), "past its storage"},
        {"empty input", B(""), "STOP"},
    };
#undef B
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = bad[i].n;
        dkd_errbuf[0] = 0;
        v = load_bytes(bad[i].bytes, len);
        check(!v && strstr(dkd_errbuf, bad[i].needle) && strstr(dkd_errbuf, "offset"), "%s: %s", bad[i].what, v ? "ACCEPTED" : dkd_errbuf);
        if (v) pickle_free(v);
    }
    /* numpy globals are refused where only torch is allowed */
    PickleHooks torch_only = {PICKLE_ALLOW_TORCH, NULL, NULL};
    v = pickle_load((const uint8_t *)"\x80\x02" "cnumpy\ndtype\n.", 16, &torch_only, NULL);
    check(!v && strstr(dkd_errbuf, "numpy.dtype"), "numpy.dtype refused in a torch-only load: %s", v ? "ACCEPTED" : dkd_errbuf);
    if (v) pickle_free(v);
    /* every proper prefix of a valid pickle fails cleanly */
    int all_fail = 1;
    for (size_t cut = 0; cut < n; cut++) {
        PyVal *w = load_bytes(p3, cut);
        if (w) { all_fail = 0; pickle_free(w); }
    }
    check(all_fail, "all %zu truncations of the CIFAR-style pickle are rejected", n);
}

/* ------------------------------------------------------------------------- */
/* 2. The golden fixtures                                                      */
/* ------------------------------------------------------------------------- */
static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void check_same_tensors(const char *what, const PthDict *a, const PthDict *b) {
    int ok = a->n == b->n, bad = -1;
    for (int k = 0; ok && k < a->n; k++) {
        const PthTensor *x = &a->t[k], *y = pth_get(b, x->name);
        if (!y || y->dtype != x->dtype || y->ndim != x->ndim || y->numel != x->numel ||
            memcmp(y->shape, x->shape, sizeof x->shape) ||
            memcmp(x->data, y->data, x->numel * (x->dtype == DT_I64 || x->dtype == DT_F64 ? 8 : 4))) { ok = 0; bad = k; }
    }
    check(ok, "%s: %d tensors bit-identical%s%s", what, a->n, bad >= 0 ? ", first difference at " : "", bad >= 0 ? a->t[bad].name : "");
}

static void test_fixtures(void) {
    printf("fixtures: %s\n", fixtures_dir());
    DIR *dir = opendir(fixtures_dir());
    if (!dir) { skip("no fixtures directory %s", fixtures_dir()); return; }
    struct dirent *de;
    int files = 0;
    char path[1024];
    while ((de = readdir(dir))) {
        if (!ends_with(de->d_name, ".pth")) continue;
        files++;
        snprintf(path, sizeof path, "%s/%s", fixtures_dir(), de->d_name);
        PthDict d;
        if (pth_read(path, &d)) { check(0, "%s: %s", de->d_name, dkd_errbuf); continue; }
        int weights = !strstr(de->d_name, "_case");   /* {"model": state_dict} files */
        int sane = d.n > 0, nbt = 0, nbt_same = 1, var_pos = 1;
        int64_t nbt0 = -1;
        const char *why = "";
        for (int k = 0; k < d.n && sane; k++) {
            const PthTensor *t = &d.t[k];
            size_t numel = 1;
            for (int a = 0; a < t->ndim; a++) numel *= (size_t)t->shape[a];
            if (!t->name[0] || t->ndim < 0 || t->ndim > 4 || numel != t->numel || (t->numel && !t->data)) { sane = 0; why = t->name; break; }
            if (t->dtype != DT_F32 && t->dtype != DT_F64 && t->dtype != DT_I64) { sane = 0; why = t->name; break; }
            if (!weights) continue;
            if (ends_with(t->name, "num_batches_tracked")) {
                if (t->dtype != DT_I64 || t->ndim != 0) { sane = 0; why = t->name; break; }
                int64_t v = *(const int64_t *)t->data;
                if (nbt0 < 0) nbt0 = v;
                if (v != nbt0 || v <= 0) nbt_same = 0;
                nbt++;
            } else if (t->dtype != DT_F32) { sane = 0; why = t->name; break; }
            if (ends_with(t->name, "running_var"))
                for (size_t e = 0; e < t->numel; e++) if (!(((const float *)t->data)[e] > 0)) var_pos = 0;
        }
        check(sane, "%s: %d tensors, names/shapes/dtypes sane %s", de->d_name, d.n, why);
        if (weights) {
            check(nbt > 0 && nbt_same, "%s: %d num_batches_tracked, int64 0-d, all equal (%lld)", de->d_name, nbt, (long long)nbt0);
            check(var_pos, "%s: every running_var > 0", de->d_name);
        }
        if (!strcmp(de->d_name, "resnet20.pth")) {
            /* resnet20 = conv1 + bn1 (1 + 5 entries), 9 basic blocks of conv/bn/conv/bn (12 each),
             * 2 downsample shortcuts conv+bn (6 each), fc weight+bias: 6 + 108 + 12 + 2 = 128 */
            check(d.n == 128, "resnet20.pth has %d entries (expected 128)", d.n);
            const PthTensor *w = pth_get(&d, "conv1.weight");
            check(w && w->ndim == 4 && w->shape[0] == 16 && w->shape[1] == 3 && w->shape[2] == 3 && w->shape[3] == 3,
                  "resnet20 conv1.weight is [16,3,3,3]");
            check(d.ns == 0 && isnan(pth_scalar(&d, "epoch")), "no top-level scalars in a {\"model\": ...} file");
            check(pth_scalar(&d, "bn1.num_batches_tracked") == (double)nbt0, "pth_scalar reads a 0-d int64 tensor");
        }
        if (!strcmp(de->d_name, "dkd_case.pth")) {
            int cases = 0;
            for (int k = 0; k < d.n; k++) if (ends_with(d.t[k].name, ".student") && !strncmp(d.t[k].name, "case", 4)) cases++;
            check(pth_scalar(&d, "num_cases") == cases && cases > 0, "dkd_case: num_cases %g = %d case<i>.student keys",
                  pth_scalar(&d, "num_cases"), cases);
            check(pth_get(&d, "case0.alpha") && pth_get(&d, "case0.alpha")->dtype == DT_F64, "dkd_case: hyper-parameters are float64 0-d");
        }
        pth_dict_free(&d);
    }
    closedir(dir);
    check(files >= 3, "found %d .pth fixtures", files);
    const char *pairs[][2] = {{"resnet20.pth", "resnet20_legacy.pth"}, {"ShuffleV1.pth", "ShuffleV1_legacy.pth"}};
    for (int p = 0; p < 2; p++) {
        PthDict a, b;
        char pa[1024], pb[1024];
        snprintf(pa, sizeof pa, "%s/%s", fixtures_dir(), pairs[p][0]);
        snprintf(pb, sizeof pb, "%s/%s", fixtures_dir(), pairs[p][1]);
        if (pth_read(pa, &a)) { skip("%s: %s", pairs[p][0], dkd_errbuf); continue; }
        if (pth_read(pb, &b)) { check(0, "%s: %s", pairs[p][1], dkd_errbuf); pth_dict_free(&a); continue; }
        char what[128];
        snprintf(what, sizeof what, "%s == %s", pairs[p][1], pairs[p][0]);
        check_same_tensors(what, &a, &b);
        for (int k = 0; k < a.n && k < b.n; k++)
            if (strcmp(a.t[k].name, b.t[k].name)) { check(0, "%s: key order differs at %d", what, k); break; }
        pth_dict_free(&a); pth_dict_free(&b);
    }
}

/* ------------------------------------------------------------------------- */
/* 3. Write -> read round trip                                                 */
/* ------------------------------------------------------------------------- */
/* Walk the local headers of a file we wrote: CRC and 64-byte alignment. */
static void check_zip_layout(const uint8_t *b, size_t len) {
    size_t pos = 0; int entries = 0, aligned = 1, crc_ok = 1;
    while (pos + 30 <= len && b[pos] == 'P' && b[pos + 1] == 'K' && b[pos + 2] == 3 && b[pos + 3] == 4) {
        uint32_t crc = (uint32_t)b[pos + 14] | (uint32_t)b[pos + 15] << 8 | (uint32_t)b[pos + 16] << 16 | (uint32_t)b[pos + 17] << 24;
        size_t size = (size_t)b[pos + 18] | (size_t)b[pos + 19] << 8 | (size_t)b[pos + 20] << 16 | (size_t)b[pos + 21] << 24;
        size_t nl = (size_t)b[pos + 26] | (size_t)b[pos + 27] << 8, xl = (size_t)b[pos + 28] | (size_t)b[pos + 29] << 8;
        size_t start = pos + 30 + nl + xl;
        if (start + size > len) { crc_ok = 0; break; }
        if (start % 64) aligned = 0;
        if (test_crc32(b + start, size) != crc) crc_ok = 0;
        pos = start + size; entries++;
    }
    check(entries >= 4 && crc_ok && aligned, "written zip: %d entries, CRC-32s correct (%s), data 64-byte aligned (%s)",
          entries, crc_ok ? "yes" : "NO", aligned ? "yes" : "NO");
}

static void test_round_trip(void) {
    printf("write -> read round trip\n");
    float w[2 * 3 * 4 * 5]; test_fill(w, 120, 1, 3.0f);
    w[7] = -0.0f; w[8] = 1e-40f;  /* a negative zero and a subnormal survive bit for bit */
    double dd[7]; for (int i = 0; i < 7; i++) dd[i] = 1.0 / (i + 3);
    int64_t iv[3] = {-5, (int64_t)1 << 40, INT64_MIN};
    int64_t nbt = 187681; float loss = 2.5f; uint8_t bytes[5] = {0, 1, 2, 254, 255};
    int64_t s4[4] = {2, 3, 4, 5}, s1[1] = {7}, s3[1] = {3}, s5[1] = {5}, s0[1] = {0};
    PthTensorRef model[] = {
        {"conv.weight", DT_F32, 4, s4, w}, {"d", DT_F64, 1, s1, dd}, {"i", DT_I64, 1, s3, iv},
        {"bn.num_batches_tracked", DT_I64, 0, NULL, &nbt}, {"loss", DT_F32, 0, NULL, &loss},
        {"u8", DT_U8, 1, s5, bytes}, {"empty", DT_F32, 1, s0, NULL},
    };
    PthTensorRef other[] = {{"x", DT_F32, 1, s1, w}};
    PthItem items[] = {
        {"epoch", PI_INT, 240, 0, NULL, 0, NULL}, {"big", PI_INT, -((int64_t)1 << 42), 0, NULL, 0, NULL},
        {"best_acc", PI_FLOAT, 0, 71.123456789, NULL, 0, NULL}, {"model", PI_STATE_DICT, 0, 0, model, 7, NULL},
        {"other", PI_STATE_DICT, 0, 0, other, 1, NULL},
    };
    char *path = tmp_path("rt.pth");
    int wrc = pth_write(path, items, 5);
    check(wrc == 0, "pth_write %s", wrc ? dkd_errbuf : "");
    check(access(tmp_path("rt.pth.tmp"), F_OK) != 0, "no temporary file left behind");
    PthDict d;
    if (pth_read(path, &d)) { check(0, "pth_read of our file: %s", dkd_errbuf); return; }
    check(d.n == 7, "model's 7 tensors read back (%d)", d.n);
    for (int k = 0; k < 7 && k < d.n; k++) {
        const PthTensor *t = &d.t[k];
        size_t numel = 1, es = model[k].dtype == DT_U8 ? 1 : (model[k].dtype == DT_F32 ? 4 : 8);
        int shape_ok = t->ndim == model[k].ndim && !strcmp(t->name, model[k].name) && t->dtype == model[k].dtype;
        for (int a = 0; a < t->ndim && shape_ok; a++) { shape_ok = t->shape[a] == model[k].shape[a]; numel *= (size_t)t->shape[a]; }
        check(shape_ok && t->numel == numel && (!numel || !memcmp(t->data, model[k].data, numel * es)),
              "round trip %s: name, dtype, shape, %zu elements bit-identical", model[k].name, numel);
    }
    check(pth_scalar(&d, "epoch") == 240 && pth_scalar(&d, "big") == -(double)((int64_t)1 << 42) &&
          pth_scalar(&d, "best_acc") == 71.123456789 && d.ns == 3,
          "PI_INT (BININT and LONG1) and PI_FLOAT items read back exactly (%d scalars)", d.ns);
    if (d.n == 7) check_same("conv.weight bytes", d.t[0].data, w, sizeof w);
    check(pth_scalar(&d, "loss") == 2.5 && isnan(pth_scalar(&d, "conv.weight")), "pth_scalar: 0-d float32, nan for a big tensor");
    check(pth_get(&d, "x") == NULL, "only top[\"model\"] tensors are returned");
    pth_dict_free(&d);
    size_t len;
    uint8_t *b = read_file(path, &len);
    if (b) { check_zip_layout(b, len); free(b); }
    /* a dict without "model": empty state dicts, scalars only */
    PthItem only[] = {{"epoch", PI_INT, 3, 0, NULL, 0, NULL}};
    check(pth_write(path, only, 1) == 0 && pth_read(path, &d) == 0 && d.n == 0 && pth_scalar(&d, "epoch") == 3,
          "a file of scalars only");
    pth_dict_free(&d);
    PthTensorRef bad_ref = {"bad", 99, 0, NULL, &nbt};
    PthItem bad_item = {"model", PI_STATE_DICT, 0, 0, &bad_ref, 1, NULL};
    check(pth_write(path, &bad_item, 1) == -1 && dkd_errbuf[0], "pth_write rejects an unknown dtype: %s", dkd_errbuf);
    check(pth_write("/nonexistent-dir/x.pth", only, 1) == -1 && dkd_errbuf[0], "pth_write to a bad path fails: %s", dkd_errbuf);
    unlink(path);
}

/* ------------------------------------------------------------------------- */
/* 4. Bad files                                                                */
/* ------------------------------------------------------------------------- */
/* Extract the named entry from a file WE wrote (local headers carry sizes). */
static uint8_t *our_entry(const uint8_t *b, size_t len, const char *name, size_t *size) {
    size_t pos = 0;
    while (pos + 30 <= len && b[pos] == 'P' && b[pos + 1] == 'K' && b[pos + 2] == 3) {
        size_t sz = (size_t)b[pos + 18] | (size_t)b[pos + 19] << 8 | (size_t)b[pos + 20] << 16 | (size_t)b[pos + 21] << 24;
        size_t nl = (size_t)b[pos + 26] | (size_t)b[pos + 27] << 8, xl = (size_t)b[pos + 28] | (size_t)b[pos + 29] << 8;
        size_t start = pos + 30 + nl + xl;
        if (nl == strlen(name) && !memcmp(b + pos + 30, name, nl)) {
            uint8_t *r = (uint8_t *)malloc(sz ? sz : 1);
            memcpy(r, b + start, sz); *size = sz;
            return r;
        }
        pos = start + sz;
    }
    return NULL;
}

static void test_bad_files(void) {
    printf("bad input\n");
    char path[1024];
    size_t len;
    /* truncated copies of a real zip fixture and a real legacy fixture */
    snprintf(path, sizeof path, "%s/resnet20.pth", fixtures_dir());
    uint8_t *zb = read_file(path, &len);
    if (!zb) skip("resnet20.pth not found: %s", dkd_errbuf);
    else {
        size_t cuts[] = {len - 1, len - 10, len - 22, len - 40, len - 98, len - 600, len / 2, 5000, 100, 30, 4, 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            write_bytes(tmp_path("cut.pth"), zb, cuts[i]);
            char what[96]; snprintf(what, sizeof what, "resnet20.pth cut at %zu of %zu", cuts[i], len);
            expect_read_fails(tmp_path("cut.pth"), what, NULL);
        }
        free(zb);
    }
    snprintf(path, sizeof path, "%s/resnet20_legacy.pth", fixtures_dir());
    uint8_t *lb = read_file(path, &len);
    if (!lb) skip("resnet20_legacy.pth not found: %s", dkd_errbuf);
    else {
        /* the legacy stream: its pickles end where the raw storages start */
        size_t end_pk = 0, used;
        for (int k = 0; k < 5; k++) {
            PyVal *v = pickle_load(lb + end_pk, len - end_pk, NULL, &used);
            if (!v) break;
            pickle_free(v); end_pk += used;
        }
        size_t cuts[] = {3, 15, 21, 100, end_pk / 3, end_pk / 2, end_pk - 1, end_pk, end_pk + 4, end_pk + 9, (end_pk + len) / 2, len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            write_bytes(tmp_path("cut.pth"), lb, cuts[i]);
            char what[96]; snprintf(what, sizeof what, "resnet20_legacy.pth cut at %zu of %zu (pickles end at %zu)", cuts[i], len, end_pk);
            expect_read_fails(tmp_path("cut.pth"), what, NULL);
        }
        /* the main pickle cut at every 7th byte, straight into the VM */
        int all = 1;
        for (size_t cut = 0; cut + 1 < end_pk; cut += 7) {
            size_t off = 0;
            for (int k = 0; k < 5; k++) {
                PyVal *v = pickle_load(lb + off, cut - off, NULL, &used);
                if (!v) break;
                pickle_free(v); off += used;
                if (k == 4) all = 0;   /* five pickles out of a proper prefix: wrong */
            }
        }
        check(all, "legacy pickles cut at every 7th byte: never five complete pickles");
        free(lb);
    }
    expect_read_fails(tmp_path("does-not-exist.pth"), "missing file", "does-not-exist");
    write_bytes(tmp_path("empty.pth"), "", 0);
    expect_read_fails(tmp_path("empty.pth"), "zero-length file", "empty");
    uint8_t junk[4096];
    unsigned long long s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) { s = s * 6364136223846793005ULL + 1442695040888963407ULL; junk[i] = (uint8_t)(s >> 56); }
    write_bytes(tmp_path("junk.pth"), junk, sizeof junk);
    expect_read_fails(tmp_path("junk.pth"), "random garbage", NULL);
    memcpy(junk, "PK\3\4", 4);
    write_bytes(tmp_path("junk.pth"), junk, sizeof junk);
    expect_read_fails(tmp_path("junk.pth"), "garbage behind a zip signature", NULL);
    junk[0] = 0x80; junk[1] = 2;
    write_bytes(tmp_path("junk.pth"), junk, sizeof junk);
    expect_read_fails(tmp_path("junk.pth"), "garbage behind a pickle PROTO", NULL);
    write_bytes(tmp_path("junk.pth"), "\x80\x02}.", 4);
    expect_read_fails(tmp_path("junk.pth"), "a bare pickle without torch's magic", "magic");

    /* malicious / unsupported zips built here */
    static const char evil1[] = "\x80\x02}X\x05\x00\x00\x00modelcos\nsystem\nX\x0a\x00\x00\x00" "echo pwned\x85Rs.";
    static const char evil2[] = "\x80\x02" "cbuiltins\neval\nX\x0b\x00\x00\x00__import__\x85R.";
    struct { const char *what; const char *pkl; size_t n; int method, bad_crc; const char *needle; } z[] = {
        {"zip with GLOBAL os.system", evil1, sizeof evil1 - 1, 0, 0, "os.system"},
        {"zip with GLOBAL builtins.eval", evil2, sizeof evil2 - 1, 0, 0, "builtins.eval"},
        {"zip with a compressed data.pkl", evil1, sizeof evil1 - 1, 8, 0, "compressed"},
        {"zip with a bad CRC", evil1, sizeof evil1 - 1, 0, 1, "CRC"},
    };
    for (size_t i = 0; i < sizeof z / sizeof z[0]; i++) {
        TestEntry e[2] = {{"archive/data.pkl", (const uint8_t *)z[i].pkl, z[i].n, z[i].method, z[i].bad_crc},
                          {"archive/version", (const uint8_t *)"3\n", 2, 0, 0}};
        uint8_t *b = make_zip(e, 2, &len);
        write_bytes(tmp_path("evil.pth"), b, len);
        free(b);
        expect_read_fails(tmp_path("evil.pth"), z[i].what, z[i].needle);
    }
    TestEntry nopkl[1] = {{"archive/version", (const uint8_t *)"3\n", 2, 0, 0}};
    uint8_t *b = make_zip(nopkl, 1, &len);
    write_bytes(tmp_path("evil.pth"), b, len);
    free(b);
    expect_read_fails(tmp_path("evil.pth"), "zip without data.pkl", "data.pkl");

    /* our own small checkpoint: its pickle cut, a storage missing / short, byte flips */
    float w[12]; test_fill(w, 12, 9, 1.0f);
    int64_t sh[2] = {3, 4}, nbt = 5;
    PthTensorRef refs[2] = {{"a.weight", DT_F32, 2, sh, w}, {"a.num_batches_tracked", DT_I64, 0, NULL, &nbt}};
    PthItem items[2] = {{"epoch", PI_INT, 7, 0, NULL, 0, NULL}, {"model", PI_STATE_DICT, 0, 0, refs, 2, NULL}};
    if (pth_write(tmp_path("small.pth"), items, 2)) { check(0, "pth_write small: %s", dkd_errbuf); return; }
    size_t slen = 0;
    uint8_t *sb = read_file(tmp_path("small.pth"), &slen);
    size_t pl = 0, s0l = 0, s1l = 0;
    uint8_t *pkl = our_entry(sb, slen, "archive/data.pkl", &pl);
    uint8_t *st0 = our_entry(sb, slen, "archive/data/0", &s0l), *st1 = our_entry(sb, slen, "archive/data/1", &s1l);
    check(pkl && st0 && st1 && s0l == 48 && s1l == 8, "our file's entries found by an independent walk");
    if (pkl && st0 && st1) {
        size_t cuts[] = {2, pl / 4, pl / 2, 3 * pl / 4, pl - 1};
        for (size_t i = 0; i < 5; i++) {
            TestEntry e[3] = {{"x/data.pkl", pkl, cuts[i], 0, 0}, {"x/data/0", st0, s0l, 0, 0}, {"x/data/1", st1, s1l, 0, 0}};
            uint8_t *zz = make_zip(e, 3, &len);
            write_bytes(tmp_path("cutpkl.pth"), zz, len);
            free(zz);
            char what[80]; snprintf(what, sizeof what, "zip whose pickle is cut at %zu of %zu", cuts[i], pl);
            expect_read_fails(tmp_path("cutpkl.pth"), what, "truncated");
        }
        TestEntry e[3] = {{"x/data.pkl", pkl, pl, 0, 0}, {"x/data/0", st0, s0l, 0, 0}, {"x/data/1", st1, s1l, 0, 0}};
        uint8_t *zz = make_zip(e, 3, &len);
        write_bytes(tmp_path("ok.pth"), zz, len);
        free(zz);
        PthDict d;
        int rc = pth_read(tmp_path("ok.pth"), &d);
        check(rc == 0 && d.n == 2 && pth_scalar(&d, "epoch") == 7 && !memcmp(pth_get(&d, "a.weight")->data, w, sizeof w),
              "the same entries re-zipped (another stem, no alignment) read fine %s", rc ? dkd_errbuf : "");
        if (rc == 0) pth_dict_free(&d);
        zz = make_zip(e, 2, &len);
        write_bytes(tmp_path("nost.pth"), zz, len);
        free(zz);
        expect_read_fails(tmp_path("nost.pth"), "zip missing a storage entry", "data/1");
        e[1].size = 40;
        zz = make_zip(e, 3, &len);
        write_bytes(tmp_path("short.pth"), zz, len);
        free(zz);
        expect_read_fails(tmp_path("short.pth"), "zip with a short storage", "bytes");
        /* random byte flips inside the pickle, re-zipped with a correct CRC: the VM sees them */
        e[1].size = s0l;
        uint8_t *mp = (uint8_t *)malloc(pl);
        int acc = 0, rej = 0, msg = 1;
        unsigned long long r = 4242;
        for (int it = 0; it < 300; it++) {
            memcpy(mp, pkl, pl);
            for (int f = 0; f < 1 + it % 3; f++) {
                r = r * 6364136223846793005ULL + 1442695040888963407ULL;
                mp[2 + (r >> 20) % (pl - 2)] = (uint8_t)(r >> 40);
            }
            e[0].data = mp;
            zz = make_zip(e, 3, &len);
            write_bytes(tmp_path("t.pth"), zz, len);
            free(zz);
            PthDict dd;
            dkd_errbuf[0] = 0;
            if (pth_read(tmp_path("t.pth"), &dd) == 0) { acc++; pth_dict_free(&dd); } else { rej++; if (!dkd_errbuf[0]) msg = 0; }
        }
        check(msg, "300 pickles with random bytes (valid CRC): %d rejected with a message, %d accepted, no crash", rej, acc);
        free(mp);
    }
    /* every truncation and 400 random byte flips of the small file: never a crash */
    int acc = 0, rej = 0, msg = 1;
    for (size_t cut = 0; cut < slen; cut++) {
        write_bytes(tmp_path("t.pth"), sb, cut);
        PthDict d;
        if (pth_read(tmp_path("t.pth"), &d) == 0) { acc++; pth_dict_free(&d); } else { rej++; if (!dkd_errbuf[0]) msg = 0; }
    }
    check(acc == 0 && msg, "all %zu truncations of a small checkpoint rejected with a message (%d accepted)", slen, acc);
    uint8_t *m = (uint8_t *)malloc(slen);
    acc = rej = 0;
    s = 777;
    for (int it = 0; it < 400; it++) {
        memcpy(m, sb, slen);
        for (int f = 0; f < 1 + it % 4; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            m[(s >> 20) % slen] ^= (uint8_t)(1u << ((s >> 8) % 8));
        }
        write_bytes(tmp_path("t.pth"), m, slen);
        PthDict d;
        dkd_errbuf[0] = 0;
        if (pth_read(tmp_path("t.pth"), &d) == 0) { acc++; pth_dict_free(&d); } else { rej++; if (!dkd_errbuf[0]) msg = 0; }
    }
    check(msg && rej > 0, "400 randomly corrupted copies: %d rejected with a message, %d accepted (bit flips in padding), no crash", rej, acc);
    free(m); free(sb); free(pkl); free(st0); free(st1);
    unlink(tmp_path("t.pth"));
}

/* ------------------------------------------------------------------------- */
/* 5. Net <-> state_dict                                                       */
/* ------------------------------------------------------------------------- */
static Net *tiny_net(void) {
    Net *n = net_new("tiny", FAMILY_RESNET);
    int x = nb_input(n, 3, 8, 8);
    x = nb_conv(n, x, "conv1", 4, 3, 1, 1, 1, 0);
    x = nb_bn(n, x, "bn1");
    x = nb_relu(n, x);
    x = nb_avgpool(n, x, 8, 8, 0);
    nb_linear(n, x, "fc", 10);
    net_finalize(n);
    return n;
}

/* A PthDict that views a net's host copies (nothing owned: do not pth_dict_free). */
typedef struct { PthDict d; PthTensor t[16]; char names[16][128]; } DictView;
static void view_of(DictView *v, const Net *n, const char *prefix) {
    memset(v, 0, sizeof *v);
    v->d.t = v->t;
    for (int j = 0; j < n->n_pinfo && j < 16; j++) {
        const ParamInfo *pi = &n->pinfo[j];
        snprintf(v->names[j], sizeof v->names[j], "%s%s", prefix, pi->name);
        PthTensor *t = &v->t[v->d.n++];
        t->name = v->names[j];
        t->dtype = pi->kind == PK_NBT ? DT_I64 : DT_F32;
        t->ndim = pi->ndim;
        for (int a = 0; a < pi->ndim; a++) t->shape[a] = pi->shape[a];
        t->numel = pi->numel;
        t->data = net_host_ptr(n, pi);
    }
}

static int same_weights(const Net *a, const Net *b) {
    return a->n_params == b->n_params && !memcmp(a->h_params, b->h_params, a->n_params * sizeof(float)) &&
           !memcmp(a->h_stats, b->h_stats, a->n_stats * sizeof(float)) && !memcmp(a->nbt, b->nbt, (size_t)a->n_nbt * sizeof(int64_t));
}

static void expect_load_fails(Net *n, const PthDict *d, const char *what, const char *needle) {
    dkd_errbuf[0] = 0;
    int rc = net_load_dict(n, d);
    check(rc == -1 && strstr(dkd_errbuf, needle), "%s: %s", what, rc ? dkd_errbuf : "ACCEPTED");
}

static void test_net_load(void) {
    printf("net <-> state_dict\n");
    Net *a = tiny_net(), *b = tiny_net();
    check(a->n_pinfo == 8, "tiny net has 8 state_dict entries (conv w, bn w/b/mean/var/nbt, fc w/b): %d", a->n_pinfo);
    net_init_params(a, 11);
    for (size_t i = 0; i < a->n_stats; i++) a->h_stats[i] = 0.5f + (float)i;
    a->nbt[0] = 123456789012LL;
    net_init_params(b, 22);
    /* save -> load */
    char *path = tmp_path("net.pth");
    int src = net_save_file(a, path);
    check(src == 0, "net_save_file %s", src ? dkd_errbuf : "");
    check(!same_weights(a, b), "two seeds give different weights");
    src = net_load_file(b, path);
    check(src == 0 && same_weights(a, b), "net_save_file -> net_load_file: bit-identical weights, stats and nbt %s", src ? dkd_errbuf : "");
    PthDict d;
    if (pth_read(path, &d) == 0) {
        const PthTensor *t = pth_get(&d, "bn1.num_batches_tracked");
        check(d.n == 8 && t && t->dtype == DT_I64 && t->ndim == 0, "the saved file is {\"model\": 8 tensors}, nbt int64 0-d");
        pth_dict_free(&d);
    }
    /* strict checks on in-memory dicts */
    DictView v;
    Net *c = tiny_net();
    net_init_params(c, 33);
    view_of(&v, a, "");
    check(net_load_dict(c, &v.d) == 0 && same_weights(a, c), "net_load_dict from a plain dict");
    net_init_params(c, 33);
    view_of(&v, a, "module.");
    check(net_load_dict(c, &v.d) == 0 && same_weights(a, c), "'module.' prefix stripped");
    /* a distiller checkpoint: module.student.* (used) beside module.teacher.* (ignored, other shapes) */
    struct { PthDict d; PthTensor t[32]; } both;
    DictView s2, t2;
    view_of(&s2, a, "module.student.");
    view_of(&t2, c, "module.teacher.");
    memset(&both, 0, sizeof both);
    both.d.t = both.t;
    for (int k = 0; k < t2.d.n; k++) { both.t[both.d.n] = t2.t[k]; both.t[both.d.n].shape[0] += 1; both.d.n++; }
    for (int k = 0; k < s2.d.n; k++) both.t[both.d.n++] = s2.t[k];
    net_init_params(c, 33);
    src = net_load_dict(c, &both.d);
    check(src == 0 && same_weights(a, c), "'module.student.' keys used, 'module.teacher.' ignored %s", src ? dkd_errbuf : "");
    Net *before = tiny_net();
    net_init_params(c, 33); net_init_params(before, 33);
    /* shape mismatch */
    view_of(&v, a, "");
    v.t[0].shape[0] = 5;
    expect_load_fails(c, &v.d, "wrong shape", "key conv1.weight has shape [5,3,3,3], model expects [4,3,3,3]");
    check(same_weights(c, before), "a failed load leaves the net untouched");
    view_of(&v, a, "");
    v.t[6].ndim = 1; v.t[6].shape[0] = 480;
    expect_load_fails(c, &v.d, "wrong rank", "key fc.weight has shape [480], model expects [10,4]");
    /* missing key / missing nbt / unexpected key */
    view_of(&v, a, "");
    v.d.n = 7;                          /* drop fc.bias (the last entry) */
    expect_load_fails(c, &v.d, "missing key", "missing key fc.bias");
    view_of(&v, a, "");
    for (int k = 5; k < v.d.n - 1; k++) v.t[k] = v.t[k + 1];
    v.d.n--;                            /* drop bn1.num_batches_tracked */
    net_init_params(c, 33); c->nbt[0] = 99;
    src = net_load_dict(c, &v.d);
    check(src == 0 && c->nbt[0] == 0, "missing num_batches_tracked tolerated (-> 0) %s", src ? dkd_errbuf : "");
    view_of(&v, a, "");
    v.t[v.d.n] = v.t[0]; v.t[v.d.n].name = (char *)"layer9.conv.weight"; v.d.n++;
    expect_load_fails(c, &v.d, "extra key", "unexpected key layer9.conv.weight (is this a checkpoint of another model?)");
    view_of(&v, a, "");
    v.t[v.d.n] = v.t[0]; v.t[v.d.n].name = (char *)"module.conv1.weight"; v.d.n++;
    expect_load_fails(c, &v.d, "same key with and without module.", "twice");
    /* dtypes: float64 weights and int32 nbt are converted; int64 weights are refused */
    view_of(&v, a, "");
    double wd[4 * 3 * 3 * 3];
    for (int i = 0; i < 108; i++) wd[i] = (double)a->h_params[i];
    v.t[0].dtype = DT_F64; v.t[0].data = wd;
    int32_t nbt32 = 42;
    v.t[5].dtype = DT_I32; v.t[5].data = &nbt32;
    net_init_params(c, 33);
    src = net_load_dict(c, &v.d);
    check(src == 0 && !memcmp(c->h_params, a->h_params, 108 * sizeof(float)) && c->nbt[0] == 42,
          "float64 weights -> float32, int32 num_batches_tracked accepted %s", src ? dkd_errbuf : "");
    check_close("float64 -> float32 conv1.weight", c->h_params, a->h_params, 108, 0, 0);
    int64_t wi[108] = {0};
    v.t[0].dtype = DT_I64; v.t[0].data = wi;
    expect_load_fails(c, &v.d, "int64 weights", "dtype int64");
    view_of(&v, a, "");
    float nbf = 1;
    v.t[5].dtype = DT_F32; v.t[5].data = &nbf;
    expect_load_fails(c, &v.d, "float num_batches_tracked", "dtype float32");
    /* a real checkpoint of another model, through the file path */
    char fx[1024];
    snprintf(fx, sizeof fx, "%s/resnet20.pth", fixtures_dir());
    if (access(fx, R_OK)) skip("%s not in this fixtures folder: another model's checkpoint not tried", fx);
    else {
        dkd_errbuf[0] = 0;
        int rc = net_load_file(c, fx);
        check(rc == -1 && strstr(dkd_errbuf, "checkpoint") && strstr(dkd_errbuf, "resnet20.pth") && strstr(dkd_errbuf, "does not fit model tiny"),
              "resnet20.pth into the tiny net: %s", rc ? dkd_errbuf : "ACCEPTED");
    }
    net_free(a); net_free(b); net_free(c); net_free(before);
    unlink(path);
}

/* Real models: fixture -> net -> net_save_file -> the same tensors, same order. */
static void test_real_models(void) {
    printf("real models\n");
    const char *names[] = {"resnet20", "ShuffleV1"};
    char fx[1024], lg[1024];
    for (int i = 0; i < 2; i++) {
        snprintf(fx, sizeof fx, "%s/%s.pth", fixtures_dir(), names[i]);
        snprintf(lg, sizeof lg, "%s/%s_legacy.pth", fixtures_dir(), names[i]);
        if (access(fx, R_OK)) { skip("%s not found", fx); continue; }
        Net *n = model_build(names[i]);
        if (!n) { check(0, "model_build %s: %s", names[i], dkd_errbuf); continue; }
        int rc = net_load_file(n, fx);
        check(rc == 0, "%s.pth loads strictly into %s %s", names[i], names[i], rc ? dkd_errbuf : "");
        if (!access(lg, R_OK)) {
            Net *l = model_build(names[i]);
            rc = net_load_file(l, lg);
            check(rc == 0 && same_weights(n, l), "%s_legacy.pth loads to the same weights %s", names[i], rc ? dkd_errbuf : "");
            net_free(l);
        }
        char *out = tmp_path("model.pth");
        PthDict a, b;
        if (net_save_file(n, out) == 0 && pth_read(fx, &a) == 0) {
            if (pth_read(out, &b) == 0) {
                char what[128];
                snprintf(what, sizeof what, "%s: net_save_file == the fixture", names[i]);
                check_same_tensors(what, &a, &b);
                int order = a.n == b.n;
                for (int k = 0; order && k < a.n; k++) order = !strcmp(a.t[k].name, b.t[k].name);
                check(order, "%s: keys saved in mdistiller's state_dict order", names[i]);
                pth_dict_free(&b);
            } else check(0, "reading back %s: %s", out, dkd_errbuf);
            pth_dict_free(&a);
        } else check(0, "%s: save/read: %s", names[i], dkd_errbuf);
        unlink(out);
        net_free(n);
    }
    snprintf(fx, sizeof fx, "%s/resnet32.pth", fixtures_dir());
    Net *n = model_build("resnet20");
    if (n && !access(fx, R_OK)) {
        dkd_errbuf[0] = 0;
        int rc = net_load_file(n, fx);
        check(rc == -1 && strstr(dkd_errbuf, "does not fit model resnet20: unexpected key layer1.3."),
              "resnet32.pth into resnet20: %s", rc ? dkd_errbuf : "ACCEPTED");
    } else skip("resnet32.pth or resnet20 not available");
    if (n) net_free(n);
}


/* ------------------------------------------------------------------------- */
/* 6. Regressions of issue 11 (hostile files found by a probe)                */
/* ------------------------------------------------------------------------- */
static const int64_t SCALAR_SHAPE[1] = {0};   /* unused for 0-d tensors */

/* A legacy file whose object is {"model": {}, "a": 0-d view of storage "0" as
 * declared with first_numel elements, "x": 0-d view at offset x_offset of "0"
 * declared again with second_numel}; the file stores first_numel floats. */
static void write_legacy_twice(const char *path, int64_t first_numel, int64_t second_numel, int64_t x_offset) {
    PW b = {0};
    pw_legacy_header(&b);
    pw_proto2(&b); pw_op(&b, '}'); pw_op(&b, '(');
    pw_str(&b, "model"); pw_op(&b, '}');
    pw_str(&b, "a"); pw_tensor(&b, "FloatStorage", "0", first_numel, 0, 0, SCALAR_SHAPE, SCALAR_SHAPE);
    pw_str(&b, "x"); pw_tensor(&b, "FloatStorage", "0", second_numel, x_offset, 0, SCALAR_SHAPE, SCALAR_SHAPE);
    pw_op(&b, 'u'); pw_op(&b, '.');
    const char *keys[1] = {"0"};
    pw_legacy_keys(&b, keys, 1);
    float vals[4] = {1.5f, 2.5f, 3.5f, 4.5f};
    pw_legacy_storage(&b, vals, (uint64_t)first_numel, 4);
    write_bytes(path, b.p, b.n);
    free(b.p);
}

/* A zip checkpoint {"w": tensor [1] of storage key} whose archive holds the
 * storage entries named in names[] (each one float, values vals[]). */
static void write_zip_with_key(const char *path, const char *key, const char *const *names, const float *vals, int n) {
    PW pk = {0}, z = {0};
    int64_t one = 1;
    pw_proto2(&pk); pw_op(&pk, '}'); pw_op(&pk, '(');
    pw_str(&pk, "w"); pw_tensor(&pk, "FloatStorage", key, 1, 0, 1, &one, &one);
    pw_op(&pk, 'u'); pw_op(&pk, '.');
    PWEntry e[4];
    e[0] = (PWEntry){"archive/data.pkl", 0, pk.p, pk.n};
    for (int k = 0; k < n && k < 3; k++) e[k + 1] = (PWEntry){names[k], 0, (const uint8_t *)&vals[k], 4};
    pw_zip(&z, e, n + 1);
    write_bytes(path, z.p, z.n);
    free(pk.p); free(z.p);
}


/* 4. The loaders' memory budget: a hostile file is rejected before the loader
 * holds more than the budget of dkd.h (LOAD_MEM_*), measured as the peak RSS
 * (getrusage's ru_maxrss) of a child process that loads it. */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* {"w0": view, "w1": view, ...}: n_views tensors, each the whole of storage "0"
 * (numel floats), in a zip. Every view is a full copy for the loader. */
static void write_overlapping_views(const char *path, int n_views, int64_t numel) {
    PW pk = {0}, z = {0};
    int64_t one = 1;
    pw_proto2(&pk); pw_op(&pk, '}'); pw_op(&pk, '(');
    for (int k = 0; k < n_views; k++) {
        char name[32]; snprintf(name, sizeof name, "w%d", k);
        pw_str(&pk, name); pw_tensor(&pk, "FloatStorage", "0", numel, 0, 1, &numel, &one);
    }
    pw_op(&pk, 'u'); pw_op(&pk, '.');
    float *data = (float *)calloc((size_t)numel, sizeof(float));
    PWEntry e[2] = {{"archive/data.pkl", 0, pk.p, pk.n}, {"archive/data/0", 0, (const uint8_t *)data, (size_t)numel * 4}};
    pw_zip(&z, e, 2);
    write_bytes(path, z.p, z.n);
    free(pk.p); free(z.p); free(data);
}

/* A zip whose data.pkl is PROTO 2, then n_ops one-byte EMPTY_DICT opcodes, STOP. */
static void write_tiny_opcodes(const char *path, size_t n_ops) {
    PW pk = {0}, z = {0};
    pw_proto2(&pk);
    uint8_t *ops = (uint8_t *)malloc(n_ops);
    memset(ops, '}', n_ops);
    pw_put(&pk, ops, n_ops); free(ops);
    pw_op(&pk, '.');
    PWEntry e[1] = {{"archive/data.pkl", 0, pk.p, pk.n}};
    pw_zip(&z, e, 1);
    write_bytes(path, z.p, z.n);
    free(pk.p); free(z.p);
}

/* Load path in a child; 1 if it was rejected with a message naming memory.
 * *peak_kb: the child's peak RSS. */
static int rejected_in_child(const char *path, long *peak_kb, char *msg, size_t cap) {
    int fd[2];
    if (pipe(fd)) return 0;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        PthDict d;
        int rc = pth_read(path, &d);
        const char *m = rc ? dkd_errbuf : "ACCEPTED";
        if (write(fd[1], m, strlen(m)) < 0) _exit(3);
        _exit(rc && strstr(dkd_errbuf, "memory") ? 0 : 1);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], msg, cap - 1);
    msg[got > 0 ? got : 0] = 0;
    close(fd[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    if (wait4(pid, &status, 0, &ru) != pid) return 0;
    *peak_kb = ru.ru_maxrss;
    if (WIFSIGNALED(status)) snprintf(msg, cap, "the loader died (signal %d)", WTERMSIG(status));
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_memory_budget(void) {
    printf("loader memory budget\n");
    const double MiB = 1024.0 * 1024.0, base = 48 * MiB;   /* base: the test program itself */
    struct { const char *what; size_t pkl; } files[2];
    /* many overlapping views: 300 full views of one 4 MB storage (1.2 GB of copies) */
    write_overlapping_views(tmp_path("views.pth"), 300, (int64_t)1 << 20);
    /* many tiny opcodes: 5 M one-byte EMPTY_DICTs (a dict object each) */
    write_tiny_opcodes(tmp_path("tiny.pth"), (size_t)5 << 20);
    const char *paths[2] = {tmp_path("views.pth"), tmp_path("tiny.pth")};
    files[0].what = "300 overlapping views of one 4 MB storage"; files[1].what = "5 M one-byte EMPTY_DICT opcodes";
    for (int k = 0; k < 2; k++) {
        size_t len = 0;
        uint8_t *b = read_file(paths[k], &len);
        free(b);
        files[k].pkl = len;   /* the pickle is at most the whole file */
        /* the file buffer + the pickle VM's budget + the tensor copies' budget + the program */
        double bound = (double)len + (PICKLE_MEM_PER_BYTE * (double)files[k].pkl + LOAD_MEM_SLACK) +
                       (PTH_COPY_PER_BYTE * (double)len + LOAD_MEM_SLACK) + base;
        long peak_kb = 0;
        char msg[600];
        int rejected = rejected_in_child(paths[k], &peak_kb, msg, sizeof msg);
        check(rejected, "%s (%.1f MB file): rejected naming memory: %s", files[k].what, len / 1e6, msg);
#ifdef UNDER_ASAN
        skip("%s: peak RSS %.0f MiB not compared with the bound %.0f MiB under AddressSanitizer (its shadow memory "
             "and quarantine inflate RSS)", files[k].what, peak_kb * 1024.0 / MiB, bound / MiB);
#else
        check(peak_kb * 1024.0 <= bound, "%s: peak RSS %.0f MiB <= bound %.0f MiB (file + budgets + %.0f MiB)",
              files[k].what, peak_kb * 1024.0 / MiB, bound / MiB, base / MiB);
#endif
    }
}

static void test_issue11_regressions(void) {
    printf("issue 11 regressions\n");
    PthDict d;
    /* 1. a legacy storage key declared twice, the second time with more elements:
     * the 1-element top-level tensor "x" at offset 99 lies far past the 4 stored bytes */
    write_legacy_twice(tmp_path("twice.pth"), 1, 100, 99);
    expect_read_fails(tmp_path("twice.pth"), "legacy file declaring storage '0' with 1 and then 100 elements", "'0'");
    /* declaring it twice with the same size (two views of one storage) stays fine */
    write_legacy_twice(tmp_path("twice.pth"), 4, 4, 3);
    int rc = pth_read(tmp_path("twice.pth"), &d);
    check(rc == 0 && pth_scalar(&d, "x") == 4.5 && pth_scalar(&d, "a") == 1.5,
          "legacy file with two same-size declarations of one storage loads (a=%g x=%g) %s",
          rc ? 0.0 : pth_scalar(&d, "a"), rc ? 0.0 : pth_scalar(&d, "x"), rc ? dkd_errbuf : "");
    if (rc == 0) pth_dict_free(&d);

    /* 3a. a directory given as a checkpoint */
    dkd_errbuf[0] = 0;
    rc = pth_read(tmpdir, &d);
    check(rc == -1 && strstr(dkd_errbuf, "is a directory") && !strstr(dkd_errbuf, "memory"),
          "a directory as checkpoint: %s", rc ? dkd_errbuf : "ACCEPTED");
    if (rc == 0) pth_dict_free(&d);

    /* 3b. storage keys of any length: a 400-character key must not match the
     * entry named after its first 294 characters */
    char key[401], decoy[320], right[420];
    for (int k = 0; k < 400; k++) key[k] = (char)('a' + k % 26);
    key[400] = 0;
    snprintf(decoy, sizeof decoy, "archive/data/%.294s", key);
    snprintf(right, sizeof right, "archive/data/%s", key);
    const char *only_decoy[1] = {decoy}, *both[2] = {decoy, right};
    float vals[2] = {-7.0f, 42.0f};
    write_zip_with_key(tmp_path("longkey.pth"), key, only_decoy, vals, 1);
    expect_read_fails(tmp_path("longkey.pth"), "400-character storage key whose 294-character prefix names another entry",
                      "has no zip entry");
    write_zip_with_key(tmp_path("longkey.pth"), key, both, vals, 2);
    rc = pth_read(tmp_path("longkey.pth"), &d);
    const PthTensor *w = rc ? NULL : pth_get(&d, "w");
    check(w && w->numel == 1 && ((float *)w->data)[0] == 42.0f,
          "400-character storage key reads its own entry (%s)", rc ? dkd_errbuf : w ? "read" : "no tensor w");
    if (rc == 0) pth_dict_free(&d);
}

/* Every input a fuzzing run found (tests/fuzz/regressions/TARGET) goes through
 * its target's entry point without crashing (under DKD_ASAN=1 also without a
 * sanitizer report), and either loads or is refused with an error message
 * (1), never refused silently (0). */
static int fuzz_input_survives(const char *path, const uint8_t *b, size_t len, void *target) {
    int loaded;
    dkd_errbuf[0] = 0;
    if (strcmp((const char *)target, "pickle")) {
        PthDict d;
        loaded = pth_read_mem(b, len, path, &d) == 0;
        if (loaded) pth_dict_free(&d);
    } else {
        PyVal *v = pickle_load(b, len, NULL, NULL);
        loaded = v != NULL;
        pickle_free(v);
    }
    printf("    %s: %s\n", path, loaded ? "loads" : dkd_errbuf[0] ? dkd_errbuf : "REFUSED WITHOUT A MESSAGE");
    return loaded || dkd_errbuf[0];
}

/* The past findings of target (*n of them): how many were handled as above. */
static int run_fuzz_regressions(const char *target, int *n) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/fuzz/regressions/%s", target);
    int good = each_file(dir, fuzz_input_survives, (void *)target, n);
    if (good < 0) *n = 0;
    return good;
}

/* The committed fuzzing seeds (tests/fuzz/corpus, made by tests/fuzz/mkseeds.c)
 * are valid files of their kind: a seed that no longer loads would leave its
 * fuzz target exploring only error paths. ctx: 1 for the pickle target. */
static int seed_loads(const char *path, const uint8_t *b, size_t len, void *is_pickle) {
    if (!*(int *)is_pickle) {
        PthDict d;
        if (pth_read_mem(b, len, path, &d) != 0) { printf("    %s: %s\n", path, dkd_errbuf); return 0; }
        int ok = d.n > 0;
        pth_dict_free(&d);
        return ok;
    }
    PyVal *v = pickle_load(b, len, NULL, NULL);
    if (!v) { printf("    %s: %s\n", path, dkd_errbuf); return 0; }
    int ok = v->kind == PV_DICT;
    pickle_free(v);
    return ok;
}

static void test_fuzz_seeds(void) {
    printf("fuzzing seeds\n");
    const char *targets[3] = {"zip", "legacy", "pickle"};
    for (int k = 0; k < 3; k++) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", targets[k]);
        int is_pickle = k == 2, n, good = each_file(dir, seed_loads, &is_pickle, &n);
        if (good < 0) { skip("%s not found (run from the repository root)", dir); continue; }
        check(n > 0 && good == n, "%s seeds: %d of %d load (with tensors / as a dict)", targets[k], good, n);
        int r, handled = run_fuzz_regressions(targets[k], &r);
        if (r) check(handled == r, "%s: %d of %d past fuzzing finding(s) load or are refused with a message, no crash",
                     targets[k], handled, r);
    }
}

int main(void) {
    test_tmpdir(tmpdir, sizeof tmpdir, "test_pth");
    test_pickle_vm();
    test_fixtures();
    test_round_trip();
    test_bad_files();
    test_net_load();
    test_real_models();
    test_issue11_regressions();
    test_memory_budget();
    test_fuzz_seeds();
    /* clean up */
    const char *names[] = {"cut.pth", "empty.pth", "junk.pth", "evil.pth", "small.pth", "cutpkl.pth", "ok.pth",
                           "nost.pth", "short.pth", "t.pth", "rt.pth", "net.pth",
                           "twice.pth", "longkey.pth", "views.pth", "tiny.pth"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    check(rmdir(tmpdir) == 0, "temporary directory %s removed", tmpdir);
    return test_summary();
}
