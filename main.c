/* main.c — the command line of dkd: one binary, one mode per first argument.
 *
 *   dkd train TEACHER STUDENT [flags]   distill (DKD by default, --method kd)
 *   dkd train MODEL [flags]             vanilla cross-entropy training (e.g. a teacher)
 *   dkd train --cfg FILE [KEY VALUE..]  the same from an mdistiller-schema YAML config
 *   dkd eval -m MODEL [-c CKPT] [flags] top-1 / top-5 / loss on the CIFAR-100 test set
 *   dkd bench [flags]                   throughput of training steps and inference
 *   dkd plot RUN_DIR... [-o out.png]    loss / accuracy curves as PNG
 *   dkd list                            models (parameters, MACs) and the 11 DKD pairs
 *   dkd help [MODE]                     this text, or a mode's own --help
 */
#include "dkd.h"

#include <stdio.h>
#include <string.h>


static void usage(FILE *f) {
    fprintf(f,
        "dkd — Decoupled Knowledge Distillation (CVPR 2022) on CIFAR-100, in C and CUDA\n"
        "\n"
        "usage: dkd MODE [args]\n"
        "  train TEACHER STUDENT   distill a student (DKD; --method kd for classic KD),\n"
        "                          with the pair's mdistiller hyper-parameters\n"
        "  train MODEL             train a model alone with cross-entropy (how teachers are made)\n"
        "  train --cfg FILE.yaml [KEY VALUE ...]\n"
        "                          mdistiller's command line: a config of configs/cifar100/ (or\n"
        "                          mdistiller's own), then overrides such as SOLVER.BATCH_SIZE 128\n"
        "  eval -m MODEL [-c CKPT] [-d cifar100] [-bs N]\n"
        "                          evaluate a checkpoint (mdistiller's or ours) on the test set\n"
        "  bench                   images/s of a DKD training step and of inference\n"
        "  plot RUN_DIR...         loss/accuracy curves of one or more runs as a PNG\n"
        "  table RUN_DIR|output/   the paper's accuracy tables from runs (paper, PyTorch, dkd, difference)\n"
        "  list                    the 15 models (parameters, MACs) and the 11 teacher->student pairs\n"
        "  help [MODE]             this text, or MODE --help\n"
        "\n"
        "Every mode takes --help. Models are named as in mdistiller (resnet56, wrn_40_2, ShuffleV1, ...)\n"
        "or by the config aliases (res56, wrn40_2, shuv1, mv2, ...). Example:\n"
        "  ./dkd train res56 res20 --teacher-ckpt download_ckpts/cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth\n"
        "  ./dkd train --cfg configs/cifar100/dkd/res56_res20.yaml SOLVER.EPOCHS 2\n"
        "  ./dkd eval -m resnet56 -c pretrain\n");
}

static int cmd_list(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: dkd list\n  prints every model with its parameter count, BN layers, state_dict entries and\n"
               "  MACs per 32x32 image, then the 11 DKD pairs with alpha, beta, T, warm-up and LR.\n");
        return 0;
    }
    printf("%-12s %-22s %12s %4s %8s %15s  %s\n", "model", "aliases", "params", "BN", "entries", "MACs/image", "role");
    for (int i = 0; i < n_models; i++) {
        Net *n = model_table[i].build(model_table[i].name);
        size_t params = n->n_params;
        printf("%-12s %-22s %12zu %4d %8d %15zu  %s\n", model_table[i].name, model_table[i].aliases, params, n->n_nbt,
               n->n_pinfo, net_macs(n), model_table[i].is_teacher ? "teacher" : "student");
        net_free(n);
    }
    printf("\n%-3s %-12s %-12s %-22s %5s %5s %4s %7s %6s\n", "#", "teacher", "student", "tag", "alpha", "beta", "T", "warmup", "lr");
    for (int i = 0; i < n_pairs; i++) {
        const PairInfo *p = &pair_table[i];
        printf("%-3d %-12s %-12s %-22s %5.1f %5.1f %4.1f %7d %6.2f\n", i + 1, p->teacher, p->student, p->tag, p->alpha,
               p->beta, p->T, p->warmup, p->lr);
    }
    printf("\nAll pairs: batch 64, 240 epochs, SGD momentum 0.9, weight decay 5e-4, LR x0.1 after epochs 150/180/210,\n"
           "loss = CE + min(epoch/warmup, 1) * (alpha*TCKD + beta*NCKD).\n");
    return 0;
}

int main(int argc, char **argv) {
    dkd_argv0 = argv[0];
    if (argc < 2) { usage(stderr); return 2; }
    const char *mode = argv[1];
    if (!strcmp(mode, "help") || !strcmp(mode, "--help") || !strcmp(mode, "-h")) {
        if (argc > 2) {
            char *hargv[] = {argv[2], (char *)"--help", NULL};
            if (!strcmp(argv[2], "train")) return cmd_train(2, hargv);
            if (!strcmp(argv[2], "eval")) return cmd_eval(2, hargv);
            if (!strcmp(argv[2], "bench")) return cmd_bench(2, hargv);
            if (!strcmp(argv[2], "plot")) return cmd_plot(2, hargv);
            if (!strcmp(argv[2], "list")) return cmd_list(2, hargv);
        }
        usage(stdout);
        return 0;
    }
    if (!strcmp(mode, "train")) return cmd_train(argc - 1, argv + 1);
    if (!strcmp(mode, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(mode, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(mode, "plot")) return cmd_plot(argc - 1, argv + 1);
    if (!strcmp(mode, "table")) return cmd_table(argc - 1, argv + 1);
    if (!strcmp(mode, "list")) return cmd_list(argc - 1, argv + 1);
    fprintf(stderr, "dkd: error: unknown mode '%s'\n\n", mode);
    usage(stderr);
    return 2;
}
