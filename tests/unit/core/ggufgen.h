/*
 * ggufgen.h - builds a small GGUF v3 header for the core/ unit tests
 * (test_blobio.c, test_fmthdr.c). Test code only.
 */
#ifndef MFS_TESTS_GGUFGEN_H
#define MFS_TESTS_GGUFGEN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* GGUF v3 header: counts, one string KV, a string array of `vocab`
 * tokens (17 + 8 bytes each) that makes it span blocks,
 * general.alignment = 64, two tensor infos. Returns its length; p must
 * hold 200 + 25 x vocab bytes. */
static inline size_t gguf_head(uint8_t *p, size_t cap, size_t vocab)
{
	size_t n = 0;
#define PUT(v, k) do { uint64_t x_ = (v); for (int i_ = 0; i_ < (k); i_++) p[n++] = (uint8_t)(x_ >> (8 * i_)); } while (0)
#define STR(s) do { size_t l_ = strlen(s); PUT(l_, 8); memcpy(p + n, s, l_); n += l_; } while (0)
	memcpy(p, "GGUF", 4);
	n = 4;
	PUT(3, 4);
	PUT(2, 8);          /* tensors */
	PUT(3, 8);          /* kv */
	STR("general.name");
	PUT(8, 4);
	STR("tiny");
	STR("tokenizer.ggml.tokens");
	PUT(9, 4);
	PUT(8, 4);
	PUT(vocab, 8);
	for (size_t i = 0; i < vocab; i++)
		STR("token-0123456789");
	STR("general.alignment");
	PUT(4, 4);
	PUT(64, 4);
	for (int t = 0; t < 2; t++) {
		STR(t ? "output.weight" : "token_embd.weight");
		PUT(2, 4);
		PUT(16, 8);
		PUT(16, 8);
		PUT(0, 4);
		PUT((uint64_t)t * 1024, 8);
	}
	(void)cap; /* callers size p for the vocab they ask */
	return n;
#undef PUT
#undef STR
}

#endif
