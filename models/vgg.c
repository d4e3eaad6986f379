/* models/vgg.c — VGG8 and VGG13 with BatchNorm (mdistiller vgg.py, vgg8_bn /
 * vgg13_bn). vgg8 is a student, vgg13 a teacher.
 *
 * Five conv blocks; each is a Sequential [conv 3x3 pad 1 WITH bias, BN, ReLU]
 * repeated (once in vgg8, twice in vgg13) with its LAST ReLU removed and
 * applied by the forward instead. So inside block b the convs are keys
 * "blockb.0", "blockb.3" and the BNs "blockb.1", "blockb.4" (ReLUs at 2, 5
 * have no keys).
 *
 *   step  op                                          output C x H x W
 *   1     ReLU(block0(x)), pool0 max 2x2/2             64 x 16 x 16
 *   2     ReLU(block1(.)), pool1 max 2x2/2            128 x  8 x  8
 *   3     ReLU(block2(.)), pool2 max 2x2/2            256 x  4 x  4
 *   4     ReLU(block3(.))   pool3 SKIPPED on 32x32    512 x  4 x  4
 *         (mdistiller applies it only when h == 64)
 *   5     ReLU(block4(.))                             512 x  4 x  4
 *   6     pool4 = global AVERAGE pool -> flatten      512
 *   7     classifier Linear(512, 100)                 100
 *
 *   model  convs per block  params
 *   vgg8   1                3.97 M
 *   vgg13  2                9.46 M
 * Initialisation: FAMILY_VGG (conv Kaiming fan_out, conv bias 0, classifier
 * N(0, 0.01^2), bias 0). */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

/* Builds vgg8 / vgg13 by name; NULL if unknown. */
Net *build_vgg(const char *name) {
    int per_block;
    if (!strcmp(name, "vgg8")) per_block = 1;
    else if (!strcmp(name, "vgg13")) per_block = 2;
    else { dkd_fail("build_vgg: '%s' is not vgg8 or vgg13", name); return NULL; }
    static const int width[5] = {64, 128, 256, 512, 512};

    Net *n = net_new(name, FAMILY_VGG);
    int x = nb_input(n, 3, 32, 32);
    for (int b = 0; b < 5; b++) {
        for (int j = 0; j < per_block; j++) {
            if (j > 0) x = nb_relu(n, x);   /* the ReLU inside the Sequential */
            x = nb_conv(n, x, nbname("block%d.%d", b, 3 * j), width[b], 3, 1, 1, 1, 1);
            x = nb_bn(n, x, nbname("block%d.%d", b, 3 * j + 1));
        }
        x = nb_relu(n, x);                  /* the block's last ReLU, outside it */
        if (b < 3) x = nb_maxpool(n, x, 2, 2);   /* pool0..pool2; pool3 skipped */
    }
    x = nb_avgpool(n, x, 4, 4, 0);          /* pool4: adaptive 1x1 on 4x4 */
    nb_linear(n, x, "classifier", 100);
    net_finalize(n);
    return n;
}
