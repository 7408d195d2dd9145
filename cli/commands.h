/*
 * commands.h - the subcommands of `modelfs`. Each returns the process exit
 * status: 0 success, 1 run-time failure, 2 bad usage.
 */
#ifndef MFS_CLI_COMMANDS_H
#define MFS_CLI_COMMANDS_H

int mfs_cmd_mount(int argc, char **argv);
int mfs_cmd_umount(int argc, char **argv);
int mfs_cmd_prefetch(int argc, char **argv);
int mfs_cmd_pin(int argc, char **argv);
int mfs_cmd_unpin(int argc, char **argv);
int mfs_cmd_ls(int argc, char **argv);
int mfs_cmd_status(int argc, char **argv);
int mfs_cmd_gc(int argc, char **argv);
int mfs_cmd_verify(int argc, char **argv);
int mfs_cmd_serve(int argc, char **argv);
int mfs_cmd_import(int argc, char **argv);

/* Prints "modelfs CMD: <msg>" and a hint to use --help; returns 2. */
int mfs_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
