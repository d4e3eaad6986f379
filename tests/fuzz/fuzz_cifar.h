/* tests/fuzz/fuzz_cifar.h — what the two CIFAR-100 targets share. Both parsers
 * take ownership of the buffer they are given (it becomes the split's image
 * array, or is freed on failure), so each input is first copied into a
 * malloc'd buffer of its own; a split that parses is freed again at once. */
#ifndef FUZZ_CIFAR_H
#define FUZZ_CIFAR_H
#include "dkd.h"

#include <stdlib.h>
#include <string.h>

typedef int (*CifarParser)(uint8_t *buf, size_t len, const char *name, int expect_n, CifarSplit *out);

/* One input through parse, any image count accepted (expect_n = -1). */
static inline int fuzz_cifar(CifarParser parse, const char *name, const uint8_t *data, size_t size) {
    uint8_t *buf = (uint8_t *)malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    CifarSplit s;
    if (parse(buf, size, name, -1, &s) == 0) cifar_free(&s);
    return 0;
}
#endif
