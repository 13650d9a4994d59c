/* The test vectors of `ember export --vectors DIR`, found through the
 * assembler's include path (-Wa,-I DIR): the blob 16-byte aligned, as the
 * format requires. */
    .section .rodata.ember_vectors, "a"
    .balign 16
    .global model_blob, model_blob_end, images, images_end, logits, logits_end, labels, labels_end
model_blob:
    .incbin "model.bin"
model_blob_end:
    .balign 4
images:
    .incbin "images.bin"
images_end:
logits:
    .incbin "logits.bin"
logits_end:
labels:
    .incbin "labels.bin"
labels_end:
