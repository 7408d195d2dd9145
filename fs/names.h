/*
 * names.h - the names a user types under a mount, parsed and printed.
 *
 * "<name>"                -> repo <name>, default branch
 * "<name>@<rev>"          -> repo <name>, revision <rev>; in <rev>, "%2F"
 *                            (any case) stands for '/' and "%25" for '%',
 *                            so refs/pr/1 is "name@refs%2Fpr%2F1"
 * "<name>@<40 hex>"       -> a commit
 * Pure functions, no I/O.
 */
#ifndef MFS_FS_NAMES_H
#define MFS_FS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "util/repo.h"

#define MFS_REV_MAX 256

/* Splits and decodes; 0 or -ENOENT for anything malformed (a name that
 * cannot exist is simply not there). rev is "" when absent. */
int mfs_names_parse(const char *entry, char name[97], char rev[MFS_REV_MAX]);

/* Writes "<name>@<encoded rev>" (or "<name>" for an empty rev). 0 or
 * -ENAMETOOLONG. */
int mfs_names_format(const char *name, const char *rev, char *out, size_t cap);

/* true for exactly 40 hex digits */
bool mfs_names_is_commit(const char *rev);

/* The identity of a node of the mount: "kind\0type[\0a[\0b[\0c]]]" in buf
 * (parts stop at the first NULL). Its length, or 0 if it does not fit.
 * Kinds: fs.c uses 'o', 'l', 'c'; hfcache.c uses 'A' + its node kind. */
size_t mfs_names_key(char *buf, size_t cap, char kind, enum mfs_repo_type t, const char *a,
		     const char *b, const char *c);

#endif
