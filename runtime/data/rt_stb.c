/*
 * rt_stb.c - the one file that compiles Debian's stb headers (libstb-dev, found with
 * pkg-config) into libcnnrt instead of linking its libstb.so, so that sanitizer and fuzz
 * builds see inside the decoders: stb_image for JPEG, PNG and BMP only (binary PGM/PPM is
 * decoded by rt_image_pnm.c; GIF, PSD, HDR, PIC and TGA never reach a decoder), capped at
 * RT_IMAGE_FILE_MAX_SIDE pixels a side, plus stb_image_write (resizing is our own:
 * rt_resize_impl.h).
 * Built alone with -fwrapv (runtime/data.am): see there.
 */
#include "rt_image_int.h"

/* Third-party code, kept as Debian ships it: its own warnings are not ours to fix. */
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wunused-parameter"
#pragma clang diagnostic ignored "-Wsign-compare"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#pragma clang diagnostic ignored "-Wimplicit-fallthrough"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wtype-limits"
#endif

/* The C library first, outside the hidden block below (its functions stay default). */
#include <assert.h>
#if defined(__SSE2__)
#include <emmintrin.h> /* stb_image includes it inside the hidden block otherwise */
#endif
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Not exported from libcnnrt: a program linking both libcnnrt and Debian's libstb (the
 * tests write images with it) keeps the two apart. */
#pragma GCC visibility push(hidden)

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_NO_STDIO           /* the runtime reads the file itself (rt_image.c) */
#define STBI_NO_LINEAR
#define STBI_MAX_DIMENSIONS RT_IMAGE_FILE_MAX_SIDE
#include <stb_image.h>


#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#pragma GCC visibility pop
