/* tests/fuzz/fuzz_pickle.c — libFuzzer target: the pickle VM (pickle.c) alone,
 * every opcode and global it accepts, with a storage hook that binds zero bytes
 * to every storage the way pth.c binds file bytes, then the accessors the
 * loaders use on the result. */
#include "pickle.h"

static const uint8_t zeros[64];

static int bind_storage(void *ctx, PyVal *st) {
    (void)ctx;
    uint64_t need = (uint64_t)st->numel * (uint64_t)st->itemsize;
    if (need > sizeof zeros) return dkd_fail("fuzz: storage larger than %zu bytes", sizeof zeros);
    st->data = zeros; st->nbytes = (size_t)need;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PickleHooks hooks = {0, bind_storage, NULL};
    size_t used = 0;
    PyVal *root = pickle_load(data, size, &hooks, &used);
    if (!root) return 0;
    int ndim; int64_t shape[8]; const uint8_t *px; int64_t i; double f; size_t n;
    (void)py_ndarray_u8(py_dict_get(root, "data"), &ndim, shape, &px);
    const PyVal *lab = py_dict_get(root, "fine_labels");
    for (size_t k = 0; k < py_len(lab); k++) (void)py_int(py_item(lab, k), &i);
    for (size_t k = 0; k < py_len(root); k++) { (void)py_float(py_item(root, k), &f); (void)py_bytes(py_item(root, k), &n); }
    pickle_free(root);
    return 0;
}
