/*
 * json.h - a small, strict JSON reader (RFC 8259) for hub responses.
 *
 * Parses a whole document into an immutable tree. Strings are decoded
 * (escapes, surrogate pairs) and checked to be valid UTF-8; a "\u0000" is
 * kept and reported through the length, so callers can reject it. Nesting
 * deeper than MFS_JSON_MAX_DEPTH, trailing garbage, or a malformed number is
 * an error (-EINVAL); nothing is guessed.
 * It does not write JSON: see strbuf.h for that.
 */
#ifndef MFS_UTIL_JSON_H
#define MFS_UTIL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MFS_JSON_MAX_DEPTH 64

enum mfs_json_type {
	MFS_JSON_NULL, MFS_JSON_BOOL, MFS_JSON_NUMBER,
	MFS_JSON_STRING, MFS_JSON_ARRAY, MFS_JSON_OBJECT
};

struct mfs_json;

/* 0 on success (*out owns the tree), -EINVAL on malformed input,
 * -EILSEQ on invalid UTF-8 in a string, -ENOMEM. */
int mfs_json_parse(const char *text, size_t len, struct mfs_json **out);
void mfs_json_free(struct mfs_json *doc);

/* With MFS_JSON_LENIENT_UTF8, invalid UTF-8 or an unpaired surrogate in a
 * string does not fail the document: each bad unit becomes a NUL byte, so
 * one hostile name in a listing of thousands is rejected by the caller's
 * own validation (names never contain NUL) instead of losing the page. */
#define MFS_JSON_LENIENT_UTF8 1u
int mfs_json_parse_ex(const char *text, size_t len, unsigned flags, struct mfs_json **out);

enum mfs_json_type mfs_json_type(const struct mfs_json *v);
/* Object member by key (first match), NULL if absent or v is not an object. */
const struct mfs_json *mfs_json_get(const struct mfs_json *v, const char *key);
/* Array/object element count (0 for scalars) and i-th element (value). */
size_t mfs_json_len(const struct mfs_json *v);
const struct mfs_json *mfs_json_at(const struct mfs_json *v, size_t i);
/* i-th key of an object, NULL otherwise. */
const char *mfs_json_key_at(const struct mfs_json *v, size_t i);
/* String value (NUL-terminated, may contain embedded NUL: see *len), NULL
 * if v is not a string. */
const char *mfs_json_str(const struct mfs_json *v, size_t *len);
/* Integer value when v is a number with no fraction/exponent that fits. */
bool mfs_json_int(const struct mfs_json *v, int64_t *out);
bool mfs_json_double(const struct mfs_json *v, double *out);
bool mfs_json_bool(const struct mfs_json *v, bool *out);

/* Convenience: member `key` as string or NULL. */
const char *mfs_json_get_str(const struct mfs_json *obj, const char *key);

#endif
