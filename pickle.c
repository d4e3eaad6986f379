/* pickle.c — a small, safe unpickler (a "pickle VM") for PyTorch checkpoints
 * and CIFAR-100's python-format files.
 *
 * A pickle is a little stack-machine program: each opcode byte pushes a value
 * (an int, a string, an empty dict...), or pops some values and builds a bigger
 * one (TUPLE, SETITEMS...), or calls a "global" (a Python function named by
 * module and name) on an argument tuple (REDUCE). Python's own unpickler will
 * import and call ANY global, which is why loading an untrusted pickle runs
 * arbitrary code. This one never calls anything: it knows a short whitelist of
 * globals and builds the DATA they stand for:
 *
 *   collections.OrderedDict()                      -> an empty dict
 *   torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)
 *                                                  -> a tensor view of a storage
 *   torch._utils._rebuild_parameter(tensor, ...)   -> that tensor
 *   torch.FloatStorage, LongStorage, ...           -> dtype tags inside persistent ids
 *   numpy.core.multiarray._reconstruct + BUILD     -> an array (shape, dtype, raw bytes)
 *   numpy.dtype(descr, ...)                        -> a dtype ("u1", "f4", ...)
 *   numpy.core.multiarray.scalar(dtype, bytes)     -> an int or float
 *   _codecs.encode(str, "latin1")                  -> bytes (how Python 3 pickles bytes at protocol 2)
 *   argparse.Namespace()                           -> an opaque placeholder
 *
 * Any other global, and any opcode outside those checkpoints and CIFAR-100's python files use
 * (docs/checkpoints.md), stops the load
 * with an error naming it and its byte offset.
 *
 * The machine (docs/checkpoints.md, "The pickle machine"): a value stack, a stack of MARK positions and a memo
 * (an array of values indexed by the PUT/GET operand). Values live in an arena
 * that pickle_free() releases in one go, so there is no reference counting and
 * no recursion anywhere (a list may even contain itself). Every read of the
 * input is bounds-checked: a truncated file gives "truncated" errors, never a
 * read past the end. Bytes objects point into the caller's buffer (no copy of
 * CIFAR's 150 MB data string).
 *
 * Memory is bounded by the input: a value costs ~300 bytes however short its
 * opcode, so a file of millions of one-byte opcodes could ask for gigabytes.
 * Between opcodes the machine compares what it holds (arena, stack, marks,
 * memo) with PICKLE_MEM_PER_BYTE x the pickle's size + LOAD_MEM_SLACK (dkd.h)
 * and stops with a message beyond it; memo indices may not exceed the pickle's
 * length (a pickler numbers them 0, 1, 2...).
 */
#include "pickle.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Arena: big blocks carved by a bump pointer, freed all at once.            */
/* ------------------------------------------------------------------------- */
typedef struct Block {
    struct Block *next;
    size_t used, cap;
    /* the block's bytes follow, 16-byte aligned */
} Block;
#define BLOCK_HDR ((sizeof(Block) + 15) & ~(size_t)15)
#define BLOCK_SIZE ((size_t)256 << 10)

typedef struct { Block *head; size_t bytes; /* all blocks, headers included */ } Arena;

/* Blocks start small (most pickles are a few KB) and double up to BLOCK_SIZE. */
static void *arena_alloc(Arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < n) {
        if (n > BLOCK_SIZE / 4) {   /* big: its own block, linked behind the current one */
            Block *b = (Block *)xmalloc(BLOCK_HDR + n);
            b->used = b->cap = n;
            if (a->head) { b->next = a->head->next; a->head->next = b; }
            else { b->next = NULL; a->head = b; }
            a->bytes += BLOCK_HDR + n;
            return (char *)b + BLOCK_HDR;
        }
        size_t cap = a->head ? 2 * a->head->cap : 4096;
        if (cap > BLOCK_SIZE) cap = BLOCK_SIZE;
        if (cap < n) cap = n;
        Block *b = (Block *)xmalloc(BLOCK_HDR + cap);
        b->used = 0; b->cap = cap; b->next = a->head; a->head = b;
        a->bytes += BLOCK_HDR + cap;
    }
    void *p = (char *)a->head + BLOCK_HDR + a->head->used;
    a->head->used += n;
    return p;
}

static void arena_free(Arena *a) {
    Block *b = a->head;
    while (b) { Block *nx = b->next; free(b); b = nx; }
    free(a);
}

/* ------------------------------------------------------------------------- */
/* Opcodes                                                                    */
/* ------------------------------------------------------------------------- */
enum {
    OP_MARK = 0x28, OP_STOP = 0x2e, OP_BINFLOAT = 0x47, OP_BININT = 0x4a, OP_BININT1 = 0x4b,
    OP_BININT2 = 0x4d, OP_NONE = 0x4e, OP_BINPERSID = 0x51, OP_REDUCE = 0x52,
    OP_BINSTRING = 0x54, OP_SHORT_BINSTRING = 0x55, OP_BINUNICODE = 0x58,
    OP_EMPTY_LIST = 0x5d, OP_APPEND = 0x61, OP_BUILD = 0x62, OP_GLOBAL = 0x63,
    OP_APPENDS = 0x65, OP_BINGET = 0x68, OP_LONG_BINGET = 0x6a, OP_BINPUT = 0x71,
    OP_LONG_BINPUT = 0x72, OP_SETITEM = 0x73, OP_TUPLE = 0x74, OP_SETITEMS = 0x75,
    OP_EMPTY_DICT = 0x7d, OP_EMPTY_TUPLE = 0x29,
    OP_BINBYTES = 0x42, OP_SHORT_BINBYTES = 0x43,
    OP_PROTO = 0x80, OP_TUPLE1 = 0x85, OP_TUPLE2 = 0x86, OP_TUPLE3 = 0x87,
    OP_NEWTRUE = 0x88, OP_NEWFALSE = 0x89, OP_LONG1 = 0x8a,
    OP_SHORT_BINUNICODE = 0x8c, OP_STACK_GLOBAL = 0x93, OP_MEMOIZE = 0x94, OP_FRAME = 0x95
};

/* Names of every pickle opcode (accepted or not), for error messages. */
static const char *op_name(int op) {
    switch (op) {
    case 0x28: return "MARK"; case 0x2e: return "STOP"; case 0x30: return "POP";
    case 0x31: return "POP_MARK"; case 0x32: return "DUP"; case 0x46: return "FLOAT";
    case 0x49: return "INT"; case 0x4a: return "BININT"; case 0x4b: return "BININT1";
    case 0x4c: return "LONG"; case 0x4d: return "BININT2"; case 0x4e: return "NONE";
    case 0x50: return "PERSID"; case 0x51: return "BINPERSID"; case 0x52: return "REDUCE";
    case 0x53: return "STRING"; case 0x54: return "BINSTRING"; case 0x55: return "SHORT_BINSTRING";
    case 0x56: return "UNICODE"; case 0x58: return "BINUNICODE"; case 0x61: return "APPEND";
    case 0x62: return "BUILD"; case 0x63: return "GLOBAL"; case 0x64: return "DICT";
    case 0x7d: return "EMPTY_DICT"; case 0x65: return "APPENDS"; case 0x67: return "GET";
    case 0x68: return "BINGET"; case 0x69: return "INST"; case 0x6a: return "LONG_BINGET";
    case 0x6c: return "LIST"; case 0x5d: return "EMPTY_LIST"; case 0x6f: return "OBJ";
    case 0x70: return "PUT"; case 0x71: return "BINPUT"; case 0x72: return "LONG_BINPUT";
    case 0x73: return "SETITEM"; case 0x74: return "TUPLE"; case 0x29: return "EMPTY_TUPLE";
    case 0x75: return "SETITEMS"; case 0x47: return "BINFLOAT"; case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ"; case 0x82: return "EXT1"; case 0x83: return "EXT2";
    case 0x84: return "EXT4"; case 0x85: return "TUPLE1"; case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3"; case 0x88: return "NEWTRUE"; case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1"; case 0x8b: return "LONG4"; case 0x42: return "BINBYTES";
    case 0x43: return "SHORT_BINBYTES"; case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8"; case 0x8e: return "BINBYTES8"; case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS"; case 0x91: return "FROZENSET"; case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL"; case 0x94: return "MEMOIZE"; case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8"; case 0x97: return "NEXT_BUFFER"; case 0x98: return "READONLY_BUFFER";
    default: return "unknown";
    }
}

/* ------------------------------------------------------------------------- */
/* The whitelist of globals                                                   */
/* ------------------------------------------------------------------------- */
enum {
    G_ORDEREDDICT = 1, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_STORAGE,
    G_NP_RECONSTRUCT, G_NP_NDARRAY, G_NP_DTYPE, G_NP_SCALAR, G_CODECS_ENCODE, G_NAMESPACE
};
static const struct {
    const char *module, *name;
    int id;
    int dtype, itemsize;   /* storages */
    unsigned allow;        /* which PICKLE_ALLOW_* bit it needs (0: always) */
} known_globals[] = {
    {"collections", "OrderedDict", G_ORDEREDDICT, -1, 0, 0},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, -1, 0, PICKLE_ALLOW_TORCH},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, -1, 0, PICKLE_ALLOW_TORCH},
    {"torch", "FloatStorage", G_STORAGE, DT_F32, 4, PICKLE_ALLOW_TORCH},
    {"torch", "DoubleStorage", G_STORAGE, DT_F64, 8, PICKLE_ALLOW_TORCH},
    {"torch", "HalfStorage", G_STORAGE, DT_F16, 2, PICKLE_ALLOW_TORCH},
    {"torch", "BFloat16Storage", G_STORAGE, DT_BF16, 2, PICKLE_ALLOW_TORCH},
    {"torch", "LongStorage", G_STORAGE, DT_I64, 8, PICKLE_ALLOW_TORCH},
    {"torch", "IntStorage", G_STORAGE, DT_I32, 4, PICKLE_ALLOW_TORCH},
    {"torch", "ShortStorage", G_STORAGE, DT_I16, 2, PICKLE_ALLOW_TORCH},
    {"torch", "CharStorage", G_STORAGE, DT_I8, 1, PICKLE_ALLOW_TORCH},
    {"torch", "ByteStorage", G_STORAGE, DT_U8, 1, PICKLE_ALLOW_TORCH},
    {"torch", "BoolStorage", G_STORAGE, DT_BOOL, 1, PICKLE_ALLOW_TORCH},
    {"argparse", "Namespace", G_NAMESPACE, -1, 0, PICKLE_ALLOW_TORCH},
    {"numpy.core.multiarray", "_reconstruct", G_NP_RECONSTRUCT, -1, 0, PICKLE_ALLOW_NUMPY},
    {"numpy._core.multiarray", "_reconstruct", G_NP_RECONSTRUCT, -1, 0, PICKLE_ALLOW_NUMPY},
    {"numpy", "ndarray", G_NP_NDARRAY, -1, 0, PICKLE_ALLOW_NUMPY},
    {"numpy", "dtype", G_NP_DTYPE, -1, 0, PICKLE_ALLOW_NUMPY},
    {"numpy.core.multiarray", "scalar", G_NP_SCALAR, -1, 0, PICKLE_ALLOW_NUMPY},
    {"numpy._core.multiarray", "scalar", G_NP_SCALAR, -1, 0, PICKLE_ALLOW_NUMPY},
    {"_codecs", "encode", G_CODECS_ENCODE, -1, 0, PICKLE_ALLOW_NUMPY | PICKLE_ALLOW_TORCH},
};
#define N_KNOWN_GLOBALS ((int)(sizeof known_globals / sizeof known_globals[0]))

/* ------------------------------------------------------------------------- */
/* The machine                                                                */
/* ------------------------------------------------------------------------- */
#define MAX_STACK ((size_t)1 << 24)   /* values on the stack */
#define MAX_MARKS ((size_t)1 << 20)   /* nested MARKs */
#define MAX_MEMO  ((size_t)1 << 24)   /* memo index limit */

typedef struct {
    const uint8_t *buf; size_t len, pos;   /* input and read position */
    size_t op_pos; int op;                 /* the opcode being executed (for messages) */
    Arena *ar;
    PyVal **stack; size_t sp, scap;
    size_t *marks; size_t nmarks, mcap;
    PyVal **memo; size_t memo_cap, memo_count;
    PyVal *small_int[256], *none, *true_, *false_, *empty_tuple;   /* shared immutable values */
    unsigned allow;
    const PickleHooks *hooks;
    size_t budget;                         /* bytes the machine may hold (see pickle_load) */
} VM;

/* Store "pickle: offset N: OPNAME: message" in dkd_errbuf; returns -1. */
static int vm_fail(VM *vm, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int vm_fail(VM *vm, const char *fmt, ...) {
    char msg[768];
    va_list ap; va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dkd_fail("pickle: offset %zu: %s (opcode 0x%02x): %s", vm->op_pos, op_name(vm->op), vm->op, msg);
}

static PyVal *new_val(VM *vm, int kind) {
    PyVal *v = (PyVal *)arena_alloc(vm->ar, sizeof(PyVal));
    memset(v, 0, sizeof *v);
    v->kind = kind;
    v->dtype = -1;
    return v;
}

static PyVal *new_int(VM *vm, int64_t x) {
    if (x >= 0 && x < 256) {
        if (!vm->small_int[x]) { vm->small_int[x] = new_val(vm, PV_INT); vm->small_int[x]->i = x; }
        return vm->small_int[x];
    }
    PyVal *v = new_val(vm, PV_INT);
    v->i = x;
    return v;
}

/* an items array of n pointers in the arena */
static PyVal **new_items(VM *vm, size_t n) {
    return (PyVal **)arena_alloc(vm->ar, (n ? n : 1) * sizeof(PyVal *));
}

/* Append one pointer to v->items (list or dict), growing by doubling. */
static void items_push(VM *vm, PyVal *v, PyVal *x) {
    if (v->n == v->cap_) {
        size_t cap = v->cap_ ? 2 * v->cap_ : 8;
        PyVal **it = new_items(vm, cap);
        if (v->n) memcpy(it, v->items, v->n * sizeof(PyVal *));
        v->items = it; v->cap_ = cap;
    }
    v->items[v->n++] = x;
}

/* --- reading operands, all bounds-checked --- */
static int need(VM *vm, size_t n) {
    if (vm->len - vm->pos < n)
        return vm_fail(vm, "truncated: the operand needs %zu bytes, only %zu left", n, vm->len - vm->pos);
    return 0;
}
static uint64_t rd_le(VM *vm, int n) {   /* caller did need(n) */
    uint64_t x = 0;
    for (int k = 0; k < n; k++) x |= (uint64_t)vm->buf[vm->pos + k] << (8 * k);
    vm->pos += (size_t)n;
    return x;
}

/* --- the stack --- */
static int push(VM *vm, PyVal *v) {
    if (vm->sp == vm->scap) {
        if (vm->scap >= MAX_STACK) return vm_fail(vm, "stack deeper than %zu values", MAX_STACK);
        vm->scap = vm->scap ? 2 * vm->scap : 256;
        vm->stack = (PyVal **)xrealloc(vm->stack, vm->scap * sizeof(PyVal *));
    }
    vm->stack[vm->sp++] = v;
    return 0;
}
static size_t fence(const VM *vm) { return vm->nmarks ? vm->marks[vm->nmarks - 1] : 0; }
/* Pop one value; NULL (+ message) if only a MARK or nothing is left. */
static PyVal *pop(VM *vm) {
    if (vm->sp <= fence(vm)) { vm_fail(vm, "stack underflow (malformed pickle)"); return NULL; }
    return vm->stack[--vm->sp];
}
static PyVal *top(VM *vm) {
    if (vm->sp <= fence(vm)) { vm_fail(vm, "stack underflow (malformed pickle)"); return NULL; }
    return vm->stack[vm->sp - 1];
}
/* Pop the topmost MARK: *start = index of the first value above it. */
static int pop_mark(VM *vm, size_t *start) {
    if (!vm->nmarks) return vm_fail(vm, "no MARK on the stack (malformed pickle)");
    *start = vm->marks[--vm->nmarks];
    return 0;
}

/* The value just below a popped MARK at start (the dict of SETITEMS, the list of APPENDS). */
static PyVal *below_mark(VM *vm, size_t start) {
    if (start <= fence(vm)) { vm_fail(vm, "stack underflow (malformed pickle)"); return NULL; }
    return vm->stack[start - 1];
}

/* --- the memo --- */
static int memo_put(VM *vm, uint64_t idx) {
    PyVal *v = top(vm);
    if (!v) return -1;
    /* a pickler numbers its memo 0, 1, 2...: no real index reaches the pickle's length */
    if (idx >= MAX_MEMO || idx >= vm->len)
        return vm_fail(vm, "memo index %llu too large for a pickle of %zu bytes", (unsigned long long)idx, vm->len);
    if (idx >= vm->memo_cap) {
        size_t cap = vm->memo_cap ? vm->memo_cap : 1024;
        while (cap <= idx) cap *= 2;
        vm->memo = (PyVal **)xrealloc(vm->memo, cap * sizeof(PyVal *));
        memset(vm->memo + vm->memo_cap, 0, (cap - vm->memo_cap) * sizeof(PyVal *));
        vm->memo_cap = cap;
    }
    if (!vm->memo[idx]) vm->memo_count++;
    vm->memo[idx] = v;
    return 0;
}
static int memo_get(VM *vm, uint64_t idx) {
    if (idx >= vm->memo_cap || !vm->memo[idx])
        return vm_fail(vm, "memo index %llu was never stored (malformed pickle)", (unsigned long long)idx);
    return push(vm, vm->memo[idx]);
}
static size_t next_memo_index(const VM *vm) { return vm->memo_count; }   /* MEMOIZE: memo[len(memo)] = top */

/* --- small helpers on values --- */
static int is_text(const PyVal *v) { return v && (v->kind == PV_STR || v->kind == PV_BYTES); }
static const char *text_ptr(const PyVal *v) { return v->kind == PV_STR ? v->s : (const char *)v->b; }
static int text_eq(const PyVal *v, const char *s) {
    size_t n = strlen(s);
    return is_text(v) && v->len == n && memcmp(text_ptr(v), s, n) == 0;
}
/* Copy n bytes of text into the arena, NUL-terminated. */
static char *arena_str(VM *vm, const void *p, size_t n) {
    char *s = (char *)arena_alloc(vm->ar, n + 1);
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* numpy dtype descr ("u1", "<f4", "|b1") -> DT_* and item size */
static void descr_to_dtype(const char *d, size_t n, int *dtype, int *itemsize) {
    while (n && (*d == '<' || *d == '>' || *d == '|' || *d == '=')) { d++; n--; }
    *dtype = -1; *itemsize = 0;
    if (n < 2 || n > 4) return;
    char c = d[0];
    int sz = 0;
    for (size_t k = 1; k < n; k++) { if (d[k] < '0' || d[k] > '9') return; sz = sz * 10 + (d[k] - '0'); }
    *itemsize = sz;
    if (c == 'u' && sz == 1) *dtype = DT_U8;
    else if (c == 'b' && sz == 1) *dtype = DT_BOOL;
    else if (c == 'i' && sz == 1) *dtype = DT_I8;
    else if (c == 'i' && sz == 2) *dtype = DT_I16;
    else if (c == 'i' && sz == 4) *dtype = DT_I32;
    else if (c == 'i' && sz == 8) *dtype = DT_I64;
    else if (c == 'f' && sz == 2) *dtype = DT_F16;
    else if (c == 'f' && sz == 4) *dtype = DT_F32;
    else if (c == 'f' && sz == 8) *dtype = DT_F64;
}

/* a non-negative int64 from an int value */
static int get_nonneg(VM *vm, const PyVal *v, const char *what, int64_t *out) {
    if (!v || v->kind != PV_INT || v->big || v->i < 0)
        return vm_fail(vm, "%s must be a non-negative int, got %s", what, v ? py_kind_name(v->kind) : "nothing");
    *out = v->i;
    return 0;
}

/* a tuple of at most 8 non-negative ints (tensor size / stride, array shape) */
static int get_dims(VM *vm, const PyVal *t, const char *what, int *ndim, int64_t dims[8]) {
    if (!t || t->kind != PV_TUPLE) return vm_fail(vm, "%s must be a tuple, got %s", what, t ? py_kind_name(t->kind) : "nothing");
    if (t->n > 8) return vm_fail(vm, "%s has %zu dimensions (at most 8 supported)", what, t->n);
    for (size_t d = 0; d < t->n; d++)
        if (get_nonneg(vm, t->items[d], what, &dims[d])) return -1;
    *ndim = (int)t->n;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* GLOBAL, REDUCE, BUILD, BINPERSID: where the whitelist is enforced          */
/* ------------------------------------------------------------------------- */
static int do_global(VM *vm, const char *module, size_t mlen, const char *name, size_t nlen) {
    for (int g = 0; g < N_KNOWN_GLOBALS; g++) {
        if (strlen(known_globals[g].module) != mlen || memcmp(known_globals[g].module, module, mlen) ||
            strlen(known_globals[g].name) != nlen || memcmp(known_globals[g].name, name, nlen)) continue;
        if (known_globals[g].allow && !(known_globals[g].allow & vm->allow))
            return vm_fail(vm, "refusing to unpickle global %s.%s: not expected in this kind of file",
                           known_globals[g].module, known_globals[g].name);
        PyVal *v = new_val(vm, PV_GLOBAL);
        v->i = known_globals[g].id;
        v->dtype = known_globals[g].dtype;
        v->itemsize = known_globals[g].itemsize;
        char tmp[160];
        int l = snprintf(tmp, sizeof tmp, "%s.%s", known_globals[g].module, known_globals[g].name);
        v->s = arena_str(vm, tmp, (size_t)l);
        v->len = (size_t)l;
        return push(vm, v);
    }
    /* print the name safely: it came from the file */
    char m[80], n[80];
    size_t k, ml = mlen < 79 ? mlen : 79, nl = nlen < 79 ? nlen : 79;
    for (k = 0; k < ml; k++) m[k] = (module[k] >= 32 && module[k] < 127) ? module[k] : '?';
    m[ml] = 0;
    for (k = 0; k < nl; k++) n[k] = (name[k] >= 32 && name[k] < 127) ? name[k] : '?';
    n[nl] = 0;
    return vm_fail(vm, "refusing to unpickle global %s.%s: only state_dict / CIFAR globals are allowed "
                   "(collections.OrderedDict, torch tensors and storages, numpy arrays)", m, n);
}

/* GLOBAL: "module\nname\n" */
static int op_global(VM *vm) {
    const char *line[2]; size_t llen[2];
    for (int k = 0; k < 2; k++) {
        size_t start = vm->pos, end = start;
        while (end < vm->len && end - start <= 256 && vm->buf[end] != '\n') end++;
        if (end >= vm->len) return vm_fail(vm, "truncated: GLOBAL name without its newline");
        if (vm->buf[end] != '\n') return vm_fail(vm, "GLOBAL name longer than 256 bytes");
        line[k] = (const char *)vm->buf + start; llen[k] = end - start;
        vm->pos = end + 1;
    }
    return do_global(vm, line[0], llen[0], line[1], llen[1]);
}

static int op_stack_global(VM *vm) {
    PyVal *name = pop(vm); if (!name) return -1;
    PyVal *module = pop(vm); if (!module) return -1;
    if (name->kind != PV_STR || module->kind != PV_STR) return vm_fail(vm, "STACK_GLOBAL needs two str");
    return do_global(vm, module->s, module->len, name->s, name->len);
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
static PyVal *rebuild_tensor(VM *vm, const PyVal *args) {
    if (args->n < 4 || args->n > 7) { vm_fail(vm, "_rebuild_tensor_v2 takes 4 to 7 arguments, got %zu", args->n); return NULL; }
    PyVal *st = args->items[0];
    if (st->kind != PV_STORAGE) { vm_fail(vm, "_rebuild_tensor_v2: first argument is a %s, not a storage", py_kind_name(st->kind)); return NULL; }
    PyVal *t = new_val(vm, PV_TENSOR);
    t->storage = st; t->dtype = st->dtype; t->itemsize = st->itemsize;
    if (get_nonneg(vm, args->items[1], "tensor storage_offset", &t->offset)) return NULL;
    int nd2 = 0;
    if (get_dims(vm, args->items[2], "tensor size", &t->ndim, t->shape)) return NULL;
    if (get_dims(vm, args->items[3], "tensor stride", &nd2, t->stride)) return NULL;
    if (nd2 != t->ndim) { vm_fail(vm, "tensor size has %d dims but stride %d", t->ndim, nd2); return NULL; }
    /* every element offset + sum_d i_d*stride_d must lie inside the storage */
    int64_t numel = 1, last = t->offset;
    for (int d = 0; d < t->ndim; d++) {
        int64_t term;
        if (__builtin_mul_overflow(numel, t->shape[d], &numel) ||
            (t->shape[d] > 0 && (__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &term) ||
                                 __builtin_add_overflow(last, term, &last)))) {
            vm_fail(vm, "tensor size/stride overflow"); return NULL;
        }
    }
    t->numel = numel;
    if (numel > 0 && last >= st->numel) {
        vm_fail(vm, "tensor (offset %lld, last element %lld) reaches past its storage '%s' of %lld elements",
                (long long)t->offset, (long long)last, st->s, (long long)st->numel);
        return NULL;
    }
    return t;
}

/* numpy.core.multiarray.scalar(dtype, bytes) -> int or float */
static PyVal *np_scalar(VM *vm, const PyVal *args) {
    if (args->n != 2 || args->items[0]->kind != PV_DTYPE || args->items[1]->kind != PV_BYTES) {
        vm_fail(vm, "numpy scalar: expected (dtype, bytes)"); return NULL;
    }
    const PyVal *dt = args->items[0], *b = args->items[1];
    if (dt->dtype < 0 || (size_t)dt->itemsize != b->len) { vm_fail(vm, "numpy scalar of dtype %s not supported", dt->s); return NULL; }
    uint8_t raw[8];
    for (size_t k = 0; k < b->len; k++) raw[k] = dt->byteorder == '>' ? b->b[b->len - 1 - k] : b->b[k];
    PyVal *v;
    switch (dt->dtype) {
    case DT_F64: { double x; memcpy(&x, raw, 8); v = new_val(vm, PV_FLOAT); v->f = x; break; }
    case DT_F32: { float x; memcpy(&x, raw, 4); v = new_val(vm, PV_FLOAT); v->f = x; break; }
    case DT_I64: { int64_t x; memcpy(&x, raw, 8); v = new_int(vm, x); break; }
    case DT_I32: { int32_t x; memcpy(&x, raw, 4); v = new_int(vm, x); break; }
    case DT_I16: { int16_t x; memcpy(&x, raw, 2); v = new_int(vm, x); break; }
    case DT_I8: v = new_int(vm, (int8_t)raw[0]); break;
    case DT_U8: v = new_int(vm, raw[0]); break;
    case DT_BOOL: v = raw[0] ? vm->true_ : vm->false_; break;
    default: vm_fail(vm, "numpy scalar of dtype %s not supported", dt->s); return NULL;
    }
    return v;
}

/* _codecs.encode(str, "latin1"): code points 0..255 of a UTF-8 string -> bytes */
static PyVal *codecs_encode(VM *vm, const PyVal *args) {
    if (args->n != 2 || args->items[0]->kind != PV_STR ||
        !(text_eq(args->items[1], "latin1") || text_eq(args->items[1], "latin-1"))) {
        vm_fail(vm, "_codecs.encode: only encode(str, 'latin1') is supported"); return NULL;
    }
    const PyVal *s = args->items[0];
    uint8_t *out = (uint8_t *)arena_alloc(vm->ar, s->len + 1);
    size_t n = 0;
    for (size_t k = 0; k < s->len;) {
        uint8_t c = (uint8_t)s->s[k];
        if (c < 0x80) { out[n++] = c; k++; }
        else if ((c & 0xE0) == 0xC0 && k + 1 < s->len && (c & 0x1F) <= 3 && ((uint8_t)s->s[k + 1] & 0xC0) == 0x80) {
            out[n++] = (uint8_t)(((c & 0x1F) << 6) | ((uint8_t)s->s[k + 1] & 0x3F)); k += 2;
        } else { vm_fail(vm, "_codecs.encode: character outside latin1"); return NULL; }
    }
    PyVal *v = new_val(vm, PV_BYTES);
    v->b = out; v->len = n;
    return v;
}

static int op_reduce(VM *vm) {
    PyVal *args = pop(vm); if (!args) return -1;
    PyVal *fn = pop(vm); if (!fn) return -1;
    if (args->kind != PV_TUPLE) return vm_fail(vm, "REDUCE arguments are a %s, not a tuple", py_kind_name(args->kind));
    if (fn->kind != PV_GLOBAL) return vm_fail(vm, "REDUCE on a %s, which is not callable here", py_kind_name(fn->kind));
    PyVal *r = NULL;
    switch ((int)fn->i) {
    case G_ORDEREDDICT:
        if (args->n != 0) return vm_fail(vm, "OrderedDict() with arguments is not supported");
        r = new_val(vm, PV_DICT);
        break;
    case G_REBUILD_TENSOR_V2:
        r = rebuild_tensor(vm, args);
        if (!r) return -1;
        break;
    case G_REBUILD_PARAMETER:   /* _rebuild_parameter(data, requires_grad, backward_hooks) */
        if (args->n < 1 || args->items[0]->kind != PV_TENSOR) return vm_fail(vm, "_rebuild_parameter: expected a tensor");
        r = args->items[0];
        break;
    case G_NP_RECONSTRUCT:      /* _reconstruct(ndarray, (0,), b'b') -> an empty array, BUILD fills it */
        if (args->n < 1 || args->items[0]->kind != PV_GLOBAL || args->items[0]->i != G_NP_NDARRAY)
            return vm_fail(vm, "numpy _reconstruct: only numpy.ndarray is supported");
        r = new_val(vm, PV_NDARRAY);
        break;
    case G_NP_DTYPE: {          /* dtype('u1', False, True) */
        if (args->n < 1 || !is_text(args->items[0])) return vm_fail(vm, "numpy dtype: expected a descr string");
        r = new_val(vm, PV_DTYPE);
        r->s = arena_str(vm, text_ptr(args->items[0]), args->items[0]->len);
        r->len = args->items[0]->len;
        descr_to_dtype(r->s, r->len, &r->dtype, &r->itemsize);
        r->byteorder = r->s[0] == '>' ? '>' : '<';
        break;
    }
    case G_NP_SCALAR:
        r = np_scalar(vm, args);
        if (!r) return -1;
        break;
    case G_CODECS_ENCODE:
        r = codecs_encode(vm, args);
        if (!r) return -1;
        break;
    case G_NAMESPACE:
        r = new_val(vm, PV_OPAQUE);
        r->s = fn->s; r->len = fn->len;
        break;
    default:
        return vm_fail(vm, "%s cannot be called", fn->s);
    }
    return push(vm, r);
}

/* BUILD: obj.__setstate__(state). Only arrays and dtypes take their state;
 * OrderedDict's _metadata and Namespace attributes are ignored. */
static int op_build(VM *vm) {
    PyVal *state = pop(vm); if (!state) return -1;
    PyVal *obj = top(vm); if (!obj) return -1;
    if (obj->kind == PV_DICT || obj->kind == PV_OPAQUE || obj->kind == PV_TENSOR) return 0;
    if (obj->kind == PV_DTYPE) {   /* (3, '|', None, None, None, -1, -1, 0): item 1 is the byte order */
        if (state->kind == PV_TUPLE && state->n >= 2 && is_text(state->items[1]) && state->items[1]->len == 1)
            obj->byteorder = text_ptr(state->items[1])[0];
        return 0;
    }
    if (obj->kind == PV_NDARRAY) {  /* ([version,] shape, dtype, is_fortran, rawdata) */
        if (state->kind != PV_TUPLE || state->n < 4 || state->n > 5)
            return vm_fail(vm, "numpy array state: expected a 4- or 5-tuple");
        PyVal **it = state->items + (state->n == 5 ? 1 : 0);
        if (get_dims(vm, it[0], "array shape", &obj->ndim, obj->shape)) return -1;
        if (it[1]->kind != PV_DTYPE) return vm_fail(vm, "numpy array state: no dtype");
        if (it[1]->dtype < 0) return vm_fail(vm, "numpy array of dtype '%s' is not supported", it[1]->s);
        if (it[2]->kind != PV_BOOL && it[2]->kind != PV_INT) return vm_fail(vm, "numpy array state: bad fortran flag");
        if (it[3]->kind != PV_BYTES)
            return vm_fail(vm, "numpy array data is a %s, not raw bytes (object arrays are not supported)", py_kind_name(it[3]->kind));
        obj->dtype = it[1]->dtype; obj->itemsize = it[1]->itemsize; obj->byteorder = it[1]->byteorder;
        obj->fortran = it[2]->i != 0;
        int64_t numel = 1;
        for (int d = 0; d < obj->ndim; d++)
            if (__builtin_mul_overflow(numel, obj->shape[d], &numel)) return vm_fail(vm, "array shape overflow");
        uint64_t want;
        if (__builtin_mul_overflow((uint64_t)numel, (uint64_t)obj->itemsize, &want) || want != it[3]->len)
            return vm_fail(vm, "numpy array: shape needs %lld elements of %d bytes, data has %zu bytes",
                           (long long)numel, obj->itemsize, it[3]->len);
        obj->numel = numel;
        obj->data = it[3]->b; obj->nbytes = it[3]->len;
        return 0;
    }
    return vm_fail(vm, "BUILD on a %s is not supported", py_kind_name(obj->kind));
}

/* BINPERSID: ('storage', StorageType, key, location, numel[, view_metadata]) */
static int op_binpersid(VM *vm) {
    if (!(vm->allow & PICKLE_ALLOW_TORCH)) return vm_fail(vm, "persistent ids (torch storages) are not expected in this file");
    PyVal *pid = pop(vm); if (!pid) return -1;
    if (pid->kind != PV_TUPLE || pid->n < 5 || pid->n > 6 || !text_eq(pid->items[0], "storage"))
        return vm_fail(vm, "persistent id is not a ('storage', type, key, location, numel) tuple");
    PyVal *ty = pid->items[1], *key = pid->items[2], *loc = pid->items[3];
    if (ty->kind != PV_GLOBAL || ty->i != G_STORAGE)
        return vm_fail(vm, "persistent id names %s, not a torch storage type", ty->kind == PV_GLOBAL ? ty->s : py_kind_name(ty->kind));
    if (key->kind != PV_STR || loc->kind != PV_STR) return vm_fail(vm, "storage key/location must be str");
    if (pid->n == 6 && pid->items[5]->kind != PV_NONE)
        return vm_fail(vm, "legacy storage views (view_metadata) are not supported");
    PyVal *st = new_val(vm, PV_STORAGE);
    st->dtype = ty->dtype; st->itemsize = ty->itemsize;
    st->s = key->s; st->len = key->len; st->location = loc->s;
    if (get_nonneg(vm, pid->items[4], "storage numel", &st->numel)) return -1;
    if (st->numel > (int64_t)1 << 40) return vm_fail(vm, "storage '%s' claims %lld elements", st->s, (long long)st->numel);
    if (vm->hooks && vm->hooks->on_storage) {
        size_t save = vm->op_pos;
        if (vm->hooks->on_storage(vm->hooks->ctx, st)) {
            char msg[sizeof dkd_errbuf];
            memcpy(msg, dkd_errbuf, sizeof msg);
            msg[sizeof msg - 1] = 0;
            vm->op_pos = save;
            return vm_fail(vm, "%s", msg);
        }
    }
    return push(vm, st);
}

/* ------------------------------------------------------------------------- */
/* The main loop                                                              */
/* ------------------------------------------------------------------------- */
/* Bytes held now: values (arena), stack, marks, memo. */
static size_t vm_bytes(const VM *vm) {
    return vm->ar->bytes + (vm->scap + vm->memo_cap) * sizeof(PyVal *) + vm->mcap * sizeof(size_t);
}

static int run(VM *vm, PyVal **result) {
    while (vm->pos < vm->len) {
        /* checked between opcodes: one opcode allocates at most a few times
         * its operand or the stack, so the peak stays within a small multiple */
        if (vm_bytes(vm) > vm->budget)
            return vm_fail(vm, "the pickle needs more than %zu MiB of memory to unpickle (the limit for %zu bytes "
                           "of pickle: %d x its size + %zu MiB): refusing a hostile or damaged file",
                           vm->budget >> 20, vm->len, PICKLE_MEM_PER_BYTE, LOAD_MEM_SLACK >> 20);
        vm->op_pos = vm->pos;
        vm->op = vm->buf[vm->pos++];
        PyVal *v, *w, *x;
        size_t start = 0, k;
        uint64_t u;
        switch (vm->op) {
        case OP_PROTO:
            if (need(vm, 1)) return -1;
            if (vm->buf[vm->pos] > 5) return vm_fail(vm, "unknown pickle protocol %d", vm->buf[vm->pos]);
            vm->pos++;
            break;
        case OP_FRAME:   /* framing hint: the frame length is irrelevant for an in-memory buffer */
            if (need(vm, 8)) return -1;
            vm->pos += 8;
            break;
        case OP_STOP:
            if (!(*result = pop(vm))) return -1;
            return 0;
        case OP_MARK:
            if (vm->nmarks == vm->mcap) {
                if (vm->mcap >= MAX_MARKS) return vm_fail(vm, "more than %zu nested MARKs", MAX_MARKS);
                vm->mcap = vm->mcap ? 2 * vm->mcap : 64;
                vm->marks = (size_t *)xrealloc(vm->marks, vm->mcap * sizeof(size_t));
            }
            vm->marks[vm->nmarks++] = vm->sp;
            break;
        case OP_EMPTY_DICT: if (push(vm, new_val(vm, PV_DICT))) return -1; break;
        case OP_EMPTY_LIST: if (push(vm, new_val(vm, PV_LIST))) return -1; break;
        case OP_EMPTY_TUPLE: if (push(vm, vm->empty_tuple)) return -1; break;
        case OP_TUPLE:
            if (pop_mark(vm, &start)) return -1;
            v = new_val(vm, PV_TUPLE);
            v->n = vm->sp - start;
            v->items = new_items(vm, v->n);
            if (v->n) memcpy(v->items, vm->stack + start, v->n * sizeof(PyVal *));
            vm->sp = start;
            if (push(vm, v)) return -1;
            break;
        case OP_TUPLE1: case OP_TUPLE2: case OP_TUPLE3: {
            size_t n = (size_t)(vm->op - OP_TUPLE1 + 1);
            if (vm->sp < fence(vm) + n) return vm_fail(vm, "stack underflow (malformed pickle)");
            v = new_val(vm, PV_TUPLE);
            v->n = n;
            v->items = new_items(vm, n);
            memcpy(v->items, vm->stack + vm->sp - n, n * sizeof(PyVal *));
            vm->sp -= n;
            if (push(vm, v)) return -1;
            break;
        }
        case OP_BINUNICODE: case OP_SHORT_BINUNICODE:
            k = vm->op == OP_BINUNICODE ? 4 : 1;
            if (need(vm, k)) return -1;
            u = rd_le(vm, (int)k);
            if (need(vm, u)) return -1;
            v = new_val(vm, PV_STR);
            v->s = arena_str(vm, vm->buf + vm->pos, u);
            v->len = u;
            vm->pos += u;
            if (push(vm, v)) return -1;
            break;
        case OP_BINSTRING: case OP_SHORT_BINSTRING: case OP_BINBYTES: case OP_SHORT_BINBYTES:
            /* Python 2 str / Python 3 bytes: raw bytes, not copied */
            k = (vm->op == OP_SHORT_BINSTRING || vm->op == OP_SHORT_BINBYTES) ? 1 : 4;
            if (need(vm, k)) return -1;
            u = rd_le(vm, (int)k);
            if (vm->op == OP_BINSTRING && (u & 0x80000000u)) return vm_fail(vm, "negative string length");
            if (need(vm, u)) return -1;
            v = new_val(vm, PV_BYTES);
            v->b = vm->buf + vm->pos;
            v->len = u;
            vm->pos += u;
            if (push(vm, v)) return -1;
            break;
        case OP_BININT1: if (need(vm, 1)) return -1; if (push(vm, new_int(vm, (int64_t)rd_le(vm, 1)))) return -1; break;
        case OP_BININT2: if (need(vm, 2)) return -1; if (push(vm, new_int(vm, (int64_t)rd_le(vm, 2)))) return -1; break;
        case OP_BININT:  if (need(vm, 4)) return -1; if (push(vm, new_int(vm, (int32_t)(uint32_t)rd_le(vm, 4)))) return -1; break;
        case OP_LONG1: {  /* n bytes, little-endian two's complement */
            if (need(vm, 1)) return -1;
            size_t n = vm->buf[vm->pos++];
            if (need(vm, n)) return -1;
            const uint8_t *p = vm->buf + vm->pos;
            vm->pos += n;
            uint64_t x = 0;
            for (k = 0; k < n && k < 8; k++) x |= (uint64_t)p[k] << (8 * k);
            int neg = n > 0 && (p[n - 1] & 0x80);
            if (n > 0 && n < 8 && neg) x |= ~(uint64_t)0 << (8 * n);   /* sign-extend */
            int big = 0;   /* wider than 8 bytes: fits only if the extra bytes are sign extension */
            for (k = 8; k < n; k++) if (p[k] != ((p[7] & 0x80) ? 0xff : 0x00)) big = 1;
            if (n > 8 && (neg != ((p[7] & 0x80) != 0))) big = 1;
            v = big ? new_val(vm, PV_INT) : new_int(vm, (int64_t)x);
            if (big) { v->i = (int64_t)x; v->big = 1; v->b = p; v->len = n; }
            if (push(vm, v)) return -1;
            break;
        }
        case OP_BINFLOAT: {   /* 8 bytes big-endian IEEE double */
            if (need(vm, 8)) return -1;
            uint64_t bits = 0;
            for (k = 0; k < 8; k++) bits = (bits << 8) | vm->buf[vm->pos + k];
            vm->pos += 8;
            v = new_val(vm, PV_FLOAT);
            memcpy(&v->f, &bits, 8);
            if (push(vm, v)) return -1;
            break;
        }
        case OP_NEWTRUE: if (push(vm, vm->true_)) return -1; break;
        case OP_NEWFALSE: if (push(vm, vm->false_)) return -1; break;
        case OP_NONE: if (push(vm, vm->none)) return -1; break;
        case OP_GLOBAL: if (op_global(vm)) return -1; break;
        case OP_STACK_GLOBAL: if (op_stack_global(vm)) return -1; break;
        case OP_REDUCE: if (op_reduce(vm)) return -1; break;
        case OP_BUILD: if (op_build(vm)) return -1; break;
        case OP_BINPERSID: if (op_binpersid(vm)) return -1; break;
        case OP_BINPUT: if (need(vm, 1) || memo_put(vm, rd_le(vm, 1))) return -1; break;
        case OP_LONG_BINPUT: if (need(vm, 4) || memo_put(vm, rd_le(vm, 4))) return -1; break;
        case OP_MEMOIZE: if (memo_put(vm, next_memo_index(vm))) return -1; break;
        case OP_BINGET: if (need(vm, 1) || memo_get(vm, rd_le(vm, 1))) return -1; break;
        case OP_LONG_BINGET: if (need(vm, 4) || memo_get(vm, rd_le(vm, 4))) return -1; break;
        case OP_SETITEM:
            if (!(x = pop(vm)) || !(w = pop(vm)) || !(v = top(vm))) return -1;
            if (v->kind != PV_DICT) return vm_fail(vm, "SETITEM on a %s, not a dict", py_kind_name(v->kind));
            items_push(vm, v, w); items_push(vm, v, x);
            break;
        case OP_SETITEMS:
            if (pop_mark(vm, &start)) return -1;
            if ((vm->sp - start) % 2) return vm_fail(vm, "SETITEMS with an odd number of values");
            if (!(v = below_mark(vm, start))) return -1;
            if (v->kind != PV_DICT) return vm_fail(vm, "SETITEMS on a %s, not a dict", py_kind_name(v->kind));
            for (k = start; k < vm->sp; k++) items_push(vm, v, vm->stack[k]);
            vm->sp = start;
            break;
        case OP_APPEND:
            if (!(x = pop(vm)) || !(v = top(vm))) return -1;
            if (v->kind != PV_LIST) return vm_fail(vm, "APPEND on a %s, not a list", py_kind_name(v->kind));
            items_push(vm, v, x);
            break;
        case OP_APPENDS:
            if (pop_mark(vm, &start)) return -1;
            if (!(v = below_mark(vm, start))) return -1;
            if (v->kind != PV_LIST) return vm_fail(vm, "APPENDS on a %s, not a list", py_kind_name(v->kind));
            for (k = start; k < vm->sp; k++) items_push(vm, v, vm->stack[k]);
            vm->sp = start;
            break;
        default:
            return vm_fail(vm, "opcode not allowed: only the opcodes of PyTorch state_dict and CIFAR pickles are accepted");
        }
    }
    vm->op_pos = vm->pos; vm->op = OP_STOP;
    return vm_fail(vm, "truncated: the pickle ends without a STOP opcode");
}

PyVal *pickle_load(const uint8_t *buf, size_t len, const PickleHooks *hooks, size_t *used) {
    VM vm;
    memset(&vm, 0, sizeof vm);
    vm.buf = buf; vm.len = buf ? len : 0;
    vm.hooks = hooks;
    vm.allow = (hooks && hooks->allow) ? hooks->allow : (PICKLE_ALLOW_TORCH | PICKLE_ALLOW_NUMPY);
    vm.ar = (Arena *)xcalloc(1, sizeof(Arena));
    /* the memory budget: PICKLE_MEM_PER_BYTE x the input + LOAD_MEM_SLACK, at most LOAD_MEM_CAP */
    vm.budget = vm.len > (LOAD_MEM_CAP - LOAD_MEM_SLACK) / PICKLE_MEM_PER_BYTE
                    ? LOAD_MEM_CAP : PICKLE_MEM_PER_BYTE * vm.len + LOAD_MEM_SLACK;
    vm.none = new_val(&vm, PV_NONE);
    vm.true_ = new_val(&vm, PV_BOOL); vm.true_->i = 1;
    vm.false_ = new_val(&vm, PV_BOOL);
    vm.empty_tuple = new_val(&vm, PV_TUPLE);
    PyVal *root = NULL;
    int rc = run(&vm, &root);
    free(vm.stack); free(vm.marks); free(vm.memo);
    if (rc) { arena_free(vm.ar); return NULL; }
    /* the root carries the arena; a fresh copy so that a shared value (a small int,
     * None) never holds it */
    PyVal *r = (PyVal *)arena_alloc(vm.ar, sizeof(PyVal));
    *r = *root;
    r->arena_ = vm.ar;
    if (used) *used = vm.pos;
    return r;
}

void pickle_free(PyVal *root) {
    if (root && root->arena_) arena_free((Arena *)root->arena_);
}

/* ------------------------------------------------------------------------- */
/* Accessors                                                                  */
/* ------------------------------------------------------------------------- */
const char *py_kind_name(int kind) {
    static const char *names[] = {"None", "bool", "int", "float", "str", "bytes", "tuple", "list", "dict",
                                  "global", "storage", "tensor", "ndarray", "dtype", "opaque object"};
    return (kind >= 0 && kind < (int)(sizeof names / sizeof names[0])) ? names[kind] : "?";
}

const PyVal *py_dict_get(const PyVal *v, const char *key) {
    if (!v || v->kind != PV_DICT || !key) return NULL;
    for (size_t k = v->n / 2; k-- > 0;)   /* last match wins, as in Python */
        if (text_eq(v->items[2 * k], key)) return v->items[2 * k + 1];
    return NULL;
}

size_t py_len(const PyVal *v) {
    if (!v) return 0;
    if (v->kind == PV_TUPLE || v->kind == PV_LIST) return v->n;
    if (v->kind == PV_DICT) return v->n / 2;
    return 0;
}

const PyVal *py_item(const PyVal *v, size_t i) {
    if (!v || (v->kind != PV_TUPLE && v->kind != PV_LIST) || i >= v->n) return NULL;
    return v->items[i];
}

int py_int(const PyVal *v, int64_t *out) {
    if (!v || (v->kind != PV_INT && v->kind != PV_BOOL) || v->big) return -1;
    *out = v->i;
    return 0;
}

int py_float(const PyVal *v, double *out) {
    if (!v) return -1;
    if (v->kind == PV_FLOAT) { *out = v->f; return 0; }
    if ((v->kind == PV_INT && !v->big) || v->kind == PV_BOOL) { *out = (double)v->i; return 0; }
    return -1;
}

const uint8_t *py_bytes(const PyVal *v, size_t *len) {
    if (!is_text(v)) return NULL;
    if (len) *len = v->len;
    return (const uint8_t *)text_ptr(v);
}

int py_ndarray_u8(const PyVal *v, int *ndim, int64_t shape[8], const uint8_t **data) {
    if (!v || v->kind != PV_NDARRAY) return dkd_fail("expected a numpy array, got %s", v ? py_kind_name(v->kind) : "nothing");
    if (!v->data && v->numel != 0) return dkd_fail("numpy array has no data (no BUILD state)");
    if (v->dtype != DT_U8) return dkd_fail("numpy array is not uint8 (dtype code %d, %d-byte items)", v->dtype, v->itemsize);
    if (v->fortran && v->ndim > 1) return dkd_fail("numpy array is in Fortran order (expected C order)");
    *ndim = v->ndim;
    for (int d = 0; d < 8; d++) shape[d] = d < v->ndim ? v->shape[d] : 0;
    *data = v->data;
    return 0;
}
