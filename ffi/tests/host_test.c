/* A hosted C program against ember.h: runs the vectors of `ember export
 * --vectors DIR` through libember_ffi.a and checks every int8 logit bit for
 * bit, then refuses bad arguments (and, given an `--f32` export, runs
 * it). Usage: host_test VECTORS_DIR [F32_BLOB].
 * Prints RESULT: PASS and exits 0, or names the first failure and exits 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ember.h"

static int failures = 0;
#define CHECK(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; } } while (0)

static unsigned char *slurp(const char *dir, const char *name, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", dir, name[0] ? "/" : "", name);
    FILE *f = fopen(path, "rb");
    if (!f) { printf("cannot open %s\n", path); exit(1); }
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    /* 16-byte aligned, with room to misalign by one. */
    unsigned char *p = aligned_alloc(16, (*len + 32) / 16 * 16);
    if (!p || fread(p, 1, *len, f) != *len) { printf("cannot read %s\n", path); exit(1); }
    fclose(f);
    return p;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) { printf("usage: host_test VECTORS_DIR [F32_BLOB]\n"); return 2; }
    size_t blob_len, images_len, logits_len, f32_len = 0;
    unsigned char *blob = slurp(argv[1], "model.bin", &blob_len);
    unsigned char *images = slurp(argv[1], "images.bin", &images_len);
    unsigned char *want = slurp(argv[1], "logits.bin", &logits_len);
    unsigned char *f32blob = argc == 3 ? slurp(argv[2], "", &f32_len) : NULL;

    ember_model_t model;
    int32_t rc = ember_open(blob, blob_len, &model);
    CHECK(rc == EMBER_OK, "ember_open: %s", ember_strerror(rc));
    size_t n_in = ember_input_len(&model), n_out = ember_output_len(&model);
    size_t scratch_len = ember_scratch_bytes(&model);
    CHECK(n_in == 784 && n_out > 0 && scratch_len > 0, "sizes %zu %zu %zu", n_in, n_out, scratch_len);
    uint8_t *scratch = malloc(scratch_len);
    int8_t logits[64];
    size_t count = images_len / n_in, differ = 0;
    CHECK(logits_len == count * n_out, "logits.bin holds %zu bytes for %zu images", logits_len, count);
    for (size_t i = 0; i < count; i++) {
        rc = ember_infer_u8(&model, images + i * n_in, scratch, scratch_len, logits, n_out);
        CHECK(rc == EMBER_OK, "infer %zu: %s", i, ember_strerror(rc));
        int best = 0;
        for (size_t c = 0; c < n_out; c++) {
            if ((uint8_t)logits[c] != want[i * n_out + c]) differ++;
            if (logits[c] > logits[best]) best = (int)c;
        }
        int32_t p = ember_predict_u8(&model, images + i * n_in, scratch, scratch_len);
        CHECK(n_out == 1 || p == best, "predict %zu: %d, arg-max %d", i, p, best);
    }
    printf("ember from C: %zu images, %zu logits differ from the host\n", count, differ);
    CHECK(differ == 0, "%zu logits differ", differ);

    /* Bad arguments: each refused with its code, nothing written. */
    CHECK(ember_open(NULL, blob_len, &model) == EMBER_ERR_NULL, "NULL blob");
    CHECK(ember_open(blob, blob_len, NULL) == EMBER_ERR_NULL, "NULL model");
    CHECK(ember_infer_u8(&model, NULL, scratch, scratch_len, logits, n_out) == EMBER_ERR_NULL, "NULL pixels");
    CHECK(ember_infer_u8(&model, images, NULL, scratch_len, logits, n_out) == EMBER_ERR_NULL, "NULL scratch");
    CHECK(ember_infer_u8(&model, images, scratch, scratch_len, NULL, n_out) == EMBER_ERR_NULL, "NULL logits");
    CHECK(ember_infer_u8(&model, images, scratch, scratch_len - 1, logits, n_out) == EMBER_ERR_SCRATCH, "short scratch");
    CHECK(ember_infer_u8(&model, images, scratch, scratch_len, logits, n_out - 1) == EMBER_ERR_LENGTH, "short logits");
    CHECK(ember_predict_u8(&model, images, scratch, 1) == EMBER_ERR_SCRATCH, "predict, short scratch");
    CHECK(ember_input_len(NULL) == 0 && ember_output_len(NULL) == 0 && ember_scratch_bytes(NULL) == 0, "NULL sizes");
    memmove(blob + 1, blob, blob_len);
    ember_model_t other;
    CHECK(ember_open(blob + 1, blob_len, &other) == EMBER_ERR_MISALIGNED, "misaligned blob");
    CHECK(ember_infer_u8(&other, images, scratch, scratch_len, logits, n_out) == EMBER_ERR_MODEL, "failed open leaves no model");
    memmove(blob, blob + 1, blob_len);
    blob[blob_len / 2] ^= 0x40;
    CHECK(ember_open(blob, blob_len, &other) == EMBER_ERR_CHECKSUM, "flipped bit");
    CHECK(ember_open(blob, 10, &other) == EMBER_ERR_TRUNCATED, "10 bytes");
    CHECK(ember_open(images, 784, &other) == EMBER_ERR_BAD_MAGIC || ember_open(images, 784, &other) == EMBER_ERR_MISALIGNED, "not a blob");
    /* An f32 blob: no int8 inference, but f32 inference works. */
    if (f32blob) {
        rc = ember_open(f32blob, f32_len, &other);
        CHECK(rc == EMBER_OK, "f32 open: %s", ember_strerror(rc));
        uint8_t *s2 = malloc(ember_scratch_bytes(&other));
        CHECK(ember_infer_u8(&other, images, s2, ember_scratch_bytes(&other), logits, n_out) == EMBER_ERR_DTYPE, "f32 blob, int8 call");
        float y[64];
        rc = ember_infer_f32(&other, images, s2, ember_scratch_bytes(&other), y, ember_output_len(&other));
        CHECK(rc == EMBER_OK, "infer_f32: %s", ember_strerror(rc));
    }
    float y1[64];
    CHECK(ember_infer_f32(&model, images, scratch, scratch_len, y1, n_out) == EMBER_ERR_DTYPE, "int8 blob, f32 call");
    for (int c = 0; c >= -12; c--) CHECK(ember_strerror(c) != NULL && ember_strerror(c)[0], "strerror %d", c);
    printf(failures ? "RESULT: FAIL\n" : "RESULT: PASS\n");
    return failures ? 1 : 0;
}
