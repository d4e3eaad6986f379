/* models/shufflenetv2.c — ShuffleNet V2 as in mdistiller ShuffleNetv2.py
 * ("ShuffleV2" = net_size 1: widths 116/232/464, last conv 1024, units 3/7/3). A student: 1.36 M parameters, 44.5 M MACs per image.
 *
 *   step    op                                                   output C x H x W
 *   stem    conv1 1x1 (!), 3->24, no bias; bn1; ReLU (no max-pool)  24 x 32 x 32
 *   layer1  layer1.0 DownBlock(24->116), layer1.1-3 BasicBlock     116 x 16 x 16
 *   layer2  DownBlock(116->232), 7 BasicBlocks                     232 x  8 x  8
 *   layer3  DownBlock(232->464), 3 BasicBlocks                     464 x  4 x  4
 *   head    conv2 1x1 464->1024; bn2; ReLU; avg pool 4x4;
 *           linear Linear(1024, 100)                               100
 *
 * DownBlock(in -> out), mid = out/2 (both branches halve the map):
 *   left : conv1 3x3/2 depthwise on in -> bn1 (no ReLU) -> conv2 1x1 in->mid -> bn2 -> ReLU
 *   right: conv3 1x1 in->mid -> bn3 -> ReLU -> conv4 3x3/2 depthwise -> bn4 (no ReLU)
 *          -> conv5 1x1 mid->mid -> bn5 -> ReLU
 *   out  = shuffle(concat[left, right], 2 groups)
 * BasicBlock(C), c = C/2: x1 = channels 0..c-1 (passed through), x2 = c..C-1;
 *   branch(x2) = conv1 1x1 -> bn1 -> ReLU -> conv2 3x3/1 depthwise -> bn2 (no ReLU)
 *                -> conv3 1x1 -> bn3 -> ReLU
 *   out = shuffle(concat[x1, branch], 2 groups)
 * No conv has a bias. Initialisation: FAMILY_SHUFFLE (PyTorch default uniform). */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

/* conv -> bn (-> ReLU when relu): the unit both blocks are made of. */
static int conv_bn(Net *n, int x, const char *pre, int k, int OC, int K, int S, int G, int relu) {
    x = nb_conv_bn(n, x, nbname("%s.conv%d", pre, k), nbname("%s.bn%d", pre, k), OC, K, S, K / 2, G);
    return relu ? nb_relu(n, x) : x;
}

static int down_block(Net *n, int x, const char *pre, int out) {
    int in = n->nodes[x].C, mid = out / 2;
    int l = conv_bn(n, x, pre, 1, in, 3, 2, in, 0);     /* depthwise, stride 2 */
    l = conv_bn(n, l, pre, 2, mid, 1, 1, 1, 1);
    int r = conv_bn(n, x, pre, 3, mid, 1, 1, 1, 1);
    r = conv_bn(n, r, pre, 4, mid, 3, 2, mid, 0);       /* depthwise, stride 2 */
    r = conv_bn(n, r, pre, 5, mid, 1, 1, 1, 1);
    return nb_shuffle(n, nb_concat(n, l, r), 2);
}

static int basic_block(Net *n, int x, const char *pre) {
    int C = n->nodes[x].C, c = C / 2;
    int x1 = nb_split(n, x, 0, c), x2 = nb_split(n, x, c, C - c);
    int h = conv_bn(n, x2, pre, 1, C - c, 1, 1, 1, 1);
    h = conv_bn(n, h, pre, 2, C - c, 3, 1, C - c, 0);   /* depthwise */
    h = conv_bn(n, h, pre, 3, C - c, 1, 1, 1, 1);
    return nb_shuffle(n, nb_concat(n, x1, h), 2);
}

/* Builds "ShuffleV2"; NULL if name is anything else. */
Net *build_shufflev2(const char *name) {
    if (strcmp(name, "ShuffleV2")) { dkd_fail("build_shufflev2: '%s' is not ShuffleV2", name); return NULL; }
    static const int out_ch[3] = {116, 232, 464}, units[3] = {3, 7, 3};

    Net *n = net_new(name, FAMILY_SHUFFLE);
    int x = nb_input(n, 3, 32, 32);
    x = nb_relu(n, nb_conv_bn(n, x, "conv1", "bn1", 24, 1, 1, 0, 1));
    for (int l = 0; l < 3; l++) {
        char pre[32];
        snprintf(pre, sizeof pre, "layer%d.0", l + 1);
        x = down_block(n, x, pre, out_ch[l]);
        for (int i = 1; i <= units[l]; i++) {
            snprintf(pre, sizeof pre, "layer%d.%d", l + 1, i);
            x = basic_block(n, x, pre);
        }
    }
    x = nb_relu(n, nb_conv_bn(n, x, "conv2", "bn2", 1024, 1, 1, 0, 1));
    x = nb_avgpool(n, x, 4, 4, 0);
    nb_linear(n, x, "linear", 100);
    net_finalize(n);
    return n;
}
