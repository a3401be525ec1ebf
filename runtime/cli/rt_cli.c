/*
 * rt_cli.c - the command line shared by cnnrun and every generated program: parses the
 * options (rt_cli_options.c) and runs the one command they select, --train
 * (rt_cli_train.c), --eval or --predict (rt_cli_eval.c), --bench (rt_cli_bench.c) or
 * --dump (rt_cli_dump.c). With those files, the only place in libcnnrt that prints results.
 */
#include "rt_cli_int.h"
#include "rt_dist.h"

#include <stdlib.h>
#include <string.h>

int rt_cli_main(int argc, char **argv, const char *prog, const rt_netdesc *d,
                const rt_train_cfg *defaults, rt_model_factory make_model, void *ctx)
{
    rt_cli_env e = {prog && *prog ? prog : (argc > 0 ? argv[0] : "cnnrun"), d, make_model, ctx,
                    ""};
    snprintf(e.default_weights, sizeof e.default_weights, "%s.weights",
             d->name[0] ? d->name : "model");
    /* MPI (runtime/dist/): started here for cnnrun and compiled programs alike; ranks other
     * than 0 keep stderr (errors name their rank) but print nothing on stdout */
    if (rt_dist_init(&argc, &argv) != 0)
        return RT_EXIT_RUN;
    if (!rt_dist_is_root() && !freopen("/dev/null", "w", stdout))
        rt_dist_abort("cannot silence stdout");
    rt_cli_args c;
    memset(&c, 0, sizeof c);
    if (defaults)
        c.cfg = *defaults;
    else
        rt_train_cfg_defaults(&c.cfg);
    c.cfg0 = c.cfg;
    c.nargs = argc > 1 ? argc - 1 : 0; /* what a checkpoint stores to run it again */
    c.args = argv + 1;
    char **stored = NULL;
    int nstored = 0;
    c.images = malloc(sizeof(char *) * (size_t)(argc > 0 ? argc : 1));
    if (!c.images) {
        rt_cli_error(&e, "out of memory");
        return RT_EXIT_RUN;
    }
    int rc = rt_cli_parse(&e, argc, argv, &c);
    if (rc < 0 && c.resume)
        rc = rt_cli_resume_args(&e, argc > 0 ? argv[0] : (char *)"cnnrun", &c, &stored, &nstored);
    if (rc < 0) {
        switch (c.mode) {
        case RT_M_TRAIN: rc = rt_cli_train(&e, &c); break;
        case RT_M_EVAL: rc = rt_cli_eval(&e, &c); break;
        case RT_M_BENCH: {
            rt_bench_cfg b = {c.bench_steps, c.cfg.batch, c.cfg.threads, c.profile,
                              c.cfg.seed, c.cfg.opt};
            rc = rt_cli_bench(&e, &b);
            break;
        }
        case RT_M_DUMP: {
            rt_dump_cfg dc = {c.dump, c.weights, c.cfg.batch, c.cfg.threads, c.train_mode,
                              c.cfg.seed};
            rc = rt_cli_dump(&e, &dc);
            break;
        }
        default: rc = rt_cli_predict(&e, &c); break;
        }
    }
    free(c.images);
    rt_names_free(stored, nstored);
    fflush(stdout);
    if (rc != RT_EXIT_OK && rc != RT_EXIT_INTERRUPTED && rt_dist_size() > 1) {
        /* MPI: a rank that fails alone (its data unreadable, say) would leave the others
         * waiting in a sum for ever: stop the job, naming the rank */
        char why[96];
        snprintf(why, sizeof why, "failed with exit status %d (its message is above)", rc);
        rt_dist_abort_status(why, rc);
    }
    return rc; /* MPI ends at exit (rt_dist.c), so that rt_cli_main may run again */
}

