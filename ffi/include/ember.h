/* ember: integer-only inference of an ember model blob, from C.
 *
 * Link libember_ffi.a (built from ffi/ with `cargo build --release
 * --target <triple>`; see ffi/README.md). Nothing here allocates, panics or
 * unwinds; every pointer and length is checked, and errors are negative
 * codes that ember_strerror() names. The blob format is docs/FORMAT.md.
 *
 *     ember_model_t model;
 *     if (ember_open(blob, blob_len, &model) != EMBER_OK) ...      // zero-copy
 *     static uint8_t scratch[EMBER_MODEL_SCRATCH_BYTES];            // from the exported header
 *     int32_t digit = ember_predict_u8(&model, pixels, scratch, sizeof scratch);
 */
#ifndef EMBER_H
#define EMBER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EMBER_OK 0                      /* errors are negative; ember_strerror names them */
#define EMBER_ERR_NULL (-1)             /* a pointer argument is NULL */
#define EMBER_ERR_MISALIGNED (-2)       /* the blob does not start at a 16-byte aligned address */
#define EMBER_ERR_BAD_MAGIC (-3)        /* not an ember model blob */
#define EMBER_ERR_VERSION (-4)          /* a blob format version this library does not read */
#define EMBER_ERR_TRUNCATED (-5)        /* the blob is shorter than its header says */
#define EMBER_ERR_CHECKSUM (-6)         /* CRC-32 mismatch: corrupted or cut short */
#define EMBER_ERR_FORMAT (-7)           /* a field, dimension or layout the format does not allow */
#define EMBER_ERR_SCRATCH (-8)          /* scratch_len < ember_scratch_bytes() */
#define EMBER_ERR_LENGTH (-9)           /* logits_len (or out_len) differs from ember_output_len() */
#define EMBER_ERR_DTYPE (-10)           /* an int8 call on a model that is not all int8, or ember_infer_f32 on one that is */
#define EMBER_ERR_MODEL (-11)           /* the model was not opened by ember_open */

/* Room for a parsed model (its layer table points into the blob). */
#define EMBER_MODEL_WORDS 128

typedef struct { uint64_t opaque[EMBER_MODEL_WORDS]; } ember_model_t;

int32_t ember_open(const uint8_t *blob, size_t len, ember_model_t *model); /* zero-copy: blob must outlive model */
size_t  ember_input_len(const ember_model_t *model);
size_t  ember_output_len(const ember_model_t *model);
size_t  ember_scratch_bytes(const ember_model_t *model);
int32_t ember_infer_u8(const ember_model_t *model, const uint8_t *pixels,
                       uint8_t *scratch, size_t scratch_len, int8_t *logits, size_t logits_len);
int32_t ember_predict_u8(const ember_model_t *model, const uint8_t *pixels,
                         uint8_t *scratch, size_t scratch_len); /* class index, or an error < 0 */
int32_t ember_infer_f32(const ember_model_t *model, const uint8_t *pixels,
                        uint8_t *scratch, size_t scratch_len, float *out, size_t out_len);
const char *ember_strerror(int32_t code);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_H */
