/*
 * fmthdr.h - where the header of a model file ends and its tensor data
 * begins, for the two formats modelfs is for: GGUF (magic, version, counts,
 * key/value section, tensor infos, aligned data) and safetensors (8-byte
 * little-endian length, JSON header, data).
 *
 * The block layer uses it so that a reader parsing a header does not make
 * read-ahead run into tensor data (core/readahead.c). Pure functions over a
 * prefix of the file: no I/O, no allocation, hostile input is bounded by
 * the prefix given and the file size.
 *
 * It does not validate tensors, read metadata values for anyone, or know
 * other formats (they are MFS_FMT_OTHER: no cap).
 */
#ifndef MFS_CORE_FMTHDR_H
#define MFS_CORE_FMTHDR_H

#include <stddef.h>
#include <stdint.h>

enum mfs_fmt {
	MFS_FMT_UNKNOWN = 0,     /* not looked at yet */
	MFS_FMT_OTHER = 1,       /* neither format (or a header that makes no sense) */
	MFS_FMT_GGUF = 2,
	MFS_FMT_SAFETENSORS = 3,
};

struct mfs_fmthdr {
	enum mfs_fmt fmt;
	/* Offset of the first byte of tensor data, when known (done = 1);
	 * else the least the header is known to span (the prefix parsed). */
	uint64_t data_off;
	int done;
};

/* Parses the first n bytes of a file of file_size bytes. Returns 0 and
 * fills *out: fmt OTHER (not a model header), or GGUF/SAFETENSORS with
 * done = 1 (data_off exact) or done = 0 (the prefix ends inside the header;
 * data_off is how far it was parsed: give a longer prefix). Never reads
 * beyond p[n - 1]. */
int mfs_fmthdr_parse(const uint8_t *p, size_t n, uint64_t file_size, struct mfs_fmthdr *out);

#endif
