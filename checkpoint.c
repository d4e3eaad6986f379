/* checkpoint.c — a Net's weights <-> a state_dict (the tensors pth.c reads and writes).
 *
 * Loading is strict, like load_state_dict(strict=True): every key of the model
 * with its exact shape, no extra keys; the only tolerance is a missing
 * num_batches_tracked (then 0), and float64/float16 weights are converted to
 * float32. Keys may carry the prefixes of a DataParallel model ("module.") or
 * of a full mdistiller distiller checkpoint ("module.student.", then only
 * those keys count). Nothing is copied unless everything fits: a failed load
 * leaves the net untouched.
 *
 * Saving writes {"model": state_dict} from the net's host copies, the layout
 * of mdistiller's student_* files.
 */
#include "dkd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int dtype_is_int(int dt) { return dt == DT_I64 || dt == DT_I32 || dt == DT_I16 || dt == DT_I8 || dt == DT_U8 || dt == DT_BOOL; }

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
                snprintf(msg, sizeof msg, "key %s has dtype %s, model expects %s", pi->name, pth_dtype_name(t->dtype),
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
        int is = pth_dtype_size(t->dtype);
        if (pi->kind == PK_NBT && t->dtype == DT_I64) memcpy(dst, t->data, sizeof(int64_t));
        else if (pi->kind == PK_NBT) *(int64_t *)dst = (int64_t)pth_elem_to_double(t->data, t->dtype);
        else if (t->dtype == DT_F32) memcpy(dst, t->data, pi->numel * sizeof(float));
        else for (size_t e = 0; e < pi->numel; e++) ((float *)dst)[e] = (float)pth_elem_to_double((const uint8_t *)t->data + e * (size_t)is, t->dtype);
    }
    free(tensor_of);
    net_weights_changed(n);   /* a folded eval copy of the old weights is stale now */
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
