/* models/shufflenetv1.c — ShuffleNet V1 as in mdistiller ShuffleNetv1.py
 * ("ShuffleV1": groups 3, stage widths 240/480/960, blocks 4/8/4). A student: 0.95 M parameters, 38.7 M MACs per image.
 *
 *   step    op                                              output C x H x W
 *   stem    conv1 1x1 (!), 3->24, no bias; bn1; ReLU         24 x 32 x 32
 *           (no 3x3 stem, no max-pool)
 *   layer1  4 bottlenecks, first stride 2                   240 x 16 x 16
 *   layer2  8 bottlenecks, first stride 2                   480 x  8 x  8
 *   layer3  4 bottlenecks, first stride 2                   960 x  4 x  4
 *   head    avg pool 4x4 -> linear Linear(960, 100)         100
 *
 * Bottleneck(in -> out, stride s), mid = out/4, g1 = 1 for the block whose
 * input has 24 channels (layer1.0 only), else 3:
 *   conv1 1x1 groups g1, in->mid -> bn1 -> ReLU -> channel shuffle (g1 groups)
 *   -> conv2 3x3/s DEPTHWISE -> bn2 -> ReLU (this code has it, the paper not)
 *   -> conv3 1x1 groups 3 (always), mid->out -> bn3
 *   s = 2: ReLU(concat[branch, AvgPool(3, stride 2, pad 1)(x)])  — the pool
 *          counts the zero padding (always divides by 9);
 *   s = 1: ReLU(branch + x).
 * A stage's first block makes (stage width - in) channels so that the concat
 * has the stage width: layer1.0 24->216 (mid 54), layer2.0 240->240 (mid 60),
 * layer3.0 480->480 (mid 120); the other blocks keep the stage width.
 * Initialisation: FAMILY_SHUFFLE (PyTorch default uniform for convs and linear). */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

static int shufflev1_block(Net *n, int x, const char *pre, int out, int stride, int groups) {
    int in = n->nodes[x].C, mid = out / 4;
    int g1 = in == 24 ? 1 : groups;
    int h = nb_relu(n, nb_conv_bn(n, x, nbname("%s.conv1", pre), nbname("%s.bn1", pre), mid, 1, 1, 0, g1));
    if (g1 > 1) h = nb_shuffle(n, h, g1);   /* a 1-group shuffle is the identity */
    h = nb_relu(n, nb_conv_bn(n, h, nbname("%s.conv2", pre), nbname("%s.bn2", pre), mid, 3, stride, 1, mid));
    h = nb_conv_bn(n, h, nbname("%s.conv3", pre), nbname("%s.bn3", pre), out, 1, 1, 0, groups);
    if (stride == 2) h = nb_concat(n, h, nb_avgpool(n, x, 3, 2, 1));
    else h = nb_add(n, h, x);
    return nb_relu(n, h);
}

/* Builds "ShuffleV1"; NULL if name is anything else. */
Net *build_shufflev1(const char *name) {
    if (strcmp(name, "ShuffleV1")) { dkd_fail("build_shufflev1: '%s' is not ShuffleV1", name); return NULL; }
    static const int out_planes[3] = {240, 480, 960}, blocks[3] = {4, 8, 4};
    const int groups = 3;

    Net *n = net_new(name, FAMILY_SHUFFLE);
    int x = nb_input(n, 3, 32, 32);
    x = nb_relu(n, nb_conv_bn(n, x, "conv1", "bn1", 24, 1, 1, 0, 1));
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < blocks[l]; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "layer%d.%d", l + 1, i);
            int cat = i == 0 ? n->nodes[x].C : 0;   /* channels the shortcut will bring */
            x = shufflev1_block(n, x, pre, out_planes[l] - cat, i == 0 ? 2 : 1, groups);
        }
    }
    x = nb_avgpool(n, x, 4, 4, 0);
    nb_linear(n, x, "linear", 100);
    net_finalize(n);
    return n;
}
