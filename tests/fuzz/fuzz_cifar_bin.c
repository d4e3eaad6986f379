/* tests/fuzz/fuzz_cifar_bin.c — libFuzzer target: the CIFAR-100 binary-format
 * parser (cifar_parse_binary, what cifar_load_n runs on a .bin file), any
 * record count accepted. */
#include "dkd.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);   /* the parser takes ownership */
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    CifarSplit s;
    if (cifar_parse_binary(buf, size, "fuzz.bin", -1, &s) == 0) cifar_free(&s);
    return 0;
}
