/* models/resnet.c — the CIFAR ResNets of mdistiller's resnet.py:
 * resnet20, resnet32, resnet56, resnet110 (widths 16,16,32,64) and
 * resnet8x4, resnet32x4 (widths 32,64,128,256, "x4" = four times wider).
 *
 * Depth = 6N + 2: a 3x3 stem, three stages of N BasicBlocks, one FC layer.
 *
 *   step    op                                              output C x H x W
 *   stem    conv1 3x3/1 pad 1 (no bias), 3->C0; bn1; ReLU   C0 x 32 x 32
 *   layer1  N blocks C0->C1, all stride 1                   C1 x 32 x 32
 *   layer2  N blocks C1->C2, first one stride 2             C2 x 16 x 16
 *   layer3  N blocks C2->C3, first one stride 2             C3 x  8 x  8
 *   head    avg pool 8x8 -> flatten -> fc Linear(C3, 100)   100
 *
 *   model       widths C0..C3       N     params
 *   resnet20    16, 16, 32, 64      3     0.28 M
 *   resnet32    16, 16, 32, 64      5     0.47 M
 *   resnet56    16, 16, 32, 64      9     0.86 M
 *   resnet110   16, 16, 32, 64     18     1.74 M
 *   resnet8x4   32, 64, 128, 256    1     1.23 M
 *   resnet32x4  32, 64, 128, 256    5     7.43 M
 *
 * BasicBlock(in -> out, stride s), keys under "layerL.i.":
 *   conv1 3x3/s -> bn1 -> ReLU -> conv2 3x3/1 -> bn2 -> (+ shortcut) -> ReLU
 *   shortcut = x itself when s = 1 and in = out, else the projection
 *   "downsample" = 1x1/s conv (downsample.0) + BN (downsample.1)  ("option B").
 * mdistiller registers downsample after bn2, so the main path is built first.
 * Initialisation (FAMILY_RESNET): conv Kaiming-normal fan_out,
 * fc weight and bias PyTorch's default uniform. */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

/* One BasicBlock on node x; pre = "layer2.0". Returns the block's output node. */
static int basic_block(Net *n, int x, const char *pre, int out, int stride) {
    int h = nb_relu(n, nb_conv_bn(n, x, nbname("%s.conv1", pre), nbname("%s.bn1", pre), out, 3, stride, 1, 1));
    h = nb_conv_bn(n, h, nbname("%s.conv2", pre), nbname("%s.bn2", pre), out, 3, 1, 1, 1);
    return nb_residual(n, x, h, nbname("%s.downsample.0", pre), nbname("%s.downsample.1", pre), stride);
}

/* Builds resnet20/32/56/110/8x4/32x4 by mdistiller dict name; NULL if unknown. */
Net *build_resnet(const char *name) {
    static const struct { const char *name; int blocks; int w[4]; } cfg[] = {
        {"resnet20", 3, {16, 16, 32, 64}},   {"resnet32", 5, {16, 16, 32, 64}},
        {"resnet56", 9, {16, 16, 32, 64}},   {"resnet110", 18, {16, 16, 32, 64}},
        {"resnet8x4", 1, {32, 64, 128, 256}}, {"resnet32x4", 5, {32, 64, 128, 256}},
    };
    int m = -1;
    for (int i = 0; i < (int)(sizeof cfg / sizeof cfg[0]); i++)
        if (!strcmp(name, cfg[i].name)) m = i;
    if (m < 0) { dkd_fail("build_resnet: '%s' is not a CIFAR ResNet", name); return NULL; }
    const int *w = cfg[m].w;

    Net *n = net_new(name, FAMILY_RESNET);
    int x = nb_input(n, 3, 32, 32);
    x = nb_relu(n, nb_conv_bn(n, x, "conv1", "bn1", w[0], 3, 1, 1, 1));
    for (int l = 1; l <= 3; l++) {
        for (int i = 0; i < cfg[m].blocks; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "layer%d.%d", l, i);
            x = basic_block(n, x, pre, w[l], (l > 1 && i == 0) ? 2 : 1);
        }
    }
    x = nb_avgpool(n, x, 8, 8, 0);          /* 8x8 -> 1x1 */
    nb_linear(n, x, "fc", 100);
    net_finalize(n);
    return n;
}
