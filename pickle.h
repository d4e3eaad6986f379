/* pickle.h — the unpickler's values (pickle.c), for the file readers that
 * interpret them (pth.c, cifar.c), their tests and fuzzing targets. The rest of
 * the program sees only what those readers build (PthDict, CifarSplit in dkd.h).
 */
#ifndef DKD_PICKLE_H
#define DKD_PICKLE_H

#include "dkd.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The loaders' memory budget (pickle.c, pth.c): the pickle VM holds at most
 * PICKLE_MEM_PER_BYTE x the pickle's size + LOAD_MEM_SLACK, a checkpoint's
 * tensor copies at most PTH_COPY_PER_BYTE x the file size + LOAD_MEM_SLACK,
 * neither more than LOAD_MEM_CAP; beyond, the load fails with a message. */
#define PICKLE_MEM_PER_BYTE 16
#define PTH_COPY_PER_BYTE 2
#define LOAD_MEM_SLACK ((size_t)64 << 20)
#define LOAD_MEM_CAP ((size_t)8 << 30)

/* ------------------------------------------------------------------------- */
/* pickle VM API (pickle.c): a small, safe unpickler shared by pth.c and      */
/* cifar.c. It only BUILDS DATA: no Python code is ever run. Accepted: the    */
/* opcodes of state_dict and CIFAR-100 pickles and a whitelist of globals    */
/* (OrderedDict, torch tensor rebuild + storage types, numpy _reconstruct/    */
/* ndarray/dtype/scalar, _codecs.encode). Anything else is refused with an    */
/* error naming the opcode or global and its byte offset. Every read is       */
/* bounds-checked.                                                            */
/* ------------------------------------------------------------------------- */
typedef enum {
    PV_NONE, PV_BOOL, PV_INT, PV_FLOAT, PV_STR, PV_BYTES,
    PV_TUPLE, PV_LIST, PV_DICT,
    PV_GLOBAL,    /* a whitelisted class/function reference, s = "module.name" */
    PV_STORAGE,   /* a torch storage named by BINPERSID: dtype, s = key, numel, location */
    PV_TENSOR,    /* torch._utils._rebuild_tensor_v2(...): storage + offset/shape/stride */
    PV_NDARRAY,   /* numpy array: _reconstruct(...) then BUILD(state) */
    PV_DTYPE,     /* numpy dtype(...) (+ BUILD): s = descr like "u1", "f4" */
    PV_OPAQUE     /* a known harmless object we do not interpret (e.g. argparse.Namespace) */
} PyKind;

/* One unpickled value. Plain public struct: read the fields for the kind
 * (or use the py_* accessors below, which check the kind for you). */
typedef struct PyVal PyVal;
struct PyVal {
    int kind;                 /* PyKind */
    int64_t i;                /* PV_INT (low 64 bits when big), PV_BOOL (0/1) */
    int big;                  /* PV_INT: a LONG1 that does not fit int64; b/len hold its LE bytes */
    double f;                 /* PV_FLOAT */
    const char *s;            /* PV_STR: UTF-8, NUL-terminated (len bytes); PV_GLOBAL/PV_OPAQUE:
                                 "module.name"; PV_STORAGE: storage key; PV_DTYPE: descr ("u1") */
    const uint8_t *b;         /* PV_BYTES: the bytes (len), NOT NUL-terminated; they may point
                                 INTO the input buffer: keep it alive until pickle_free */
    size_t len;
    PyVal **items; size_t n;  /* PV_TUPLE, PV_LIST: n items. PV_DICT: n pairs in insertion
                                 order, key items[2k], value items[2k+1] (keys are not
                                 deduplicated; py_dict_get returns the last match, as Python) */
    int dtype;                /* PV_STORAGE, PV_TENSOR, PV_DTYPE, PV_NDARRAY: DT_* (-1 unknown) */
    int itemsize;             /* bytes per element of dtype */
    int64_t numel;            /* PV_STORAGE: elements; PV_NDARRAY: product of shape */
    const char *location;     /* PV_STORAGE: "cpu", "cuda:0", ... */
    const uint8_t *data;      /* PV_STORAGE: raw bytes, bound by the on_storage hook (NULL until);
                                 PV_NDARRAY: raw element bytes (may point into the input buffer) */
    size_t nbytes;            /* bytes at data */
    PyVal *storage;           /* PV_TENSOR: its PV_STORAGE */
    int64_t offset;           /* PV_TENSOR: storage offset in elements */
    int ndim;                 /* PV_TENSOR, PV_NDARRAY (0..8) */
    int64_t shape[8];
    int64_t stride[8];        /* PV_TENSOR: in elements */
    int byteorder;            /* PV_DTYPE, PV_NDARRAY: '<', '>', '|' or '=' */
    int fortran;              /* PV_NDARRAY: Fortran (column-major) order */
    size_t cap_;              /* private: capacity of items (lists, dicts) */
    void *arena_;             /* private (set on the root: what pickle_free releases) */
};

/* Storage dtype pickle.c can name beyond the DT_* enum of dkd.h (no C type);
 * pth_read converts it to DT_F32. */
enum { DT_BF16 = 16 };

/* Options of one load. hooks may be NULL: everything whitelisted, no callback. */
enum { PICKLE_ALLOW_TORCH = 1, PICKLE_ALLOW_NUMPY = 2 };
typedef struct {
    unsigned allow;           /* PICKLE_ALLOW_* bits; 0 = both */
    /* Called for every storage BINPERSID creates (pth.c binds data/nbytes here).
     * Return 0, or -1 after dkd_fail() to abort the load. May be NULL. */
    int (*on_storage)(void *ctx, PyVal *storage);
    void *ctx;
} PickleHooks;

/* Unpickle ONE pickle (PROTO ... STOP) from buf[0..len). Returns the root value
 * or NULL with dkd_errbuf ("pickle: offset N: ..."). *used (may be NULL) gets
 * the bytes consumed up to and including STOP, for concatenated pickles. */
PyVal *pickle_load(const uint8_t *buf, size_t len, const PickleHooks *hooks, size_t *used);
/* Release everything of one load (pass the root that pickle_load returned). */
void pickle_free(PyVal *root);
/* "int", "dict", "tensor", ... for messages. */
const char *py_kind_name(int kind);
/* Dict lookup by a str OR bytes key equal to key (NUL-terminated). NULL if v is
 * not a dict or the key is absent. */
const PyVal *py_dict_get(const PyVal *v, const char *key);
/* Items of a tuple/list, pairs of a dict; 0 for anything else. */
size_t py_len(const PyVal *v);
/* Item i of a tuple or list; NULL if out of range or not a sequence. */
const PyVal *py_item(const PyVal *v, size_t i);
/* int or bool -> *out, 0; else -1. */
int py_int(const PyVal *v, int64_t *out);
/* float, int or bool -> *out, 0; else -1. */
int py_float(const PyVal *v, double *out);
/* Bytes of a str or bytes value (*len may be NULL); NULL for other kinds. */
const uint8_t *py_bytes(const PyVal *v, size_t *len);
/* A numpy array of uint8 (descr "u1"/"b1"... itemsize 1), C order: its ndim,
 * shape (up to 8) and raw bytes (numel bytes). 0, or -1 with dkd_errbuf. */
int py_ndarray_u8(const PyVal *v, int *ndim, int64_t shape[8], const uint8_t **data);

#ifdef __cplusplus
}
#endif
#endif
