/* models/resnetv2.c — ResNet50, CIFAR version (mdistiller resnetv2.py),
 * the teacher of the res50 -> mv2 pair.
 *
 *   step    op                                                    output C x H x W
 *   stem    conv1 3x3/1 pad 1 (no bias), 3->64; bn1; ReLU          64 x 32 x 32
 *           (no 7x7 stem, no max-pool: CIFAR images are small)
 *   layer1  3 Bottlenecks, planes  64, stride 1                   256 x 32 x 32
 *   layer2  4 Bottlenecks, planes 128, first stride 2             512 x 16 x 16
 *   layer3  6 Bottlenecks, planes 256, first stride 2            1024 x  8 x  8
 *   layer4  3 Bottlenecks, planes 512, first stride 2            2048 x  4 x  4
 *   head    global avg pool (4x4) -> linear Linear(2048, 100)     100
 *
 * Bottleneck(in, planes, stride s), expansion 4, keys under "layerL.i.":
 *   conv1 1x1 in->planes -> bn1 -> ReLU -> conv2 3x3/s planes->planes -> bn2 -> ReLU
 *   -> conv3 1x1 planes->4*planes -> bn3 -> (+ shortcut) -> ReLU
 *   shortcut = x, or shortcut.0 (1x1/s conv) + shortcut.1 (BN) when the shape changes
 *   (in every stage's first block, layer1.0 included: 64 -> 256).
 * 23.7 M parameters, 1.3 G MACs per image. Initialisation: FAMILY_RESNET. */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

static int bottleneck(Net *n, int x, const char *pre, int planes, int stride) {
    int h = nb_relu(n, nb_conv_bn(n, x, nbname("%s.conv1", pre), nbname("%s.bn1", pre), planes, 1, 1, 0, 1));
    h = nb_relu(n, nb_conv_bn(n, h, nbname("%s.conv2", pre), nbname("%s.bn2", pre), planes, 3, stride, 1, 1));
    h = nb_conv_bn(n, h, nbname("%s.conv3", pre), nbname("%s.bn3", pre), 4 * planes, 1, 1, 0, 1);
    return nb_residual(n, x, h, nbname("%s.shortcut.0", pre), nbname("%s.shortcut.1", pre), stride);
}

/* Builds "ResNet50"; NULL if name is anything else. */
Net *build_resnet50(const char *name) {
    if (strcmp(name, "ResNet50")) { dkd_fail("build_resnet50: '%s' is not ResNet50", name); return NULL; }
    static const int blocks[4] = {3, 4, 6, 3}, planes[4] = {64, 128, 256, 512};
    Net *n = net_new(name, FAMILY_RESNET);
    int x = nb_input(n, 3, 32, 32);
    x = nb_relu(n, nb_conv_bn(n, x, "conv1", "bn1", 64, 3, 1, 1, 1));
    for (int l = 0; l < 4; l++) {
        for (int i = 0; i < blocks[l]; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "layer%d.%d", l + 1, i);
            x = bottleneck(n, x, pre, planes[l], (l > 0 && i == 0) ? 2 : 1);
        }
    }
    x = nb_avgpool(n, x, 4, 4, 0);          /* adaptive 1x1 on a 4x4 map */
    nb_linear(n, x, "linear", 100);
    net_finalize(n);
    return n;
}
