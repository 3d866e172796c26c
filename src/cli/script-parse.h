/* okvm script: splitting a line into arguments (src/cli/script-parse.c). */
#ifndef OKVM_CLI_SCRIPT_PARSE_H
#define OKVM_CLI_SCRIPT_PARSE_H

#include <stddef.h>

#define SCRIPT_MAX_ARGS 256
#define SCRIPT_MAX_LINE 65536

struct script_line {
	char *buf; /* the arguments, NUL-separated (owned) */
	char *argv[SCRIPT_MAX_ARGS + 1];
	int argc; /* 0 for a blank or comment line */
};

/*
 * Split one line: arguments are separated by blanks; "double quotes" allow \" \\ \n \t inside,
 * 'single quotes' take everything literally, a backslash outside quotes escapes the next
 * character, and # outside quotes starts a comment.
 * @return 0, or -EINVAL with *why set to a static message (unterminated quote, trailing
 *         backslash, too many arguments, line too long). Free with script_line_free().
 */
int script_split(const char *line, size_t len, struct script_line *out, const char **why);
void script_line_free(struct script_line *l);

#endif
