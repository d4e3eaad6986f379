/* models/wrn.c — Wide ResNets of mdistiller's wrn.py:
 * wrn_16_2, wrn_40_1 (students) and wrn_40_2 (teacher).
 *
 * Depth = 6N + 4, widen factor K, widths 16, 16K, 32K, 64K, no dropout.
 *
 *   step    op                                               output C x H x W
 *   stem    conv1 3x3/1 pad 1 (no bias), 3->16 (no BN/ReLU)   16 x 32 x 32
 *   block1  N blocks 16->16K, stride 1                       16K x 32 x 32
 *   block2  N blocks 16K->32K, first stride 2                32K x 16 x 16
 *   block3  N blocks 32K->64K, first stride 2                64K x  8 x  8
 *   head    bn1 -> ReLU -> avg pool 8x8 -> fc Linear(64K,100) 100
 *
 *   model      N  K   params
 *   wrn_16_2   2  2   0.70 M
 *   wrn_40_1   6  1   0.57 M
 *   wrn_40_2   6  2   2.26 M
 *
 * Pre-activation BasicBlock(in -> out, stride s), keys "blockG.layer.i.":
 *   a = ReLU(bn1(x)); h = conv2(ReLU(bn2(conv1(a))))  (3x3/s then 3x3/1)
 *   out = x + h                  when in = out
 *   out = convShortcut(a) + h    otherwise: 1x1/s conv, no BN, on the ACTIVATED a
 *   no ReLU after the add (the next block's bn1/ReLU follows).
 * Key order in a block: bn1, conv1, bn2, conv2, convShortcut. wrn_40_1 (K = 1)
 * has no convShortcut in block1 (16 -> 16).
 *
 * The BN quirk (docs/batchnorm.md, last section): mdistiller's forward calls block2.layer.0.bn1,
 * block3.layer.0.bn1 and the final bn1 a second time on the same tensors (to
 * build "preact_feats"); in training mode those three BNs update their running
 * statistics twice per step. We set bn_updates = 2 on them.
 * Initialisation: FAMILY_WRN (conv Kaiming fan_out, fc weight uniform, fc bias 0). */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

/* One pre-activation block. double_bn1: the BN quirk applies to this bn1. */
static int wrn_block(Net *n, int x, const char *pre, int out, int stride, int double_bn1) {
    int in = n->nodes[x].C;
    int bn1 = nb_bn(n, x, nbname("%s.bn1", pre));
    if (double_bn1) n->nodes[bn1].bn_updates = 2;
    int a = nb_relu(n, bn1);
    int h = nb_conv(n, a, nbname("%s.conv1", pre), out, 3, stride, 1, 1, 0);
    h = nb_relu(n, nb_bn(n, h, nbname("%s.bn2", pre)));
    h = nb_conv(n, h, nbname("%s.conv2", pre), out, 3, 1, 1, 1, 0);
    int sc = x;
    if (in != out) {
        sc = nb_conv(n, a, nbname("%s.convShortcut", pre), out, 1, stride, 0, 1, 0);
    }
    return nb_add(n, sc, h);
}

/* Builds wrn_16_2 / wrn_40_1 / wrn_40_2 by name; NULL if unknown. */
Net *build_wrn(const char *name) {
    static const struct { const char *name; int depth, k; } cfg[] = {
        {"wrn_16_2", 16, 2}, {"wrn_40_1", 40, 1}, {"wrn_40_2", 40, 2},
    };
    int m = -1;
    for (int i = 0; i < (int)(sizeof cfg / sizeof cfg[0]); i++)
        if (!strcmp(name, cfg[i].name)) m = i;
    if (m < 0) { dkd_fail("build_wrn: '%s' is not a WideResNet", name); return NULL; }
    int N = (cfg[m].depth - 4) / 6, K = cfg[m].k;
    int width[3] = {16 * K, 32 * K, 64 * K};

    Net *n = net_new(name, FAMILY_WRN);
    int x = nb_input(n, 3, 32, 32);
    x = nb_conv(n, x, "conv1", 16, 3, 1, 1, 1, 0);
    for (int g = 0; g < 3; g++) {
        for (int i = 0; i < N; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "block%d.layer.%d", g + 1, i);
            int first = i == 0;
            x = wrn_block(n, x, pre, width[g], (g > 0 && first) ? 2 : 1, g > 0 && first);
        }
    }
    int bn1 = nb_bn(n, x, "bn1");
    n->nodes[bn1].bn_updates = 2;           /* the quirk, third BN */
    x = nb_relu(n, bn1);
    x = nb_avgpool(n, x, 8, 8, 0);
    nb_linear(n, x, "fc", 100);
    net_finalize(n);
    return n;
}
