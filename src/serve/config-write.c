/*
 * DESIGN: changing one key (or one section) of okvm serve's config file for `okvm passwd` and
 * `okvm totp`, keeping every other line, comment and section as it was.
 *
 * The new text goes to a temporary file in the same folder, is fsync'd and renamed over the old
 * one, so a crash leaves the old file or the new one, never half of each. Who may read the
 * result depends on where the file lives:
 *
 * - A personal file (~/.config/okvm/okvm.conf, or any --config path): 0600, in a 0700 folder.
 *   The per-user folder and folders okvm creates are tightened to 0700 if they are wider.
 * - The system service's file: a path under /etc, or a folder whose group is "okvm". The
 *   service reads it through its group (root:okvm, folder 0750, file 0640: docs/serve.md
 *   "Running as a service"), so the new file gets the old file's owner, group and mode (minus
 *   any access for others, which the reader refuses), or, for a new file, the folder's group
 *   and 0640. A folder okvm creates under /etc gets group okvm and 0750 when that group exists.
 *   Folders are left as they are.
 *
 * A symbolic link is written through: the link's target is replaced, never the link. A link to
 * nothing is refused. It does not lock the file against a second writer; the last rename wins.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/config-file.h"

/* ---- where the file goes ---- */

static bool
group_is_okvm(gid_t gid)
{
	struct group g, *res = NULL;
	char buf[4096];
	return !getgrgid_r(gid, &g, buf, sizeof(buf), &res) && res && !strcmp(g.gr_name, "okvm");
}

static int
group_gid(gid_t *gid)
{
	struct group g, *res = NULL;
	char buf[4096];
	if (getgrnam_r("okvm", &g, buf, sizeof(buf), &res) || !res)
		return -ENOENT;
	*gid = g.gr_gid;
	return 0;
}

/* The file to write: path itself, or the target of the symbolic link path is. */
static int
resolve(const char *path, char *out, size_t n)
{
	struct stat st;
	snprintf(out, n, "%s", path);
	if (lstat(path, &st))
		return errno == ENOENT ? 0 : -errno;
	if (S_ISLNK(st.st_mode)) {
		char real[PATH_MAX];
		if (!realpath(path, real)) {
			int err = -errno;
			okvm_log(OKVM_LOG_ERROR,
				 "%s is a symbolic link to a file that does not exist; "
				 "okvm writes through a link and never replaces it: create the "
				 "target first, or remove the link",
				 path);
			return err;
		}
		snprintf(out, n, "%s", real);
		if (stat(real, &st))
			return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		okvm_log(OKVM_LOG_ERROR, "%s is not a regular file", path);
		return -EINVAL;
	}
	return 0;
}

/* Create the folders above file (0700). *created: the file's own folder was made here. */
static int
make_dirs(const char *file, bool *created)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", file);
	char *slash = strrchr(dir, '/');
	*created = false;
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (!mkdir(dir, 0700))
		*created = true;
	else if (errno != EEXIST)
		return -errno;
	return 0;
}

static void
dir_of(const char *file, char *dir, size_t n)
{
	snprintf(dir, n, "%s", file);
	char *slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, n, ".");
	else if (slash == dir)
		dir[1] = 0;
	else
		*slash = 0;
}

static bool
is_user_folder(const char *dir)
{
	char *mine = serve_config_default_path(true);
	if (!mine)
		return false;
	char mdir[PATH_MAX], a[PATH_MAX], b[PATH_MAX];
	dir_of(mine, mdir, sizeof(mdir));
	free(mine);
	return realpath(mdir, a) && realpath(dir, b) && !strcmp(a, b);
}

/* How the new file is to be owned. */
struct place {
	char file[PATH_MAX];
	bool service; /* the system service's layout */
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

static int
place_dir(struct place *pl, bool created)
{
	char dir[PATH_MAX];
	dir_of(pl->file, dir, sizeof(dir));
	gid_t okvm;
	if (created && !strncmp(pl->file, "/etc/", 5) && !group_gid(&okvm)) {
		if (chown(dir, (uid_t)-1, okvm) || chmod(dir, 0750))
			return -errno;
	}
	struct stat st;
	if (stat(dir, &st))
		return -errno;
	pl->service = !strncmp(pl->file, "/etc/", 5) || group_is_okvm(st.st_gid);
	pl->uid = (uid_t)-1;
	pl->gid = pl->service ? st.st_gid : (gid_t)-1;
	pl->mode = pl->service && (st.st_mode & S_IXGRP) ? 0640 : 0600;
	if (!pl->service && (st.st_mode & 077) && (created || is_user_folder(dir))) {
		if (chmod(dir, st.st_mode & 0700))
			return -errno;
		okvm_log(OKVM_LOG_WARN, "%s was open to other users; it is 0700 now", dir);
	}
	return 0;
}

static int
place_file(const char *path, struct place *pl)
{
	int rc = resolve(path, pl->file, sizeof(pl->file));
	bool created = false;
	if (!rc)
		rc = make_dirs(pl->file, &created);
	if (!rc)
		rc = place_dir(pl, created);
	struct stat st;
	if (!rc && pl->service && !stat(pl->file, &st)) {
		pl->uid = st.st_uid;
		pl->gid = st.st_gid;
		pl->mode = st.st_mode & 0770;
	}
	return rc;
}

/* ---- the text ---- */

/* "[name]" (leading blanks allowed) -> true and the name in out. */
static bool
header(const char *line, char *out, size_t n)
{
	const char *s = line + strspn(line, " \t");
	const char *close = *s == '[' ? strchr(s, ']') : NULL;
	if (!close)
		return false;
	snprintf(out, n, "%.*s", (int)(close - s - 1), s + 1);
	return true;
}

static bool
is_key(const char *line, const char *key)
{
	const char *p = line + strspn(line, " \t");
	size_t k = strlen(key);
	return !strncmp(p, key, k) && p[k] && strchr(" \t=:", p[k]);
}

/* One edit: set (value), remove a key (value NULL) or remove a section (key NULL). */
struct edit {
	const char *section, *key, *value;
	bool found; /* the section was there */
};

static void
rewrite(FILE *in, FILE *out, struct edit *e)
{
	char *line = NULL, name[128];
	size_t cap = 0;
	ssize_t n;
	bool in_sect = false, done = false, nl = true;
	/* As inih reads it: an indented line right after a key (blank lines between included) is
	 * that key's continuation, even if it looks like "[serve]"; a comment is a comment. */
	bool after_key = false, dropped_key = false;
	while (in && (n = getline(&line, &cap, in)) > 0) {
		const char *t = line + strspn(line, " \t");
		bool blank = !*t || *t == '\n' || *t == '\r';
		bool comment = *t == ';' || *t == '#';
		if (after_key && !blank && !comment && t > line) {
			if (!dropped_key && !(in_sect && !e->key))
				fputs(line, out); /* a continuation goes with its key */
			if (!dropped_key && !(in_sect && !e->key))
				nl = line[n - 1] == '\n';
			continue;
		}
		if (!blank && !comment)
			after_key = dropped_key = false;
		if (blank || comment) {
			/* nothing to decide: kept as it is, below */
		} else if (header(line, name, sizeof(name))) {
			if (in_sect && !done && e->value) {
				fprintf(out, "%s%s = %s\n", nl ? "" : "\n", e->key, e->value);
				done = nl = true;
			}
			in_sect = !strcmp(name, e->section);
			e->found |= in_sect;
			if (in_sect && !e->key)
				continue;
		} else if (in_sect && !e->key) {
			after_key = dropped_key = true;
			continue;
		} else if (in_sect && is_key(line, e->key)) {
			if (e->value && !done)
				fprintf(out, "%s = %s\n", e->key, e->value);
			done = after_key = dropped_key = true;
			continue;
		} else {
			after_key = true;
		}
		if (in_sect && !e->key)
			continue; /* a blank line or comment of a section being removed */
		fputs(line, out);
		nl = line[n - 1] == '\n';
	}
	free(line);
	if (done || !e->value)
		return;
	if (in_sect)
		fprintf(out, "%s%s = %s\n", nl ? "" : "\n", e->key, e->value);
	else
		fprintf(out, "%s\n[%s]\n%s = %s\n", nl ? "" : "\n", e->section, e->key, e->value);
}

static int
give_place(int fd, const struct place *pl)
{
	if ((pl->uid != (uid_t)-1 || pl->gid != (gid_t)-1) && fchown(fd, pl->uid, pl->gid)) {
		int err = -errno;
		okvm_log(OKVM_LOG_ERROR, "%s: cannot keep its owner and group (run this as root)",
			 pl->file);
		return err;
	}
	return fchmod(fd, pl->mode) ? -errno : 0;
}

static int
apply(const char *path, struct edit *e)
{
	struct place pl = { 0 };
	int rc = place_file(path, &pl);
	if (rc)
		return rc;
	char tmp[PATH_MAX + 32];
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", pl.file, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	FILE *out = fdopen(fd, "w");
	if (!out)
		abort();
	rc = give_place(fd, &pl);
	FILE *in = fopen(pl.file, "r");
	if (!in && errno != ENOENT && !rc)
		rc = -errno;
	if (!rc)
		rewrite(in, out, e);
	if (in)
		fclose(in);
	if (!rc && !e->key && !e->found)
		rc = -ENOENT;
	if (!rc && (fflush(out) || fsync(fd)))
		rc = -errno;
	fclose(out);
	if (!rc && rename(tmp, pl.file))
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static bool
clean(const char *s, const char *forbidden)
{
	return !s || (!strpbrk(s, forbidden) && strlen(s) < 8192);
}

int
serve_config_set_in(const char *path, const char *section, const char *key, const char *value)
{
	/* A newline in a value would add lines of its own choosing. */
	if (!section || !*section || !key || !*key || !clean(section, "[]\r\n") ||
	    !clean(key, " \t=:;#[]\r\n") || !clean(value, "\r\n"))
		return -EINVAL;
	if (!value && access(path, F_OK))
		return 0; /* nothing to remove */
	return apply(path, &(struct edit){ .section = section, .key = key, .value = value });
}

int
serve_config_set(const char *path, const char *key, const char *value)
{
	return serve_config_set_in(path, "serve", key, value);
}

int
serve_config_remove_section(const char *path, const char *section)
{
	if (!section || !*section || !clean(section, "[]\r\n"))
		return -EINVAL;
	if (access(path, F_OK))
		return -ENOENT;
	return apply(path, &(struct edit){ .section = section });
}
