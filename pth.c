/* pth.c — PyTorch checkpoints (.pth) in and out, and Net <-> state_dict.
 *
 * A .pth file is a pickle of a Python object (here a dict of tensors, ints
 * and floats) whose tensors point at "storages" (flat arrays of raw bytes)
 * kept outside the pickle (SPEC §6):
 *
 *   zip format (torch >= 1.6)       a ZIP archive of STORED entries
 *       <stem>/data.pkl             the pickle
 *       <stem>/data/<key>           one storage: numel * itemsize raw little-endian bytes
 *       <stem>/version              "3\n" (and <stem>/byteorder "little" in newer torch)
 *   legacy format (torch < 1.6)     five pickles in a row, then the storages:
 *       magic number, protocol version 1001, sys_info dict, the object,
 *       the list of storage keys, then per key: int64 element count + raw bytes
 *
 * Inside the pickle a tensor is _rebuild_tensor_v2(storage, offset, size,
 * stride, ...), where the storage comes from a persistent id
 * ('storage', torch.FloatStorage, key, location, numel). pickle.c turns the
 * pickle into values; this file finds the storage bytes for each key and copies
 * every tensor into a fresh contiguous array (element (i0..ik) of a tensor is
 * storage element offset + sum_d i_d*stride_d).
 *
 * Writing (SPEC §6.6): a hand-assembled protocol-2 pickle (no memo, no Python)
 * of {key: int | float | OrderedDict(name: tensor)}, packed into a ZIP with
 * correct CRC-32s and 64-byte aligned entry data, as torch.save lays it out.
 *
 * Loading into a Net is strict, like load_state_dict(strict=True): every key of
 * the model with its exact shape, no extra keys; the only tolerance is a
 * missing num_batches_tracked (then 0), and float64/float16 weights are
 * converted to float32.
 */
#include "dkd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Small helpers                                                              */
/* ------------------------------------------------------------------------- */
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

static int dtype_size(int dt) {
    switch (dt) {
    case DT_F32: case DT_I32: return 4;
    case DT_F64: case DT_I64: return 8;
    case DT_F16: case DT_I16: case DT_BF16: return 2;
    case DT_U8: case DT_BOOL: case DT_I8: return 1;
    default: return 0;
    }
}
static const char *dtype_name(int dt) {
    switch (dt) {
    case DT_F32: return "float32"; case DT_F64: return "float64"; case DT_I64: return "int64";
    case DT_I32: return "int32"; case DT_F16: return "float16"; case DT_U8: return "uint8";
    case DT_BOOL: return "bool"; case DT_I8: return "int8"; case DT_I16: return "int16";
    case DT_BF16: return "bfloat16";
    default: return "unknown dtype";
    }
}
static int dtype_is_int(int dt) { return dt == DT_I64 || dt == DT_I32 || dt == DT_I16 || dt == DT_I8 || dt == DT_U8 || dt == DT_BOOL; }

/* IEEE half -> float (exact) */
static float half_to_float(uint16_t h) {
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 0x3ff, bits;
    if (e == 31) bits = s | 0x7f800000u | (m << 13);          /* inf / nan */
    else if (e) bits = s | ((e + 112) << 23) | (m << 13);       /* normal */
    else if (!m) bits = s;                                      /* zero */
    else {                                                      /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400)) { m <<= 1; e--; }
        bits = s | (e << 23) | ((m & 0x3ff) << 13);
    }
    float f; memcpy(&f, &bits, 4);
    return f;
}

/* One element of any dtype as double. */
static double elem_to_double(const void *p, int dt) {
    switch (dt) {
    case DT_F32: { float x; memcpy(&x, p, 4); return x; }
    case DT_F64: { double x; memcpy(&x, p, 8); return x; }
    case DT_I64: { int64_t x; memcpy(&x, p, 8); return (double)x; }
    case DT_I32: { int32_t x; memcpy(&x, p, 4); return x; }
    case DT_I16: { int16_t x; memcpy(&x, p, 2); return x; }
    case DT_F16: { uint16_t x; memcpy(&x, p, 2); return half_to_float(x); }
    case DT_I8: return *(const int8_t *)p;
    case DT_U8: case DT_BOOL: return *(const uint8_t *)p;
    default: return NAN;
    }
}

/* Prefix the current error message with the file name. */
static int fail_in(const char *path) {
    char tmp[sizeof dkd_errbuf];
    memcpy(tmp, dkd_errbuf, sizeof tmp);
    tmp[sizeof tmp - 1] = 0;
    return dkd_fail("%s: %s", path, tmp);
}

/* CRC-32 (ZIP / IEEE 802.3, reflected polynomial 0xEDB88320). */
static uint32_t crc32_of(const void *data, size_t n) {
    uint32_t table[256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[i] = c;
    }
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ------------------------------------------------------------------------- */
/* Reading a ZIP archive (only what torch.save writes: STORED entries)        */
/* ------------------------------------------------------------------------- */
typedef struct {
    const char *name; size_t name_len;   /* points into the file buffer */
    int method;                          /* 0 = stored */
    uint32_t crc;
    uint64_t size, csize;                /* uncompressed / compressed bytes */
    const uint8_t *data;                 /* the entry's bytes in the file buffer */
    int checked;                         /* CRC verified */
} ZipEntry;

typedef struct {
    const char *path;
    ZipEntry *e; int n;
} Zip;

/* Parse the central directory of buf[0..len). Sizes and offsets come from the
 * central directory (torch's local headers may carry zeros, flag bit 3), the
 * data start from each local header's own name/extra lengths (SPEC §6.2). */
static int zip_open(Zip *z, const uint8_t *buf, size_t len, const char *path) {
    memset(z, 0, sizeof *z);
    z->path = path;
    /* 1. the end-of-central-directory record: the last "PK\5\6" in the final 64 KiB */
    if (len < 22) return dkd_fail("%s: truncated zip file (%zu bytes)", path, len);
    size_t lo = len - 22 > 65535 ? len - 22 - 65535 : 0, eocd = (size_t)-1;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (get32(buf + p) == 0x06054b50u && p + 22 + get16(buf + p + 20) <= len) { eocd = p; break; }
    if (eocd == (size_t)-1)
        return dkd_fail("%s: truncated or damaged zip file: no end-of-central-directory record", path);
    uint64_t n_entries = get16(buf + eocd + 10), cd_size = get32(buf + eocd + 12), cd_off = get32(buf + eocd + 16);
    if (n_entries == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
        /* ZIP64: the locator sits just before the classic record */
        if (eocd < 20 || get32(buf + eocd - 20) != 0x07064b50u)
            return dkd_fail("%s: damaged zip file: ZIP64 locator missing", path);
        uint64_t z64 = get64(buf + eocd - 20 + 8);
        if (z64 > len || len - z64 < 56 || get32(buf + z64) != 0x06064b50u)
            return dkd_fail("%s: damaged zip file: bad ZIP64 end-of-central-directory record", path);
        n_entries = get64(buf + z64 + 32); cd_size = get64(buf + z64 + 40); cd_off = get64(buf + z64 + 48);
    }
    if (cd_off > len || cd_size > len - cd_off)
        return dkd_fail("%s: truncated zip file: the central directory (offset %llu, %llu bytes) lies past the end (%zu bytes)",
                        path, (unsigned long long)cd_off, (unsigned long long)cd_size, len);
    if (n_entries > cd_size / 46) return dkd_fail("%s: damaged zip file: %llu entries cannot fit the central directory", path, (unsigned long long)n_entries);
    z->e = (ZipEntry *)xcalloc(n_entries ? n_entries : 1, sizeof(ZipEntry));
    /* 2. the central directory entries */
    const uint8_t *cd = buf + cd_off;
    size_t pos = 0;
    for (uint64_t k = 0; k < n_entries; k++) {
        if (cd_size - pos < 46 || get32(cd + pos) != 0x02014b50u)
            return dkd_fail("%s: damaged zip file: bad central directory entry %llu", path, (unsigned long long)k);
        const uint8_t *h = cd + pos;
        size_t nl = get16(h + 28), xl = get16(h + 30), cl = get16(h + 32);
        if (cd_size - pos - 46 < nl + xl + cl)
            return dkd_fail("%s: damaged zip file: central directory entry %llu overruns", path, (unsigned long long)k);
        ZipEntry *e = &z->e[z->n];
        e->name = (const char *)h + 46; e->name_len = nl;
        e->method = (int)get16(h + 10);
        e->crc = get32(h + 16);
        e->csize = get32(h + 20); e->size = get32(h + 24);
        uint64_t loc = get32(h + 42);
        /* ZIP64 extra field (id 1): the 64-bit values of the fields that hold 0xFFFFFFFF, in order */
        const uint8_t *x = h + 46 + nl, *xe = x + xl;
        while (xe - x >= 4) {
            uint32_t id = get16(x), sz = get16(x + 2);
            if ((size_t)(xe - x - 4) < sz) break;
            if (id == 1) {
                const uint8_t *q = x + 4, *qe = q + sz;
                if (e->size == 0xFFFFFFFFu && qe - q >= 8) { e->size = get64(q); q += 8; }
                if (e->csize == 0xFFFFFFFFu && qe - q >= 8) { e->csize = get64(q); q += 8; }
                if (loc == 0xFFFFFFFFu && qe - q >= 8) { loc = get64(q); q += 8; }
            }
            x += 4 + sz;
        }
        pos += 46 + nl + xl + cl;
        /* the local header: its own name/extra lengths give the data start */
        if (loc > len || len - loc < 30 || get32(buf + loc) != 0x04034b50u)
            return dkd_fail("%s: damaged zip file: bad local header for entry '%.*s'", path, (int)nl, e->name);
        uint64_t start = loc + 30 + get16(buf + loc + 26) + get16(buf + loc + 28);
        if (start > len || e->csize > len - start)
            return dkd_fail("%s: truncated zip file: entry '%.*s' (%llu bytes) runs past the end of the file",
                            path, (int)nl, e->name, (unsigned long long)e->csize);
        e->data = buf + start;
        z->n++;
    }
    return 0;
}

/* The entry named prefix + rest, or NULL. */
static ZipEntry *zip_find(Zip *z, const char *prefix, size_t plen, const char *rest) {
    size_t rl = strlen(rest);
    for (int k = 0; k < z->n; k++) {
        ZipEntry *e = &z->e[k];
        if (e->name_len == plen + rl && !memcmp(e->name, prefix, plen) && !memcmp(e->name + plen, rest, rl)) return e;
    }
    return NULL;
}

/* Check that an entry is usable: stored (not compressed) and its CRC-32 matches.
 * The message does not name the file: the caller adds it. */
static int zip_check(Zip *z, ZipEntry *e) {
    if (e->checked) return 0;
    if (e->method != 0 || e->csize != e->size)
        return dkd_fail("zip entry '%.*s' is compressed (method %d): only uncompressed (stored) entries, "
                        "as torch.save writes them, are supported (was the file re-zipped?)",
                        (int)e->name_len, e->name, e->method);
    if (crc32_of(e->data, e->size) != e->crc)
        return dkd_fail("zip entry '%.*s' fails its CRC-32 check: the file is damaged", (int)e->name_len, e->name);
    e->checked = 1;
    return 0;
}

/* on_storage hook for the zip format: bind <prefix>data/<key> */
typedef struct { Zip *z; const char *prefix; size_t plen; } ZipCtx;
static int zip_bind_storage(void *ctx, PyVal *st) {
    ZipCtx *c = (ZipCtx *)ctx;
    char rest[300];
    snprintf(rest, sizeof rest, "data/%s", st->s);
    ZipEntry *e = zip_find(c->z, c->prefix, c->plen, rest);
    if (!e) return dkd_fail("storage '%s' has no zip entry '%.*s%s'", st->s, (int)c->plen, c->prefix, rest);
    if (zip_check(c->z, e)) return -1;
    uint64_t need = (uint64_t)st->numel * (uint64_t)st->itemsize;
    if (e->size < need)
        return dkd_fail("storage '%s' holds %llu bytes, but %lld %s elements need %llu",
                        st->s, (unsigned long long)e->size, (long long)st->numel,
                        dtype_name(st->dtype), (unsigned long long)need);
    st->data = e->data; st->nbytes = (size_t)e->size;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* From unpickled values to a PthDict                                          */
/* ------------------------------------------------------------------------- */
/* Append a contiguous copy of tensor t named name. swap: storage is big-endian. */
static int add_tensor(PthDict *d, const char *name, const PyVal *t, int swap, const char *path) {
    const PyVal *st = t->storage;
    int is = st->itemsize, dt = st->dtype;
    if (!is) return dkd_fail("%s: tensor '%s' has an unsupported dtype", path, name);
    if (t->numel > (st->numel > 0 ? st->numel : 0))
        return dkd_fail("%s: tensor '%s' has more elements (%lld) than its storage '%s' (%lld): expanded views are not supported",
                        path, name, (long long)t->numel, st->s, (long long)st->numel);
    if (t->numel > 0) {   /* the last element must lie inside the bound bytes */
        int64_t last = t->offset;
        for (int k = 0; k < t->ndim; k++) last += (t->shape[k] - 1) * t->stride[k];
        if (!st->data || (uint64_t)(last + 1) * (uint64_t)is > st->nbytes)
            return dkd_fail("%s: tensor '%s' reaches past the bytes of its storage '%s'", path, name, st->s);
    }
    size_t n = (size_t)t->numel;
    uint8_t *out = (uint8_t *)xmalloc(n * (size_t)is);
    /* copy in row-major order: an odometer over the indices, with the storage
     * position advanced by the strides */
    int contiguous = 1;
    int64_t expect = 1;
    for (int k = t->ndim - 1; k >= 0; k--) {
        if (t->shape[k] != 1 && t->stride[k] != expect) contiguous = 0;
        expect *= t->shape[k];
    }
    if (contiguous) {
        if (n) memcpy(out, st->data + (size_t)t->offset * (size_t)is, n * (size_t)is);
    } else {
        int64_t idx[8] = {0}, src = t->offset;
        for (size_t e = 0; e < n; e++) {
            memcpy(out + e * (size_t)is, st->data + (size_t)src * (size_t)is, (size_t)is);
            for (int k = t->ndim - 1; k >= 0; k--) {   /* next index */
                if (++idx[k] < t->shape[k]) { src += t->stride[k]; break; }
                src -= (idx[k] - 1) * t->stride[k];
                idx[k] = 0;
            }
        }
    }
    if (swap && is > 1)
        for (size_t e = 0; e < n; e++)
            for (int a = 0, b = is - 1; a < b; a++, b--) {
                uint8_t tmp = out[e * is + a]; out[e * is + a] = out[e * is + b]; out[e * is + b] = tmp;
            }
    if (dt == DT_BF16) {   /* bfloat16 is the top half of a float32 */
        uint8_t *f = (uint8_t *)xmalloc(n * 4);
        for (size_t e = 0; e < n; e++) {
            uint32_t bits = (uint32_t)get16(out + 2 * e) << 16;
            memcpy(f + 4 * e, &bits, 4);
        }
        free(out);
        out = f; dt = DT_F32;
    }
    PthTensor *pt = &d->t[d->n++];
    size_t nl = strlen(name);
    pt->name = (char *)xmalloc(nl + 1);
    memcpy(pt->name, name, nl + 1);
    pt->dtype = dt;
    pt->ndim = t->ndim;
    for (int k = 0; k < 8; k++) pt->shape[k] = k < t->ndim ? t->shape[k] : 0;
    pt->numel = n;
    pt->data = out;
    return 0;
}

static void add_scalar(PthDict *d, const char *name, double v) {
    size_t nl = strlen(name);
    d->skeys[d->ns] = (char *)xmalloc(nl + 1);
    memcpy(d->skeys[d->ns], name, nl + 1);
    d->svals[d->ns++] = v;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp((*(const PthTensor *const *)a)->name, (*(const PthTensor *const *)b)->name);
}

/* root: the unpickled top-level object. Tensors of root["model"] if that is a
 * dict, else the tensors of root; numeric scalars of root (and its 1-element
 * tensors when "model" holds the weights) go to skeys/svals. */
static int collect(PthDict *d, const PyVal *root, int swap, const char *path) {
    if (root->kind != PV_DICT)
        return dkd_fail("%s: the checkpoint holds a %s, expected a dict (of tensors, or with a \"model\" state_dict)", path, py_kind_name(root->kind));
    const PyVal *model = py_dict_get(root, "model");
    const PyVal *src = (model && model->kind == PV_DICT) ? model : root;
    size_t n_src = py_len(src), n_root = py_len(root);
    d->t = (PthTensor *)xcalloc(n_src ? n_src : 1, sizeof(PthTensor));
    d->skeys = (char **)xcalloc(n_root ? n_root : 1, sizeof(char *));
    d->svals = (double *)xcalloc(n_root ? n_root : 1, sizeof(double));
    for (size_t k = 0; k < n_src; k++) {
        const PyVal *key = src->items[2 * k], *val = src->items[2 * k + 1];
        if (key->kind != PV_STR || val->kind != PV_TENSOR) continue;
        if (add_tensor(d, key->s, val, swap, path)) return -1;
    }
    for (size_t k = 0; k < n_root; k++) {
        const PyVal *key = root->items[2 * k], *val = root->items[2 * k + 1];
        double x;
        if (key->kind != PV_STR) continue;
        if (val->kind != PV_TENSOR && py_float(val, &x) == 0) add_scalar(d, key->s, x);
        else if (src != root && val->kind == PV_TENSOR && val->numel == 1 && val->storage->data && val->dtype != DT_BF16) {
            const uint8_t *p = val->storage->data + (size_t)val->offset * (size_t)val->itemsize;
            uint8_t tmp[8];
            memcpy(tmp, p, (size_t)val->itemsize);
            if (swap) for (int a = 0, b = val->itemsize - 1; a < b; a++, b--) { uint8_t c = tmp[a]; tmp[a] = tmp[b]; tmp[b] = c; }
            add_scalar(d, key->s, elem_to_double(tmp, val->dtype));
        }
    }
    /* duplicate names would make pth_get ambiguous */
    if (d->n > 1) {
        PthTensor **s = (PthTensor **)xmalloc((size_t)d->n * sizeof(PthTensor *));
        for (int k = 0; k < d->n; k++) s[k] = &d->t[k];
        qsort(s, (size_t)d->n, sizeof *s, cmp_names);
        for (int k = 1; k < d->n; k++)
            if (!strcmp(s[k]->name, s[k - 1]->name)) {
                int r = dkd_fail("%s: the state_dict has the key '%s' twice", path, s[k]->name);
                free(s); return r;
            }
        free(s);
    }
    return 0;
}

static int read_zip(const uint8_t *buf, size_t len, const char *path, PthDict *d) {
    Zip z;
    int rc = -1;
    PyVal *root = NULL;
    if (zip_open(&z, buf, len, path)) goto done;
    /* the pickle: the entry named "<prefix>data.pkl" (any prefix) */
    ZipEntry *pkl = NULL;
    for (int k = 0; k < z.n; k++) {
        ZipEntry *e = &z.e[k];
        if (e->name_len >= 9 && !memcmp(e->name + e->name_len - 9, "/data.pkl", 9)) { pkl = e; break; }
        if (e->name_len == 8 && !memcmp(e->name, "data.pkl", 8)) { pkl = e; break; }
    }
    if (!pkl) { dkd_fail("%s: a zip file, but not a PyTorch checkpoint: no '*/data.pkl' entry", path); goto done; }
    if (zip_check(&z, pkl)) { fail_in(path); goto done; }
    ZipCtx ctx = {&z, pkl->name, pkl->name_len - 8};
    /* newer torch says the byte order of the storages; absent = little */
    int swap = 0;
    ZipEntry *bo = zip_find(&z, ctx.prefix, ctx.plen, "byteorder");
    if (bo && bo->method == 0 && bo->size == 3 && !memcmp(bo->data, "big", 3)) swap = 1;
    PickleHooks hooks = {PICKLE_ALLOW_TORCH, zip_bind_storage, &ctx};
    root = pickle_load(pkl->data, (size_t)pkl->size, &hooks, NULL);
    if (!root) { fail_in(path); goto done; }
    rc = collect(d, root, swap, path);
done:
    pickle_free(root);
    free(z.e);
    return rc;
}

/* on_storage hook for the legacy format: remember every storage; bytes come later */
typedef struct { PyVal **st; int n, cap; } StorageList;
static int legacy_note_storage(void *ctx, PyVal *st) {
    StorageList *l = (StorageList *)ctx;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->st = (PyVal **)xrealloc(l->st, (size_t)l->cap * sizeof(PyVal *));
    }
    l->st[l->n++] = st;
    return 0;
}

static int read_legacy(const uint8_t *buf, size_t len, const char *path, PthDict *d) {
    static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
    PyVal *v[5] = {NULL, NULL, NULL, NULL, NULL};
    StorageList sl = {NULL, 0, 0};
    PickleHooks plain = {PICKLE_ALLOW_TORCH, NULL, NULL};
    PickleHooks note = {PICKLE_ALLOW_TORCH, legacy_note_storage, &sl};
    size_t off = 0, used;
    int rc = -1, swap = 0;
    /* 1-5: magic, protocol version, sys_info, the object, the storage keys */
    for (int k = 0; k < 5; k++) {
        v[k] = pickle_load(buf + off, len - off, k == 3 ? &note : &plain, &used);
        if (!v[k]) {
            if (k == 0) dkd_fail("%s: not a PyTorch checkpoint (neither a zip file nor a legacy pickle stream)", path);
            else fail_in(path);
            goto done;
        }
        off += used;
        if (k == 0 && !(v[0]->kind == PV_INT && v[0]->big && v[0]->len == 10 && !memcmp(v[0]->b, magic, 10))) {
            dkd_fail("%s: not a PyTorch checkpoint (a pickle, but without torch's magic number)", path); goto done;
        }
        if (k == 1 && !(v[1]->kind == PV_INT && v[1]->i == 1001)) {
            dkd_fail("%s: unsupported legacy protocol version (expected 1001)", path); goto done;
        }
        if (k == 2) {
            const PyVal *le = py_dict_get(v[2], "little_endian");
            if (le && le->kind == PV_BOOL && !le->i) swap = 1;
        }
    }
    if (v[4]->kind != PV_LIST) { dkd_fail("%s: the storage key list is a %s, not a list", path, py_kind_name(v[4]->kind)); goto done; }
    /* 6: per key, an int64 element count and the raw bytes */
    for (size_t k = 0; k < v[4]->n; k++) {
        const PyVal *key = v[4]->items[k];
        if (key->kind != PV_STR) { dkd_fail("%s: storage key %zu is not a str", path, k); goto done; }
        PyVal *first = NULL;
        for (int s = 0; s < sl.n; s++) if (!strcmp(sl.st[s]->s, key->s)) { first = sl.st[s]; break; }
        if (!first) { dkd_fail("%s: storage '%s' is listed but never used (cannot tell its dtype)", path, key->s); goto done; }
        if (len - off < 8) { dkd_fail("%s: truncated: storage '%s' (%zu of %zu) is missing", path, key->s, k + 1, v[4]->n); goto done; }
        uint64_t count = get64(buf + off);
        off += 8;
        if (swap) { count = 0; for (int b = 0; b < 8; b++) count = count << 8 | buf[off - 8 + b]; }
        if (count != (uint64_t)first->numel) {
            dkd_fail("%s: storage '%s' has %llu elements in the file, the pickle says %lld", path, key->s,
                     (unsigned long long)count, (long long)first->numel);
            goto done;
        }
        uint64_t nbytes = count * (uint64_t)first->itemsize;
        if (nbytes > len - off) {
            dkd_fail("%s: truncated: storage '%s' needs %llu bytes, only %zu left", path, key->s, (unsigned long long)nbytes, len - off);
            goto done;
        }
        for (int s = 0; s < sl.n; s++)
            if (!strcmp(sl.st[s]->s, key->s)) { sl.st[s]->data = buf + off; sl.st[s]->nbytes = (size_t)nbytes; }
        off += (size_t)nbytes;
    }
    for (int s = 0; s < sl.n; s++)
        if (!sl.st[s]->data && sl.st[s]->numel > 0) { dkd_fail("%s: storage '%s' is not in the key list", path, sl.st[s]->s); goto done; }
    rc = collect(d, v[3], swap, path);
done:
    for (int k = 0; k < 5; k++) pickle_free(v[k]);
    free(sl.st);
    return rc;
}

int pth_read(const char *path, PthDict *out) {
    memset(out, 0, sizeof *out);
    size_t len;
    uint8_t *buf = read_file(path, &len);
    if (!buf) return -1;
    int rc;
    if (len == 0) rc = dkd_fail("%s: the file is empty", path);
    else if (len >= 4 && !memcmp(buf, "PK\3\4", 4)) rc = read_zip(buf, len, path, out);
    else rc = read_legacy(buf, len, path, out);
    free(buf);
    if (rc) pth_dict_free(out);
    return rc;
}

void pth_dict_free(PthDict *d) {
    if (!d) return;
    for (int k = 0; k < d->n; k++) { free(d->t[k].name); free(d->t[k].data); }
    for (int k = 0; k < d->ns; k++) free(d->skeys[k]);
    free(d->t); free(d->skeys); free(d->svals);
    memset(d, 0, sizeof *d);
}

const PthTensor *pth_get(const PthDict *d, const char *name) {
    for (int k = 0; k < d->n; k++)
        if (!strcmp(d->t[k].name, name)) return &d->t[k];
    return NULL;
}

/* A 1-element tensor named name, else a top-level scalar, as double; NAN if neither. */
double pth_scalar(const PthDict *d, const char *name) {
    const PthTensor *t = pth_get(d, name);
    if (t && t->numel == 1) return elem_to_double(t->data, t->dtype);
    for (int k = 0; k < d->ns; k++)
        if (!strcmp(d->skeys[k], name)) return d->svals[k];
    return NAN;
}

/* ------------------------------------------------------------------------- */
/* Writing                                                                    */
/* ------------------------------------------------------------------------- */
typedef struct { uint8_t *p; size_t n, cap; } Buf;

static void put(Buf *b, const void *src, size_t n) {
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n) cap *= 2;
        b->p = (uint8_t *)xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put_u8(Buf *b, unsigned x) { uint8_t c = (uint8_t)x; put(b, &c, 1); }
static void put_le(Buf *b, uint64_t x, int bytes) {
    uint8_t t[8];
    for (int k = 0; k < bytes; k++) t[k] = (uint8_t)(x >> (8 * k));
    put(b, t, (size_t)bytes);
}
/* pickle pieces (protocol 2) */
static void pk_str(Buf *b, const char *s) {            /* BINUNICODE */
    size_t n = strlen(s);
    put_u8(b, 'X'); put_le(b, n, 4); put(b, s, n);
}
static void pk_int(Buf *b, int64_t v) {                /* BININT, or LONG1 of 8 bytes */
    if (v >= INT32_MIN && v <= INT32_MAX) { put_u8(b, 'J'); put_le(b, (uint64_t)v, 4); }
    else { put_u8(b, 0x8a); put_u8(b, 8); put_le(b, (uint64_t)v, 8); }
}
static void pk_float(Buf *b, double f) {               /* BINFLOAT, big-endian */
    uint64_t bits; memcpy(&bits, &f, 8);
    put_u8(b, 'G');
    for (int k = 7; k >= 0; k--) put_u8(b, (unsigned)(bits >> (8 * k)) & 0xff);
}
static void pk_global(Buf *b, const char *module, const char *name) {   /* GLOBAL */
    put_u8(b, 'c'); put(b, module, strlen(module)); put_u8(b, '\n'); put(b, name, strlen(name)); put_u8(b, '\n');
}

static const char *storage_class(int dt) {
    switch (dt) {
    case DT_F32: return "FloatStorage"; case DT_F64: return "DoubleStorage"; case DT_I64: return "LongStorage";
    case DT_I32: return "IntStorage"; case DT_F16: return "HalfStorage"; case DT_U8: return "ByteStorage";
    case DT_BOOL: return "BoolStorage"; case DT_I8: return "CharStorage"; case DT_I16: return "ShortStorage";
    default: return NULL;
    }
}

/* the ZIP entries to write */
typedef struct { char name[64]; const void *data; size_t size; uint32_t crc; size_t local_off; } OutEntry;

/* One tensor (torch._utils._rebuild_tensor_v2 of a new storage "<sk>"), its bytes
 * recorded as the next zip entry. */
static void pk_tensor(Buf *pk, const PthTensorRef *t, OutEntry *ent, int *ne, int *sk) {
    int64_t numel = 1, stride[8];
    for (int a = t->ndim - 1; a >= 0; a--) { stride[a] = numel; numel *= t->shape[a]; }
    char key[24];
    snprintf(key, sizeof key, "%d", (*sk)++);
    pk_global(pk, "torch._utils", "_rebuild_tensor_v2");
    put_u8(pk, '(');                                          /* args ( */
    put_u8(pk, '('); pk_str(pk, "storage"); pk_global(pk, "torch", storage_class(t->dtype));
    pk_str(pk, key); pk_str(pk, "cpu"); pk_int(pk, numel);
    put_u8(pk, 't'); put_u8(pk, 'Q');                        /* persistent id -> storage */
    pk_int(pk, 0);                                            /* storage_offset */
    put_u8(pk, '('); for (int a = 0; a < t->ndim; a++) pk_int(pk, t->shape[a]); put_u8(pk, 't');
    put_u8(pk, '('); for (int a = 0; a < t->ndim; a++) pk_int(pk, stride[a]); put_u8(pk, 't');
    put_u8(pk, 0x89);                                         /* requires_grad False */
    pk_global(pk, "collections", "OrderedDict"); put_u8(pk, ')'); put_u8(pk, 'R');   /* backward_hooks */
    put_u8(pk, 't'); put_u8(pk, 'R');                        /* ) -> _rebuild_tensor_v2(*args) */
    snprintf(ent[*ne].name, sizeof ent[*ne].name, "archive/data/%s", key);
    ent[*ne].data = t->data; ent[*ne].size = (size_t)numel * (size_t)dtype_size(t->dtype); (*ne)++;
}

/* torch.optim.SGD.state_dict(): {"state": {i: {"momentum_buffer": t}}, "param_groups": [{...}]} */
static void pk_sgd_state(Buf *pk, const PthItem *it, OutEntry *ent, int *ne, int *sk) {
    const PthSgdGroup *g = it->sgd;
    put_u8(pk, '}'); put_u8(pk, '(');                          /* { */
    pk_str(pk, "state"); put_u8(pk, '}'); put_u8(pk, '(');      /*   "state": { */
    for (int k = 0; k < it->n_tensors; k++) {
        pk_int(pk, k); put_u8(pk, '}');                         /*     k: {"momentum_buffer": t} */
        pk_str(pk, "momentum_buffer"); pk_tensor(pk, &it->tensors[k], ent, ne, sk); put_u8(pk, 's');
    }
    put_u8(pk, 'u');                                           /*   } */
    pk_str(pk, "param_groups"); put_u8(pk, ']');               /*   "param_groups": [ */
    put_u8(pk, '}'); put_u8(pk, '(');                          /*     { */
    pk_str(pk, "lr"); pk_float(pk, g->lr);
    pk_str(pk, "momentum"); pk_float(pk, g->momentum);
    pk_str(pk, "dampening"); pk_float(pk, g->dampening);
    pk_str(pk, "weight_decay"); pk_float(pk, g->weight_decay);
    pk_str(pk, "nesterov"); put_u8(pk, g->nesterov ? 0x88 : 0x89);   /* NEWTRUE / NEWFALSE */
    pk_str(pk, "maximize"); put_u8(pk, 0x89);
    pk_str(pk, "foreach"); put_u8(pk, 'N');                    /* None */
    pk_str(pk, "differentiable"); put_u8(pk, 0x89);
    pk_str(pk, "params"); put_u8(pk, ']'); put_u8(pk, '(');
    for (int k = 0; k < it->n_tensors; k++) pk_int(pk, k);
    put_u8(pk, 'e');                                           /*       [0..n-1] (APPENDS) */
    put_u8(pk, 'u');                                           /*     } */
    put_u8(pk, 'a');                                           /*   ] (APPEND) */
    put_u8(pk, 'u');                                           /* } */
}

int pth_write(const char *path, const PthItem *items, int n_items) {
    /* 1. validate and count the tensors */
    int n_t = 0;
    for (int i = 0; i < n_items; i++) {
        const PthItem *it = &items[i];
        if (!it->key) return dkd_fail("pth_write %s: item %d has no key", path, i);
        if (it->kind == PI_INT || it->kind == PI_FLOAT) continue;
        if (it->kind != PI_STATE_DICT && it->kind != PI_SGD_STATE) return dkd_fail("pth_write %s: item '%s' has unknown kind %d", path, it->key, it->kind);
        if (it->kind == PI_SGD_STATE && !it->sgd) return dkd_fail("pth_write %s: item '%s' has no SGD settings", path, it->key);
        if (it->n_tensors < 0 || (it->n_tensors && !it->tensors)) return dkd_fail("pth_write %s: item '%s' has no tensors", path, it->key);
        for (int k = 0; k < it->n_tensors; k++) {
            const PthTensorRef *t = &it->tensors[k];
            if (!t->name || !storage_class(t->dtype) || t->ndim < 0 || t->ndim > 8 || (t->ndim && !t->shape))
                return dkd_fail("pth_write %s: tensor %d of '%s' has no name, an unknown dtype or a bad ndim", path, k, it->key);
            size_t numel = 1;
            for (int a = 0; a < t->ndim; a++) {
                if (t->shape[a] < 0) return dkd_fail("pth_write %s: tensor '%s' has a negative dimension", path, t->name);
                numel *= (size_t)t->shape[a];
            }
            if (numel && !t->data) return dkd_fail("pth_write %s: tensor '%s' has no data", path, t->name);
            if (numel * (size_t)dtype_size(t->dtype) >= 0xFFFFFFFFu)
                return dkd_fail("pth_write %s: tensor '%s' is larger than 4 GiB (ZIP64 output is not implemented)", path, t->name);
        }
        n_t += it->n_tensors;
    }
    /* 2. the pickle: {key: value, ...} with every tensor's storage named "0", "1", ... */
    Buf pk = {NULL, 0, 0};
    OutEntry *ent = (OutEntry *)xcalloc((size_t)n_t + 3, sizeof(OutEntry));
    int ne = 0, sk = 0;
    ne++;   /* entry 0: data.pkl, filled below */
    snprintf(ent[ne].name, sizeof ent[ne].name, "archive/byteorder");
    ent[ne].data = "little"; ent[ne].size = 6; ne++;
    put_u8(&pk, 0x80); put_u8(&pk, 2);                 /* PROTO 2 */
    put_u8(&pk, '}');                                  /* EMPTY_DICT */
    put_u8(&pk, '(');                                  /* MARK */
    for (int i = 0; i < n_items; i++) {
        const PthItem *it = &items[i];
        pk_str(&pk, it->key);
        if (it->kind == PI_INT) { pk_int(&pk, it->ival); continue; }
        if (it->kind == PI_FLOAT) { pk_float(&pk, it->fval); continue; }
        if (it->kind == PI_SGD_STATE) { pk_sgd_state(&pk, it, ent, &ne, &sk); continue; }
        pk_global(&pk, "collections", "OrderedDict"); put_u8(&pk, ')'); put_u8(&pk, 'R');   /* OrderedDict() */
        put_u8(&pk, '(');
        for (int k = 0; k < it->n_tensors; k++) {
            pk_str(&pk, it->tensors[k].name);
            pk_tensor(&pk, &it->tensors[k], ent, &ne, &sk);
        }
        put_u8(&pk, 'u');                                  /* SETITEMS of the OrderedDict */
    }
    put_u8(&pk, 'u');                                      /* SETITEMS of the top dict */
    put_u8(&pk, '.');                                      /* STOP */
    snprintf(ent[0].name, sizeof ent[0].name, "archive/data.pkl");
    ent[0].data = pk.p; ent[0].size = pk.n;
    snprintf(ent[ne].name, sizeof ent[ne].name, "archive/version");
    ent[ne].data = "3\n"; ent[ne].size = 2; ne++;

    /* 3. the ZIP: local header + 64-byte aligned data per entry, central directory, end record */
    size_t total = 22;
    for (int k = 0; k < ne; k++) total += 30 + 4 + 63 + ent[k].size + 46 + 2 * strlen(ent[k].name);
    if (total >= 0xFFFFFFFFu) { free(pk.p); free(ent); return dkd_fail("pth_write %s: the file would exceed 4 GiB", path); }
    Buf z = {(uint8_t *)xmalloc(total), 0, total};
    for (int k = 0; k < ne; k++) {
        OutEntry *e = &ent[k];
        size_t nl = strlen(e->name);
        e->crc = crc32_of(e->data, e->size);
        e->local_off = z.n;
        size_t pad = (64 - (z.n + 30 + nl + 4) % 64) % 64;    /* extra field "FB" + pad filler bytes */
        put_le(&z, 0x04034b50u, 4);       /* local file header signature */
        put_le(&z, 20, 2);                /* version needed */
        put_le(&z, 0, 2);                 /* flags */
        put_le(&z, 0, 2);                 /* method: stored */
        put_le(&z, 0, 2);                 /* time 00:00 */
        put_le(&z, 0x21, 2);              /* date 1980-01-01 */
        put_le(&z, e->crc, 4);
        put_le(&z, e->size, 4);           /* compressed size */
        put_le(&z, e->size, 4);           /* uncompressed size */
        put_le(&z, nl, 2);
        put_le(&z, 4 + pad, 2);           /* extra length */
        put(&z, e->name, nl);
        put_le(&z, 0x4246, 2);            /* extra field id "FB" (torch's alignment padding) */
        put_le(&z, pad, 2);
        for (size_t p = 0; p < pad; p++) put_u8(&z, 'Z');
        if (e->size) put(&z, e->data, e->size);
    }
    size_t cd_off = z.n;
    for (int k = 0; k < ne; k++) {
        OutEntry *e = &ent[k];
        size_t nl = strlen(e->name);
        put_le(&z, 0x02014b50u, 4);       /* central directory signature */
        put_le(&z, 20, 2);                /* version made by */
        put_le(&z, 20, 2);                /* version needed */
        put_le(&z, 0, 2); put_le(&z, 0, 2);   /* flags, method */
        put_le(&z, 0, 2); put_le(&z, 0x21, 2); /* time, date */
        put_le(&z, e->crc, 4); put_le(&z, e->size, 4); put_le(&z, e->size, 4);
        put_le(&z, nl, 2); put_le(&z, 0, 2); put_le(&z, 0, 2);   /* name, extra, comment lengths */
        put_le(&z, 0, 2); put_le(&z, 0, 2); put_le(&z, 0, 4);    /* disk, internal, external attributes */
        put_le(&z, e->local_off, 4);
        put(&z, e->name, nl);
    }
    size_t cd_size = z.n - cd_off;
    put_le(&z, 0x06054b50u, 4);           /* end of central directory */
    put_le(&z, 0, 2); put_le(&z, 0, 2);   /* disk numbers */
    put_le(&z, (uint64_t)ne, 2); put_le(&z, (uint64_t)ne, 2);
    put_le(&z, cd_size, 4); put_le(&z, cd_off, 4);
    put_le(&z, 0, 2);                     /* comment length */
    int rc = ne > 0xFFFF ? dkd_fail("pth_write %s: more than 65535 zip entries", path)
                         : write_file_atomic(path, z.p, z.n);
    free(z.p); free(pk.p); free(ent);
    return rc;
}

/* ------------------------------------------------------------------------- */
/* Net <-> state_dict                                                         */
/* ------------------------------------------------------------------------- */
static void fmt_shape(char *s, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(s, cap, "[");
    for (int k = 0; k < ndim && n < cap; k++) n += (size_t)snprintf(s + n, cap - n, k ? ",%lld" : "%lld", (long long)shape[k]);
    if (n < cap) snprintf(s + n, cap - n, "]");
}

/* Strict load; what names the source in messages ("checkpoint X" / "state_dict"). */
static int load_dict(Net *n, const PthDict *d, const char *what) {
    /* keys of a full mdistiller distiller checkpoint start with "module.student."
     * (then only those count); a DataParallel model's with "module." */
    int student = 0;
    for (int k = 0; k < d->n; k++) if (!strncmp(d->t[k].name, "module.student.", 15)) { student = 1; break; }
    int *tensor_of = (int *)xmalloc((size_t)(n->n_pinfo ? n->n_pinfo : 1) * sizeof(int));
    for (int j = 0; j < n->n_pinfo; j++) tensor_of[j] = -1;
    char first[600] = "", shp[2][160];
    int problems = 0;
    /* 1. map every checkpoint key to a model entry */
    const char *unexpected = NULL;
    int n_unexpected = 0;
    for (int k = 0; k < d->n; k++) {
        const char *key = d->t[k].name;
        if (student) { if (strncmp(key, "module.student.", 15)) continue; key += 15; }
        else if (!strncmp(key, "module.", 7)) key += 7;
        const ParamInfo *pi = net_find(n, key);
        if (!pi) { if (!unexpected) unexpected = key; n_unexpected++; continue; }
        int j = (int)(pi - n->pinfo);
        if (tensor_of[j] >= 0) {
            free(tensor_of);
            return dkd_fail("%s does not fit model %s: key %s appears twice (with and without a 'module.' prefix?)", what, n->model, key);
        }
        tensor_of[j] = k;
    }
    /* 2. every model entry present, with the right shape and a usable dtype */
    for (int j = 0; j < n->n_pinfo; j++) {
        const ParamInfo *pi = &n->pinfo[j];
        char msg[600] = "";
        if (tensor_of[j] < 0) {
            if (pi->kind != PK_NBT) snprintf(msg, sizeof msg, "missing key %s", pi->name);
        } else {
            const PthTensor *t = &d->t[tensor_of[j]];
            int same = t->ndim == pi->ndim;
            int64_t want[4];
            for (int a = 0; a < pi->ndim; a++) { want[a] = pi->shape[a]; if (same && t->shape[a] != want[a]) same = 0; }
            if (!same) {
                fmt_shape(shp[0], sizeof shp[0], t->ndim, t->shape);
                fmt_shape(shp[1], sizeof shp[1], pi->ndim, want);
                snprintf(msg, sizeof msg, "key %s has shape %s, model expects %s", pi->name, shp[0], shp[1]);
            } else if (pi->kind == PK_NBT ? !dtype_is_int(t->dtype)
                                          : !(t->dtype == DT_F32 || t->dtype == DT_F64 || t->dtype == DT_F16)) {
                snprintf(msg, sizeof msg, "key %s has dtype %s, model expects %s", pi->name, dtype_name(t->dtype),
                         pi->kind == PK_NBT ? "an integer" : "float32 (or float64/float16)");
            }
        }
        if (msg[0]) { if (!problems) snprintf(first, sizeof first, "%s", msg); problems++; }
    }
    if (unexpected) {
        if (!problems) snprintf(first, sizeof first, "unexpected key %s (is this a checkpoint of another model?)", unexpected);
        problems += n_unexpected;
    }
    if (problems) {
        free(tensor_of);
        if (problems > 1) return dkd_fail("%s does not fit model %s: %s (and %d more mismatches)", what, n->model, first, problems - 1);
        return dkd_fail("%s does not fit model %s: %s", what, n->model, first);
    }
    /* 3. copy (only now: a failed load leaves the net untouched) */
    for (int j = 0; j < n->n_pinfo; j++) {
        const ParamInfo *pi = &n->pinfo[j];
        void *dst = net_host_ptr(n, pi);
        if (tensor_of[j] < 0) { *(int64_t *)dst = 0; continue; }   /* missing num_batches_tracked */
        const PthTensor *t = &d->t[tensor_of[j]];
        int is = dtype_size(t->dtype);
        if (pi->kind == PK_NBT && t->dtype == DT_I64) memcpy(dst, t->data, sizeof(int64_t));
        else if (pi->kind == PK_NBT) *(int64_t *)dst = (int64_t)elem_to_double(t->data, t->dtype);
        else if (t->dtype == DT_F32) memcpy(dst, t->data, pi->numel * sizeof(float));
        else for (size_t e = 0; e < pi->numel; e++) ((float *)dst)[e] = (float)elem_to_double((const uint8_t *)t->data + e * (size_t)is, t->dtype);
    }
    free(tensor_of);
    net_weights_changed(n);
    return 0;
}

int net_load_dict(Net *n, const PthDict *d) { return load_dict(n, d, "state_dict"); }

int net_load_file(Net *n, const char *path) {
    PthDict d;
    if (pth_read(path, &d)) return -1;
    char what[600];
    snprintf(what, sizeof what, "checkpoint %s", path);
    int rc = load_dict(n, &d, what);
    pth_dict_free(&d);
    return rc;
}

/* The refs (and, when shape_store is NULL, their shapes) are one allocation:
 * release with free(refs). Data pointers are n's host copies. */
PthTensorRef *net_state_refs(const Net *n, int64_t *shape_store) {
    size_t np = (size_t)n->n_pinfo;
    size_t bytes = np * sizeof(PthTensorRef) + (shape_store ? 0 : np * 4 * sizeof(int64_t));
    PthTensorRef *r = (PthTensorRef *)xmalloc(bytes ? bytes : 1);
    int64_t *shapes = shape_store ? shape_store : (int64_t *)(r + np);
    for (size_t j = 0; j < np; j++) {
        const ParamInfo *pi = &n->pinfo[j];
        for (int a = 0; a < 4; a++) shapes[4 * j + a] = a < pi->ndim ? pi->shape[a] : 0;
        r[j].name = pi->name;
        r[j].dtype = pi->kind == PK_NBT ? DT_I64 : DT_F32;
        r[j].ndim = pi->ndim;
        r[j].shape = &shapes[4 * j];
        r[j].data = net_host_ptr(n, pi);
    }
    return r;
}

/* {"model": state_dict} from the host copies (call net_to_host first on a GPU). */
int net_save_file(const Net *n, const char *path) {
    PthTensorRef *refs = net_state_refs(n, NULL);
    PthItem item = {"model", PI_STATE_DICT, 0, 0.0, refs, n->n_pinfo, NULL};
    int rc = pth_write(path, &item, 1);
    free(refs);
    return rc;
}
