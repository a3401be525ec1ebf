/*
 * train_section.h - reads the train { } section of a .cnn file into the runtime's
 * training configuration (defaults the command line can override).
 */
#ifndef CNN_TRAIN_SECTION_H
#define CNN_TRAIN_SECTION_H

#include "ast.h"
#include "cnnrt.h"
#include "layers.h"

/* Reports bad settings through sink; fills only what the section sets. */
/* 1 when word is a setting of the train section (to hint where a misplaced one goes). */
int train_section_is_setting(const char *word);
void train_section_read(const ast_stmt *train, rt_train_cfg *cfg, cnn_errsink *sink);

#endif
