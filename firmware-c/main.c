/* ember in C firmware: the exported blob and test images embedded in
 * flash, integer-only inference through libember_ffi.a, every logit
 * compared with the host's, reported over semihosting. */
#include <stdio.h>
#include "ember.h"

extern const uint8_t model_blob[], model_blob_end[];
extern const uint8_t images[], images_end[];
extern const int8_t logits[], logits_end[];
extern const uint8_t labels[], labels_end[];

static uint8_t scratch[64 * 1024] __attribute__((aligned(16)));

int main(void) {
    ember_model_t model;
    int32_t rc = ember_open(model_blob, (size_t)(model_blob_end - model_blob), &model);
    if (rc != EMBER_OK) {
        printf("ember_open: %s\nRESULT: FAIL\n", ember_strerror(rc));
        return 1;
    }
    size_t n_in = ember_input_len(&model), n_out = ember_output_len(&model);
    size_t need = ember_scratch_bytes(&model);
    size_t count = (size_t)(images_end - images) / n_in;
    if (need > sizeof scratch || n_out > 16 || (size_t)(logits_end - logits) != count * n_out) {
        printf("scratch %u, outputs %u: the vectors do not fit this example\nRESULT: FAIL\n",
               (unsigned)need, (unsigned)n_out);
        return 1;
    }
    size_t differ = 0, correct = 0;
    for (size_t i = 0; i < count; i++) {
        int8_t out[16];
        rc = ember_infer_u8(&model, images + i * n_in, scratch, sizeof scratch, out, n_out);
        if (rc != EMBER_OK) {
            printf("image %u: %s\nRESULT: FAIL\n", (unsigned)i, ember_strerror(rc));
            return 1;
        }
        for (size_t c = 0; c < n_out; c++) {
            differ += out[c] != logits[i * n_out + c];
        }
        int32_t p = ember_predict_u8(&model, images + i * n_in, scratch, sizeof scratch);
        correct += p >= 0 && (uint32_t)p == labels[i];
    }
    printf("ember from C on mps2-an386: %u images, accuracy %u.%02u%%, %u logits differ from the host\n",
           (unsigned)count, (unsigned)(correct * 100 / count), (unsigned)(correct * 10000 / count % 100),
           (unsigned)differ);
    printf("blob %u bytes, scratch %u bytes\n", (unsigned)(model_blob_end - model_blob), (unsigned)need);
    printf(differ == 0 ? "RESULT: PASS\n" : "RESULT: FAIL\n");
    return differ == 0 ? 0 : 1;
}
