/* tests/fuzz/fuzz_cifar_py.c — libFuzzer target: the CIFAR-100 python-format
 * loader (cifar_parse_python: the unpickler with the numpy whitelist, then the
 * dict checks and the in-place move of the pixels), any image count accepted. */
#include "fuzz_cifar.h"   // defines: fuzz_cifar (copy the input, parse, free)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_cifar(cifar_parse_python, "fuzz_py", data, size);
}
