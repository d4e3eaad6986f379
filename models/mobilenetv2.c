/* models/mobilenetv2.c — MobileNetV2 as mdistiller builds it for CIFAR
 * (mobilenetv2.py: mobile_half = expansion T 6, width multiplier 0.5; dict name
 * "MobileNetV2"). A student; 0.81 M parameters and only
 * 6.5 M MACs per image, the cheapest model of the set.
 *
 *   step      op                                             output C x H x W
 *   conv1     conv1.0 3x3 STRIDE 2 pad 1, 3->16; conv1.1 BN; ReLU  16 x 16 x 16
 *   blocks.0  1 block,  t=1, ->8,   stride 1                    8 x 16 x 16
 *   blocks.1  2 blocks, t=6, ->12,  first stride 1             12 x 16 x 16
 *   blocks.2  3 blocks, t=6, ->16,  first stride 2             16 x  8 x  8
 *   blocks.3  4 blocks, t=6, ->32,  first stride 2             32 x  4 x  4
 *   blocks.4  3 blocks, t=6, ->48,  first stride 1             48 x  4 x  4
 *   blocks.5  3 blocks, t=6, ->80,  first stride 2             80 x  2 x  2
 *   blocks.6  1 block,  t=6, ->160, stride 1                  160 x  2 x  2
 *   conv2     conv2.0 1x1 160->1280 (NOT halved); conv2.1 BN; ReLU  1280 x 2 x 2
 *   head      AvgPool2d(2, ceil_mode) = exact 2x2 mean; classifier.0 Linear(1280,100)
 * (The base widths 32 | 16, 24, 32, 64, 96, 160, 320 are halved with int().)
 *
 * InvertedResidual(inp -> oup, stride s, expansion t), hidden = inp*t, all
 * modules inside the Sequential "conv":
 *   conv.0 1x1 inp->hidden, conv.1 BN, ReLU,
 *   conv.3 3x3/s DEPTHWISE (groups = hidden), conv.4 BN, ReLU,
 *   conv.6 1x1 hidden->oup, conv.7 BN (linear bottleneck: no ReLU);
 *   output = x + conv(x) when s = 1 and inp = oup, else conv(x).
 * CIFAR differences from the ImageNet model: plain ReLU (not ReLU6), the t = 1
 * block keeps its 1x1 expansion conv, stride-2 stem. No conv has a bias.
 * Initialisation: FAMILY_MBV2 (conv Kaiming fan_out, classifier N(0,0.01^2), bias 0). */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

static int inverted_residual(Net *n, int x, const char *pre, int oup, int stride, int t) {
    int inp = n->nodes[x].C, hidden = inp * t;
    int h = nb_relu(n, nb_conv_bn(n, x, nbname("%s.conv.0", pre), nbname("%s.conv.1", pre), hidden, 1, 1, 0, 1));
    h = nb_relu(n, nb_conv_bn(n, h, nbname("%s.conv.3", pre), nbname("%s.conv.4", pre), hidden, 3, stride, 1, hidden));
    h = nb_conv_bn(n, h, nbname("%s.conv.6", pre), nbname("%s.conv.7", pre), oup, 1, 1, 0, 1);
    if (stride == 1 && inp == oup) h = nb_add(n, x, h);
    return h;
}

/* Builds "MobileNetV2" (mobile_half); NULL if name is anything else. */
Net *build_mobilenetv2(const char *name) {
    if (strcmp(name, "MobileNetV2")) { dkd_fail("build_mobilenetv2: '%s' is not MobileNetV2", name); return NULL; }
    /* t, c (base width), n blocks, s (first stride): the ImageNet table */
    static const int setting[7][4] = {
        {1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
    };
    const double width_mult = 0.5;

    Net *n = net_new(name, FAMILY_MBV2);
    int x = nb_input(n, 3, 32, 32);
    x = nb_relu(n, nb_conv_bn(n, x, "conv1.0", "conv1.1", (int)(32 * width_mult), 3, 2, 1, 1));
    for (int b = 0; b < 7; b++) {
        int oup = (int)(setting[b][1] * width_mult);
        for (int i = 0; i < setting[b][2]; i++) {
            char pre[32];
            snprintf(pre, sizeof pre, "blocks.%d.%d", b, i);
            x = inverted_residual(n, x, pre, oup, i == 0 ? setting[b][3] : 1, setting[b][0]);
        }
    }
    x = nb_relu(n, nb_conv_bn(n, x, "conv2.0", "conv2.1", 1280, 1, 1, 0, 1));
    x = nb_avgpool(n, x, 2, 2, 0);          /* AvgPool2d(2, ceil_mode=True) on 2x2 */
    nb_linear(n, x, "classifier.0", 100);
    net_finalize(n);
    return n;
}
