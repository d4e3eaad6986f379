/* tests/fuzz/fuzz_cifar_bin.c — libFuzzer target: the CIFAR-100 binary-format
 * parser (cifar_parse_binary, what cifar_load_n runs on a .bin file), any
 * record count accepted. */
#include "fuzz_cifar.h"   // defines: fuzz_cifar (copy the input, parse, free)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return fuzz_cifar(cifar_parse_binary, "fuzz.bin", data, size);
}
