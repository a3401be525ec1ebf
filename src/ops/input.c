/*
 * input.c - the compiler's side of `input CxHxW`: channels first, as PyTorch writes it
 * (channels last, as Keras writes it, is caught with the size it meant).
 */
#include "cnn_op.h"

static const cnn_layer_info WORDS[] = {
    {"input", "", "input CxHxW", "", RT_INPUT, RT_ACT_NONE, 1, 1},
};

static void positional(cnn_chk *c_chk, int idx, const ast_value *v, ir_node *n)
{
    (void)idx;
    if (v->kind != VAL_DIMS || v->ndims != 3) {
        CNN_FAIL(c_chk, v->loc, "the input is channels x height x width, e.g. input 3x128x128",
                 "input needs a size CxHxW, not '%s'", v->word);
        return;
    }
    for (int i = 0; i < 3; i++)
        if (v->dims[i] < 1 || v->dims[i] > 65536) {
            CNN_FAIL(c_chk, v->loc, "each of C, H and W is from 1 to 65536", "input size '%s' is out of range", v->word);
            return;
        }
    /* Channels last (HxWxC, as Keras and NumPy images write it): the images the runtime
     * loads have 1 to 4 channels, so a last size of 1, 3 or 4 after a first size above 4
     * can only be an image written the other way round. A first size of 1 to 4 is taken
     * as written (input 3x32x3 is a 3-channel 32x3 image), and 32x32x32 (no image, but a
     * valid tensor for the compiled API) is left alone. */
    long c = v->dims[0], h = v->dims[1], w = v->dims[2];
    if (c > 4 && (w == 1 || w == 3 || w == 4)) {
        char hint[160];
        snprintf(hint, sizeof hint, "channels come first: did you mean `input %ldx%ldx%ld`?", w, c, h);
        CNN_FAIL(c_chk, v->loc, hint, "input %s puts the channels last (height x width x channels)", v->word);
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
