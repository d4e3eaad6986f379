/* models/registry.c — model names and the 11 teacher -> student pairs.
 *
 * model_table: mdistiller's cifar_model_dict names for the 15
 * architectures the 11 DKD pairs use, each with the short names that appear in
 * mdistiller's config file names and experiment tags (res56, wrn40_2, mv2, ...)
 * as aliases, and whether it is one of the six teachers.
 *
 * pair_table: the resolved DKD settings (docs/recipe.md; the configs/cifar100/dkd yamls
 * laid over cfg.py's defaults): alpha 1, T 4, warm-up 20 epochs everywhere;
 * beta 8 unless a yaml sets 2 or 6; LR 0.05, or 0.01 for the three light
 * students (MobileNetV2, ShuffleV1, ShuffleV2).
 */
#include "dkd.h"

#include <stdio.h>
#include <string.h>

/* The builders, one per models/NAME.c file; each takes an mdistiller dict name. */
Net *build_resnet(const char *name);       /* models/resnet.c */
Net *build_resnet50(const char *name);     /* models/resnetv2.c */
Net *build_wrn(const char *name);          /* models/wrn.c */
Net *build_vgg(const char *name);          /* models/vgg.c */
Net *build_mobilenetv2(const char *name);  /* models/mobilenetv2.c */
Net *build_shufflev1(const char *name);    /* models/shufflenetv1.c */
Net *build_shufflev2(const char *name);    /* models/shufflenetv2.c */

const ModelInfo model_table[] = {
    /* name          aliases                        builder            teacher */
    {"resnet20",    "res20",                        build_resnet,      0},
    {"resnet32",    "res32",                        build_resnet,      0},
    {"resnet56",    "res56",                        build_resnet,      1},
    {"resnet110",   "res110",                       build_resnet,      1},
    {"resnet8x4",   "res8x4",                       build_resnet,      0},
    {"resnet32x4",  "res32x4",                      build_resnet,      1},
    {"ResNet50",    "res50",                        build_resnet50,    1},
    {"wrn_16_2",    "wrn16_2",                      build_wrn,         0},
    {"wrn_40_1",    "wrn40_1",                      build_wrn,         0},
    {"wrn_40_2",    "wrn40_2",                      build_wrn,         1},
    {"vgg8",        "vgg8_bn",                      build_vgg,         0},
    {"vgg13",       "vgg13_bn",                     build_vgg,         1},
    {"MobileNetV2", "mv2 mobile_half",              build_mobilenetv2, 0},
    {"ShuffleV1",   "shuv1",                        build_shufflev1,   0},
    {"ShuffleV2",   "shuv2",                        build_shufflev2,   0},
};
const int n_models = (int)(sizeof model_table / sizeof model_table[0]);

/* Is word one of the space-separated words of list? */
static int in_word_list(const char *list, const char *word) {
    size_t len = strlen(word);
    if (len == 0) return 0;
    for (const char *p = list; *p;) {
        while (*p == ' ') p++;
        size_t k = strcspn(p, " ");
        if (k == len && !strncmp(p, word, len)) return 1;
        p += k;
    }
    return 0;
}

const ModelInfo *model_find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < n_models; i++)
        if (!strcmp(model_table[i].name, name)) return &model_table[i];
    for (int i = 0; i < n_models; i++)
        if (in_word_list(model_table[i].aliases, name)) return &model_table[i];
    return NULL;
}

Net *model_build(const char *name) {
    const ModelInfo *m = model_find(name);
    if (!m) {
        char known[512] = "";
        size_t used = 0;
        for (int i = 0; i < n_models && used < sizeof known; i++)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s (%s)",
                                     i ? ", " : "", model_table[i].name, model_table[i].aliases);
        dkd_fail("unknown model '%s'; known: %s", name ? name : "(null)", known);
        return NULL;
    }
    return m->build(m->name);
}

const PairInfo pair_table[] = {
    /* teacher       student        tag (output directory)    alpha beta  T   warm-up lr */
    {"resnet56",   "resnet20",    "dkd,res56,res20",         1.0f, 2.0f, 4.0f, 20, 0.05f},
    {"resnet110",  "resnet32",    "dkd,res110,res32",        1.0f, 2.0f, 4.0f, 20, 0.05f},
    {"resnet32x4", "resnet8x4",   "dkd,res32x4,res8x4",      1.0f, 8.0f, 4.0f, 20, 0.05f},
    {"wrn_40_2",   "wrn_16_2",    "dkd,wrn_40_2,wrn_16_2",   1.0f, 6.0f, 4.0f, 20, 0.05f},
    {"wrn_40_2",   "wrn_40_1",    "dkd,wrn_40_2,wrn_40_1",   1.0f, 6.0f, 4.0f, 20, 0.05f},
    {"vgg13",      "vgg8",        "dkd,vgg13,vgg8",          1.0f, 6.0f, 4.0f, 20, 0.05f},
    {"resnet32x4", "ShuffleV1",   "dkd,res32x4,shuv1",       1.0f, 8.0f, 4.0f, 20, 0.01f},
    {"wrn_40_2",   "ShuffleV1",   "dkd,wrn_40_2,shuv1",      1.0f, 8.0f, 4.0f, 20, 0.01f},
    {"vgg13",      "MobileNetV2", "dkd,vgg13,mv2",           1.0f, 6.0f, 4.0f, 20, 0.01f},
    {"ResNet50",   "MobileNetV2", "dkd,res50,mv2",           1.0f, 8.0f, 4.0f, 20, 0.01f},
    {"resnet32x4", "ShuffleV2",   "dkd,res32x4,shuv2",       1.0f, 8.0f, 4.0f, 20, 0.01f},
};
const int n_pairs = (int)(sizeof pair_table / sizeof pair_table[0]);

const PairInfo *pair_find(const char *teacher, const char *student) {
    const ModelInfo *t = model_find(teacher), *s = model_find(student);
    if (!t || !s) return NULL;
    for (int i = 0; i < n_pairs; i++)
        if (!strcmp(pair_table[i].teacher, t->name) && !strcmp(pair_table[i].student, s->name))
            return &pair_table[i];
    return NULL;
}
