/*
 * input.c - the compiler's side of `input CxHxW`: channels first, as PyTorch writes it.
 */
#include "cnn_op.h"

static const cnn_layer_info WORDS[] = {
    {"input", "", "input CxHxW", "", RT_INPUT, RT_ACT_NONE, 1, 1},
};

static void positional(cnn_chk *c, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    if (v->kind != VAL_DIMS || v->ndims != 3) {
        CNN_FAIL(c, v->loc, "the input is channels x height x width, e.g. input 3x128x128",
                 "input needs a size CxHxW, not '%s'", v->word);
        return;
    }
    for (int i = 0; i < 3; i++)
        if (v->dims[i] < 1 || v->dims[i] > 65536) {
            CNN_FAIL(c, v->loc, "each of C, H and W is from 1 to 65536", "input size '%s' is out of range", v->word);
            return;
        }
    n->L.out = (rt_shape){(int)v->dims[0], (int)v->dims[1], (int)v->dims[2]};
}

const cnn_op cnn_op_input = {
    .kind = RT_INPUT,
    .words = WORDS,
    .nwords = 1,
    .positional = positional,
};
