/* tests/fuzz/fuzz_cifar_py.c — libFuzzer target: the CIFAR-100 python-format
 * loader (cifar_parse_python: the unpickler with the numpy whitelist, then the
 * dict checks and the in-place move of the pixels), any image count accepted. */
#include "dkd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);   /* the parser takes ownership */
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    CifarSplit s;
    if (cifar_parse_python(buf, size, "fuzz_py", -1, &s) == 0) cifar_free(&s);
    return 0;
}
