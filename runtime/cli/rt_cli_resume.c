/*
 * rt_cli_resume.c - `--resume FILE`: the run a checkpoint saved, continued with the
 * arguments it was started with (stored in the checkpoint), so that `PROG --resume FILE`
 * alone is enough. Other settings on the command line must be the ones of that run (a
 * resumed run is the same run, bit for bit); only how it reports may change.
 */
#include "rt_cli_int.h"

#include <stdlib.h>
#include <string.h>

/* Options that change what a run reports or where, never what it computes. */
static int presentational(int o)
{
    return o == RT_O_RESUME || o == RT_O_QUIET || o == RT_O_REPORT || o == RT_O_PLOT ||
           o == RT_O_LOG || o == RT_O_CHECKPOINT || o == RT_O_CACHEDIR || o == RT_O_NOCACHE ||
           o == RT_O_OUT;
}

/* Option o's value in args[0..n) ("" for a flag), or NULL when it is not there. */
static const char *value_of(int n, char **args, int o)
{
    const char *name = rt_cli_option_name(o);
    size_t len = strlen(name);
    for (int i = 0; i < n; i++) {
        if (strncmp(args[i], name, len) != 0)
            continue;
        if (args[i][len] == '=')
            return args[i] + len + 1;
        if (args[i][len])
            continue;
        if (!rt_cli_option_takes_value(o))
            return "";
        return i + 1 < n ? args[i + 1] : "";
    }
    return NULL;
}

const char *rt_cli_checkpoint_path(const rt_cli_env *e, const rt_cli_args *a, char *buf,
                                   size_t n)
{
    if (a->checkpoint)
        return a->checkpoint;
    const char *out = a->out ? a->out : e->default_weights;
    const char *slash = strrchr(out, '/'), *dot = strrchr(out, '.');
    size_t stem = dot && (!slash || dot > slash + 1) ? (size_t)(dot - out) : strlen(out);
    snprintf(buf, n, "%.*s.ckpt", (int)(stem < 4000 ? stem : 4000), out);
    return buf;
}

int rt_cli_resume_args(const rt_cli_env *e, char *prog, rt_cli_args *a, char ***stored,
                       int *nstored)
{
    char err[RT_ERRLEN];
    char **sa;
    int ns;
    if (rt_checkpoint_args(a->resume, e->d, &ns, &sa, err) < 0) {
        rt_cli_error(e, "%s", err);
        return RT_EXIT_RUN;
    }
    /* every setting the command line repeats must be the stored run's */
    for (int o = 0; o < RT_NOPTS; o++) {
        if (!a->given[o] || presentational(o))
            continue;
        const char *mine = value_of(a->nargs, a->args, o), *theirs = value_of(ns, sa, o);
        if (!mine || (theirs && strcmp(mine, theirs) == 0))
            continue;
        if (theirs)
            rt_cli_error(e, "%s %s differs from the run in %s (%s %s): a resumed run goes on "
                         "with its own settings; start a new run (without --resume) to change "
                         "them", rt_cli_option_name(o), mine, a->resume, rt_cli_option_name(o),
                         theirs);
        else
            rt_cli_error(e, "%s %s was not a setting of the run in %s: a resumed run goes on "
                         "with its own settings; start a new run (without --resume) to change "
                         "them", rt_cli_option_name(o), mine, a->resume);
        rt_names_free(sa, ns);
        return RT_EXIT_USAGE;
    }
    /* parse the stored arguments as the run's own, keeping this command line's way of
     * reporting (--quiet, --report, --plot, --log, --checkpoint) where it gives one */
    rt_cli_args r;
    memset(&r, 0, sizeof r);
    r.cfg = a->cfg0;
    r.cfg0 = a->cfg0;
    r.images = a->images;
    char **argv = malloc(sizeof(char *) * (size_t)(ns + 1));
    if (!argv) {
        rt_names_free(sa, ns);
        rt_cli_error(e, "out of memory");
        return RT_EXIT_RUN;
    }
    argv[0] = prog;
    memcpy(argv + 1, sa, sizeof(char *) * (size_t)ns);
    int rc = rt_cli_parse(e, ns + 1, argv, &r);
    free(argv);
    if (rc >= 0 || r.mode != RT_M_TRAIN) {
        rt_cli_error(e, "the arguments stored in %s are not a training run's", a->resume);
        rt_names_free(sa, ns);
        return RT_EXIT_RUN;
    }
    r.resume = a->resume;
    r.quiet |= a->quiet;
    if (a->report)
        r.report = a->report;
    if (a->plot)
        r.plot = a->plot;
    if (a->log)
        r.log = a->log;
    if (a->checkpoint)
        r.checkpoint = a->checkpoint;
    if (a->out)
        r.out = a->out;
    if (a->cache_dir)
        r.cache_dir = a->cache_dir;
    r.no_cache |= a->no_cache;
    r.nargs = ns;
    r.args = sa;
    *a = r;
    *stored = sa;
    *nstored = ns;
    return -1;
}
