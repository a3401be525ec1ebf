/*
 * test_collapse.c - when the "collapsed to one class" note after training fires (the rule
 * in runtime/cli/rt_cli_collapse.c) and what advice it gives: both sides of each part of
 * the rule, with losses chosen around 0.9 x ln K worked out by hand (ln 2 = 0.693147,
 * 0.9 ln 2 = 0.623832; ln 4 = 1.386294, 0.9 ln 4 = 1.247665).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_cli_int.h"

/* A history of `epochs` epochs whose training loss ends at `last`. */
static rt_history hist(int epochs, double last)
{
    static double loss[64];
    rt_history h = {0};
    h.epochs = epochs;
    for (int i = 0; i < epochs; i++) loss[i] = 2.0 - (2.0 - last) * i / (epochs > 1 ? epochs - 1 : 1);
    h.train_loss = loss;
    return h;
}

/* 2 classes, 10 test images (6 of class 0, 4 of class 1), all predicted as class 1 */
static const int all_one[4] = {0, 6, 0, 4};

START_TEST(t_rule)
{
    rt_history h = hist(8, 0.69);
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), 1);   /* long run, loss of a guess */
    h = hist(3, 0.69);
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), -1);  /* 3 epochs: not judged */
    h = hist(4, 0.69);
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), -1);  /* 4: still too short */
    h = hist(5, 0.69);
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), 1);   /* 5: judged */
    h = hist(8, 0.62);
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), -1);  /* below 0.623832: it learned */
    h = hist(8, 0.63);
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), 1);   /* above it: a guess */
    /* 4 classes: 1.24 is under 0.9 ln 4, 1.25 over */
    int conf4[16] = {0};
    for (int t = 0; t < 4; t++) conf4[t * 4 + 2] = 3;
    h = hist(10, 1.24);
    ck_assert_int_eq(rt_collapse_judge(conf4, 4, 12, &h), -1);
    h = hist(10, 1.25);
    ck_assert_int_eq(rt_collapse_judge(conf4, 4, 12, &h), 2);
    /* predictions in two classes, or one true class only: no collapse */
    static const int mixed[4] = {5, 1, 0, 4}, one_true[4] = {0, 10, 0, 0};
    h = hist(8, 0.69);
    ck_assert_int_eq(rt_collapse_judge(mixed, 2, 10, &h), -1);
    ck_assert_int_eq(rt_collapse_judge(one_true, 2, 10, &h), -1);
    /* a non-finite loss is no evidence */
    h = hist(8, 0.69);
    h.train_loss[7] = NAN;
    ck_assert_int_eq(rt_collapse_judge(all_one, 2, 10, &h), -1);
}
END_TEST

/* The note for a network of the given layers, as printed. */
static char *note(const rt_layer *layers, int n, const rt_history *h)
{
    rt_netdesc d;
    memset(&d, 0, sizeof d);
    d.layers = (rt_layer *)layers;
    d.nlayers = n;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(f);
    char *names[] = {"cat", "dog"};
    rt_collapse_note(f, &d, all_one, 2, 10, h, names);
    fclose(f);
    return text;
}

START_TEST(t_advice)
{
    rt_layer plain[3], withbn[4], norelu[2];
    memset(plain, 0, sizeof plain);
    memset(withbn, 0, sizeof withbn);
    memset(norelu, 0, sizeof norelu);
    plain[0].kind = RT_INPUT;
    plain[1].kind = RT_CONV, plain[1].act = RT_ACT_RELU;
    plain[2].kind = RT_DENSE;
    withbn[0].kind = RT_INPUT;
    withbn[1].kind = RT_CONV;
    withbn[2].kind = RT_BATCHNORM;
    withbn[3].kind = RT_ACTIVATION, withbn[3].act = RT_ACT_RELU;
    norelu[0].kind = RT_INPUT;
    norelu[1].kind = RT_DENSE, norelu[1].act = RT_ACT_TANH;
    rt_history h = hist(8, 0.69);

    char *t = note(plain, 3, &h);
    ck_assert_msg(strstr(t, "predicts 'dog' for all 10 test images") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "after 8 epochs") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "relu") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "or batchnorm after the convolutions") != NULL, "%s", t);
    free(t);

    t = note(withbn, 4, &h); /* it has batchnorm: never suggest adding it */
    ck_assert_msg(strstr(t, "collapsed to one class") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "batchnorm") == NULL, "%s", t);
    ck_assert_msg(strstr(t, "relu") != NULL, "%s", t);
    free(t);

    t = note(norelu, 2, &h); /* no relu: no dead relu units */
    ck_assert_msg(strstr(t, "collapsed to one class") != NULL, "%s", t);
    ck_assert_msg(strstr(t, "relu") == NULL, "%s", t);
    free(t);

    h = hist(3, 0.69); /* the 3-epoch run: nothing at all */
    t = note(plain, 3, &h);
    ck_assert_str_eq(t, "");
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("collapse");
    TCase *tc = tcase_create("rule");
    tcase_add_test(tc, t_rule);
    tcase_add_test(tc, t_advice);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
