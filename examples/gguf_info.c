/*
 * gguf_info.c - print the header, metadata and tensor table of a GGUF file.
 *
 * Usage: gguf_info [--json] FILE.gguf
 *
 * The file is mapped read-only (MAP_SHARED) and parsed in place: magic,
 * version (2 or 3), every key/value pair (all scalar types, strings, arrays,
 * arrays of arrays), then the tensor table (name, type, shape, offset). Every
 * length and count read from the file is checked against the mapping before
 * it is used, so a truncated or hostile file ends with a message on stderr
 * and exit status 1, never a crash. Tensor extents are checked against the
 * file size arithmetically, without reading them.
 *
 * It only touches the pages holding the header and tensor table: tensor data
 * is never read, so on a lazy filesystem (modelfs) only the first blocks of
 * the file are fetched. The mapping is advised MADV_RANDOM to keep kernel
 * read-around small for the same reason.
 *
 * It does not dequantize, modify or verify tensor contents; big-endian GGUF
 * files are rejected as a bad version. Depends on libc only.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum gguf_vtype {
	GV_UINT8, GV_INT8, GV_UINT16, GV_INT16, GV_UINT32, GV_INT32,
	GV_FLOAT32, GV_BOOL, GV_STRING, GV_ARRAY, GV_UINT64, GV_INT64,
	GV_FLOAT64, GV_COUNT
};

static const char *const vtype_names[GV_COUNT] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string",
	"array", "u64", "i64", "f64"
};

static const size_t vtype_sizes[GV_COUNT] = {
	1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8
};

/* ggml tensor types: elements per block and bytes per block. */
struct ggml_type_info {
	const char *name;
	uint32_t blck;
	uint32_t size;
};

static const struct ggml_type_info ggml_types[] = {
	[0] = {"F32", 1, 4},        [1] = {"F16", 1, 2},
	[2] = {"Q4_0", 32, 18},     [3] = {"Q4_1", 32, 20},
	[6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
	[8] = {"Q8_0", 32, 34},     [9] = {"Q8_1", 32, 36},
	[10] = {"Q2_K", 256, 84},   [11] = {"Q3_K", 256, 110},
	[12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
	[14] = {"Q6_K", 256, 210},  [15] = {"Q8_K", 256, 292},
	[16] = {"IQ2_XXS", 256, 66}, [17] = {"IQ2_XS", 256, 74},
	[18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
	[20] = {"IQ4_NL", 32, 18},  [21] = {"IQ3_S", 256, 110},
	[22] = {"IQ2_S", 256, 82},  [23] = {"IQ4_XS", 256, 136},
	[24] = {"I8", 1, 1},        [25] = {"I16", 1, 2},
	[26] = {"I32", 1, 4},       [27] = {"I64", 1, 8},
	[28] = {"F64", 1, 8},       [29] = {"IQ1_M", 256, 56},
	[30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
	[35] = {"TQ2_0", 256, 66},  [39] = {"MXFP4", 32, 17},
};

#define N_GGML_TYPES (sizeof(ggml_types) / sizeof(ggml_types[0]))
#define MAX_DIMS 4
#define MAX_ARRAY_DEPTH 4
#define SHOW_ITEMS 4
#define SHOW_STRING 72

/* Bounds-checked reader over the mapping: every read fails rather than
 * stepping past `size`, which is what makes hostile input harmless. */
struct cursor {
	const uint8_t *base;
	uint64_t size;
	uint64_t pos;
	const char *err;	/* first error, for the message */
};

struct summary {
	uint32_t version;
	uint64_t n_tensors;
	uint64_t n_kv;
	uint64_t alignment;
	uint64_t data_offset;
	uint64_t tensor_bytes;
	const uint8_t *arch;
	uint64_t arch_len;
};

static bool need(struct cursor *c, uint64_t n, const char *what)
{
	if (c->size - c->pos < n) {
		if (!c->err)
			c->err = what;
		return false;
	}
	return true;
}

static uint64_t le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static bool rd_u32(struct cursor *c, uint32_t *out, const char *what)
{
	if (!need(c, 4, what))
		return false;
	*out = (uint32_t)le(c->base + c->pos, 4);
	c->pos += 4;
	return true;
}

static bool rd_u64(struct cursor *c, uint64_t *out, const char *what)
{
	if (!need(c, 8, what))
		return false;
	*out = le(c->base + c->pos, 8);
	c->pos += 8;
	return true;
}

static bool rd_str(struct cursor *c, const uint8_t **s, uint64_t *len, const char *what)
{
	if (!rd_u64(c, len, what) || !need(c, *len, what))
		return false;
	*s = c->base + c->pos;
	c->pos += *len;
	return true;
}

static void print_str(FILE *f, const uint8_t *s, uint64_t len, uint64_t max)
{
	uint64_t n = len < max ? len : max;

	fputc('"', f);
	for (uint64_t i = 0; i < n; i++) {
		uint8_t ch = s[i];

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20 || ch == 0x7f)
			fprintf(f, "\\x%02x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
	if (n < len)
		fprintf(f, "...(%" PRIu64 " bytes)", len);
}

static void print_scalar(FILE *f, uint32_t t, const uint8_t *p)
{
	uint64_t v = le(p, (int)vtype_sizes[t]);

	switch (t) {
	case GV_UINT8: case GV_UINT16: case GV_UINT32: case GV_UINT64:
		fprintf(f, "%" PRIu64, v);
		break;
	case GV_INT8:
		fprintf(f, "%d", (int)(int8_t)v);
		break;
	case GV_INT16:
		fprintf(f, "%d", (int)(int16_t)v);
		break;
	case GV_INT32:
		fprintf(f, "%" PRId32, (int32_t)(uint32_t)v);
		break;
	case GV_INT64:
		fprintf(f, "%" PRId64, (int64_t)v);
		break;
	case GV_BOOL:
		fprintf(f, "%s", v ? "true" : "false");
		break;
	case GV_FLOAT32: {
		uint32_t u = (uint32_t)v;
		float x;

		memcpy(&x, &u, sizeof(x));
		fprintf(f, "%g", (double)x);
		break;
	}
	case GV_FLOAT64: {
		double x;

		memcpy(&x, &v, sizeof(x));
		fprintf(f, "%g", x);
		break;
	}
	default:
		break;
	}
}

/* Parse (and print when `out` is set) one value of type t. `depth` bounds
 * arrays of arrays so a hostile file cannot recurse without limit. */
static bool value(struct cursor *c, uint32_t t, int depth, FILE *out)
{
	if (t >= GV_COUNT) {
		c->err = "unknown value type";
		return false;
	}
	if (t == GV_STRING) {
		const uint8_t *s;
		uint64_t len;

		if (!rd_str(c, &s, &len, "truncated string value"))
			return false;
		if (out)
			print_str(out, s, len, SHOW_STRING);
		return true;
	}
	if (t != GV_ARRAY) {
		if (!need(c, vtype_sizes[t], "truncated scalar value"))
			return false;
		if (out)
			print_scalar(out, t, c->base + c->pos);
		c->pos += vtype_sizes[t];
		return true;
	}

	uint32_t et;
	uint64_t n;

	if (depth >= MAX_ARRAY_DEPTH) {
		c->err = "arrays nested too deeply";
		return false;
	}
	if (!rd_u32(c, &et, "truncated array type") ||
	    !rd_u64(c, &n, "truncated array length"))
		return false;
	if (et >= GV_COUNT) {
		c->err = "unknown array element type";
		return false;
	}
	if (out)
		fprintf(out, "[%" PRIu64 " items of %s] [", n, vtype_names[et]);
	if (et != GV_STRING && et != GV_ARRAY) {
		/* Fixed-size elements: one bounds check for the whole array,
		 * written as a division so n * size cannot overflow. */
		if (n > (c->size - c->pos) / vtype_sizes[et]) {
			c->err = "array extends past end of file";
			return false;
		}
		for (uint64_t i = 0; out && i < n && i < SHOW_ITEMS; i++) {
			fprintf(out, "%s", i ? ", " : "");
			print_scalar(out, et, c->base + c->pos + i * vtype_sizes[et]);
		}
		c->pos += n * vtype_sizes[et];
	} else {
		/* Variable-size elements must be walked; each consumes at
		 * least 8 bytes, so the loop ends within size / 8 steps. */
		for (uint64_t i = 0; i < n; i++) {
			FILE *show = out && i < SHOW_ITEMS ? out : NULL;

			if (show && i)
				fprintf(show, ", ");
			if (!value(c, et, depth + 1, show))
				return false;
		}
	}
	if (out)
		fprintf(out, "%s]", n > SHOW_ITEMS ? ", ..." : "");
	return true;
}

static bool key_is(const uint8_t *k, uint64_t klen, const char *s)
{
	return klen == strlen(s) && memcmp(k, s, klen) == 0;
}

static bool parse_kvs(struct cursor *c, struct summary *sm, FILE *out)
{
	for (uint64_t i = 0; i < sm->n_kv; i++) {
		const uint8_t *k;
		uint64_t klen;
		uint32_t t;
		uint64_t vpos;

		if (!rd_str(c, &k, &klen, "truncated key") ||
		    !rd_u32(c, &t, "truncated value type"))
			return false;
		if (out) {
			fprintf(out, "  ");
			print_str(out, k, klen, 128);
			fprintf(out, " (%s) = ", t < GV_COUNT ? vtype_names[t] : "?");
		}
		vpos = c->pos;
		if (!value(c, t, 0, out))
			return false;
		if (out)
			fputc('\n', out);
		if (key_is(k, klen, "general.alignment")) {
			if (t != GV_UINT32) {
				c->err = "general.alignment is not a u32";
				return false;
			}
			sm->alignment = le(c->base + vpos, 4);
			if (sm->alignment == 0 || (sm->alignment & (sm->alignment - 1))) {
				c->err = "general.alignment is not a power of two";
				return false;
			}
		} else if (key_is(k, klen, "general.architecture") && t == GV_STRING) {
			sm->arch_len = le(c->base + vpos, 8);
			sm->arch = c->base + vpos + 8;
		}
	}
	return true;
}

/* Bytes of a tensor, or false if the type is unknown, the row is not a
 * whole number of blocks, or the size overflows 64 bits. */
static bool tensor_nbytes(uint32_t type, const uint64_t *ne, uint32_t nd,
			  uint64_t *out, const char **why)
{
	const struct ggml_type_info *ti;
	uint64_t rows = 1, row_bytes;

	if (type >= N_GGML_TYPES || !ggml_types[type].name) {
		*why = "unknown tensor type";
		return false;
	}
	ti = &ggml_types[type];
	if (ne[0] % ti->blck) {
		*why = "tensor row is not a whole number of blocks";
		return false;
	}
	row_bytes = ne[0] / ti->blck;
	if (row_bytes > UINT64_MAX / ti->size) {
		*why = "tensor size overflows";
		return false;
	}
	row_bytes *= ti->size;
	for (uint32_t d = 1; d < nd; d++) {
		if (ne[d] && rows > UINT64_MAX / ne[d]) {
			*why = "tensor size overflows";
			return false;
		}
		rows *= ne[d];
	}
	if (rows && row_bytes > UINT64_MAX / rows) {
		*why = "tensor size overflows";
		return false;
	}
	*out = row_bytes * rows;
	return true;
}

/* The tensor table is parsed twice: first to find where it ends (the data
 * section starts after it, aligned), then to check and print each tensor
 * against that data offset. Both passes touch the same header pages. */
static bool parse_tensors(struct cursor *c, struct summary *sm, bool check, FILE *out)
{
	for (uint64_t i = 0; i < sm->n_tensors; i++) {
		const uint8_t *name;
		uint64_t nlen, ne[MAX_DIMS], off, nbytes = 0;
		uint32_t nd, type;
		const char *why = NULL;

		if (!rd_str(c, &name, &nlen, "truncated tensor name") ||
		    !rd_u32(c, &nd, "truncated tensor dims"))
			return false;
		if (nd == 0 || nd > MAX_DIMS) {
			c->err = "tensor has an invalid number of dimensions";
			return false;
		}
		for (uint32_t d = 0; d < nd; d++) {
			if (!rd_u64(c, &ne[d], "truncated tensor shape"))
				return false;
			if (ne[d] > INT64_MAX) {
				c->err = "tensor dimension out of range";
				return false;
			}
		}
		if (!rd_u32(c, &type, "truncated tensor type") ||
		    !rd_u64(c, &off, "truncated tensor offset"))
			return false;
		if (!check)
			continue;
		if (!tensor_nbytes(type, ne, nd, &nbytes, &why)) {
			c->err = why;
			return false;
		}
		if (off % sm->alignment) {
			c->err = "tensor offset is not aligned";
			return false;
		}
		if (off > c->size - sm->data_offset ||
		    nbytes > c->size - sm->data_offset - off) {
			c->err = "tensor data extends past end of file";
			return false;
		}
		sm->tensor_bytes += nbytes;
		if (out) {
			fprintf(out, "  ");
			print_str(out, name, nlen, 128);
			fprintf(out, " %s [", ggml_types[type].name);
			for (uint32_t d = 0; d < nd; d++)
				fprintf(out, "%s%" PRIu64, d ? ", " : "", ne[d]);
			fprintf(out, "] offset %" PRIu64 " (file %" PRIu64 ") size %" PRIu64 "\n",
				off, sm->data_offset + off, nbytes);
		}
	}
	return true;
}

static void json_str(FILE *f, const uint8_t *s, uint64_t len)
{
	fputc('"', f);
	for (uint64_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			fprintf(f, "\\%c", s[i]);
		else if (s[i] < 0x20)
			fprintf(f, "\\u%04x", s[i]);
		else
			fputc(s[i], f);
	}
	fputc('"', f);
}

static int parse(const uint8_t *base, uint64_t size, bool json, const char *path)
{
	struct cursor c = { .base = base, .size = size };
	struct summary sm = { .alignment = 32 };
	FILE *out = json ? NULL : stdout;
	uint64_t table_pos;
	int rc = 1;

	if (size < 4 || memcmp(base, "GGUF", 4) != 0) {
		c.err = "not a GGUF file (bad magic)";
		goto out;
	}
	c.pos = 4;
	if (!rd_u32(&c, &sm.version, "truncated header") ||
	    !rd_u64(&c, &sm.n_tensors, "truncated header") ||
	    !rd_u64(&c, &sm.n_kv, "truncated header"))
		goto out;
	if (sm.version != 2 && sm.version != 3) {
		c.err = "unsupported GGUF version";
		goto out;
	}
	if (out) {
		printf("file: %s (%" PRIu64 " bytes)\n", path, size);
		printf("GGUF version %" PRIu32 ", %" PRIu64 " tensors, %" PRIu64 " kv\n",
		       sm.version, sm.n_tensors, sm.n_kv);
		printf("metadata:\n");
	}
	if (!parse_kvs(&c, &sm, out))
		goto out;
	table_pos = c.pos;
	if (!parse_tensors(&c, &sm, false, NULL))
		goto out;
	/* Data section: first multiple of the alignment after the table. */
	sm.data_offset = c.pos + (sm.alignment - c.pos % sm.alignment) % sm.alignment;
	if (sm.data_offset > size) {
		c.err = "data section starts past end of file";
		goto out;
	}
	if (out)
		printf("tensors (alignment %" PRIu64 ", data offset %" PRIu64 "):\n",
		       sm.alignment, sm.data_offset);
	c.pos = table_pos;
	if (!parse_tensors(&c, &sm, true, out))
		goto out;
	if (json) {
		printf("{\"version\": %" PRIu32 ", \"architecture\": ", sm.version);
		if (sm.arch)
			json_str(stdout, sm.arch, sm.arch_len);
		else
			printf("null");
		printf(", \"n_tensors\": %" PRIu64 ", \"n_kv\": %" PRIu64
		       ", \"alignment\": %" PRIu64 ", \"data_offset\": %" PRIu64
		       ", \"tensors\": %" PRIu64 ", \"tensor_bytes\": %" PRIu64
		       ", \"file_size\": %" PRIu64 "}\n",
		       sm.n_tensors, sm.n_kv, sm.alignment, sm.data_offset,
		       sm.n_tensors, sm.tensor_bytes, size);
	} else {
		printf("total tensor bytes %" PRIu64 ", data section %" PRIu64 " bytes\n",
		       sm.tensor_bytes, size - sm.data_offset);
	}
	rc = 0;
out:
	if (rc) {
		if (out)
			fputc('\n', out);	/* end a partly printed line */
		fflush(stdout);
		fprintf(stderr, "gguf_info: %s: %s (at byte %" PRIu64 ")\n", path,
			c.err ? c.err : "invalid file", c.pos);
	}
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = NULL;
	bool json = false, bad_args = false;
	struct stat st;
	void *map = MAP_FAILED;
	int fd = -1, rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (!path && argv[i][0] != '-')
			path = argv[i];
		else
			bad_args = true;
	}
	if (!path || bad_args) {
		fprintf(stderr, "usage: gguf_info [--json] FILE.gguf\n");
		return 2;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "gguf_info: %s: %s\n", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 24) {
		fprintf(stderr, "gguf_info: %s: not a regular file of at least 24 bytes\n", path);
		goto out;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "gguf_info: %s: mmap: %s\n", path, strerror(errno));
		goto out;
	}
	/* Only header pages are wanted: keep kernel read-around small. */
	(void)madvise(map, (size_t)st.st_size, MADV_RANDOM);
	rc = parse(map, (uint64_t)st.st_size, json, path);
out:
	if (map != MAP_FAILED)
		munmap(map, (size_t)st.st_size);
	if (fd >= 0)
		close(fd);
	return rc;
}
