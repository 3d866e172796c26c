/*
 * DESIGN: okvm serve's TLS: the cipher policy, a check of the certificate and key before lws
 * sees them, and --tls-self-signed. Runs on the main thread, before the context exists.
 *
 * Policy: TLS 1.2 and 1.3 only; on TLS 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (no CBC,
 * no static RSA key exchange), TLS 1.3 with its three AEAD suites. Every browser since 2016
 * speaks one of these.
 *
 * The check: lws_create_context() returns NULL for every failure, so a missing file, a key that
 * does not match the certificate or one OpenSSL finds too small ("ee key too small") would all
 * look like "the port is in use". serve_tls_check_pair() loads the pair with OpenSSL first and
 * names the problem in one line, with its own error code. A key readable by group or others
 * gets a warning.
 *
 * --tls-self-signed: a certificate for people who have no other, made once with the OpenSSL API
 * that libwebsockets already links (P-256 key, SHA-256 signature, ten years, subjectAltName
 * localhost, 127.0.0.1 and this host's name). The pair is kept in tls_dir (or next to the config
 * file, or ~/.config/okvm) as okvm-selfsigned.{crt,key}, the key 0600, and reused on the next
 * start so browsers' exceptions keep working. Each file is written to a new temporary file in
 * the same folder (O_EXCL, so neither a symlink nor an existing file is ever opened for
 * writing), synced and renamed over its name: whatever was at the path (a symlink, a 0644
 * file) is replaced, never written through. A key path that is a symlink is refused: okvm
 * made that file, so a link there was planted. Browsers will still warn: that is what
 * self-signed means; docs/serve.md says how to use a real certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/internal.h"
#include "lib/xalloc.h"

int serve_tls_self_signed(struct serve *s, char **cert, char **key);
int serve_tls_check_pair(const char *cert, const char *key);
void serve_tls_policy(struct lws_context_creation_info *info);

/* TLS 1.2: ECDHE and an AEAD cipher only. TLS 1.3: all its suites are AEAD; named to be sure. */
#define TLS12_CIPHERS                                                \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_CIPHERS "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

void
serve_tls_policy(struct lws_context_creation_info *info)
{
	info->ssl_cipher_list = TLS12_CIPHERS;
	info->tls1_3_plus_cipher_list = TLS13_CIPHERS;
	info->ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
				SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
}

static char *
tls_dir(struct serve *s)
{
	if (s->cfg.tls_dir)
		return strdup(s->cfg.tls_dir);
	char *base = s->cfg.config_path ? strdup(s->cfg.config_path)
					: serve_config_default_path(true);
	if (!base)
		return strdup(".");
	char *slash = strrchr(base, '/');
	if (!slash) { /* a bare file name: its folder is "." (base may be too short to hold it) */
		free(base);
		base = strdup(".");
		if (!base)
			return NULL;
	} else {
		*slash = 0;
	}
	mkdir(base, 0700);
	return base;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static X509 *
make_cert(EVP_PKEY *pk)
{
	X509 *x = X509_new();
	char host[HOST_NAME_MAX + 1] = "localhost", san[512];
	gethostname(host, sizeof(host) - 1);
	snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1,DNS:%s", host);
	unsigned char serial[16];
	FILE *r = fopen("/dev/urandom", "r");
	if (!r || fread(serial, 1, sizeof(serial), r) != sizeof(serial))
		memset(serial, 0x5a, sizeof(serial));
	if (r)
		fclose(r);
	serial[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
	X509_set_pubkey(x, pk);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (unsigned char *)host, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (unsigned char *)"okvm", -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (add_ext(x, NID_subject_alt_name, san) ||
	    add_ext(x, NID_basic_constraints, "CA:FALSE") || !X509_sign(x, pk, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* A new file next to path (path.XXXXXX), created O_EXCL|O_NOFOLLOW (mkostemp), then given mode. */
static FILE *
open_temp(const char *path, mode_t mode, char **tmp, int *rc)
{
	*tmp = xasprintf("%s.XXXXXX", path);
	int fd = mkostemp(*tmp, O_CLOEXEC | O_NOFOLLOW);
	FILE *f = NULL;
	if (fd >= 0 && !fchmod(fd, mode))
		f = fdopen(fd, "w");
	if (!f) {
		*rc = -errno;
		if (fd >= 0) {
			close(fd);
			unlink(*tmp);
		}
		free(*tmp);
		*tmp = NULL;
	}
	return f;
}

/* Flush, fsync and close a temporary file; on any earlier or new failure, remove it. */
static int
finish_temp(FILE *f, char *tmp, int rc)
{
	if (!f)
		return rc;
	if (!rc && (fflush(f) || fsync(fileno(f))))
		rc = -errno;
	if (fclose(f) && !rc)
		rc = -errno;
	if (rc)
		unlink(tmp);
	return rc;
}

static void
sync_dir(const char *path)
{
	char *dir = xstrdup(path);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir] = 0; /* "/x" -> "/" */
	int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

/* The key first: a crash between the renames leaves a pair that does not match, which the
 * check at start names (delete both files to get a new pair). */
static int
write_pair(const char *cert, const char *key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = pk ? make_cert(pk) : NULL;
	char *ktmp = NULL, *ctmp = NULL;
	int rc = x ? 0 : -EIO;
	FILE *kf = rc ? NULL : open_temp(key, 0600, &ktmp, &rc);
	FILE *cf = rc ? NULL : open_temp(cert, 0644, &ctmp, &rc);
	if (!rc &&
	    (!PEM_write_PrivateKey(kf, pk, NULL, NULL, 0, NULL, NULL) || !PEM_write_X509(cf, x)))
		rc = -EIO;
	rc = finish_temp(kf, ktmp, rc);
	int crc = finish_temp(cf, ctmp, rc);
	if (!rc && crc)
		unlink(ktmp);
	rc = crc;
	if (!rc && rename(ktmp, key)) {
		rc = -errno;
		unlink(ktmp);
		unlink(ctmp);
	}
	if (!rc && rename(ctmp, cert)) {
		rc = -errno;
		unlink(ctmp);
	}
	if (!rc)
		sync_dir(key);
	free(ktmp);
	free(ctmp);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

static bool
is_symlink(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

int
serve_tls_self_signed(struct serve *s, char **cert, char **key)
{
	char *dir = tls_dir(s);
	*cert = xasprintf("%s/okvm-selfsigned.crt", dir);
	*key = xasprintf("%s/okvm-selfsigned.key", dir);
	free(dir);
	int rc;
	if (is_symlink(*key)) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: %s is a symlink; okvm keeps its self-signed key in a "
			 "plain file only (remove the link, or set tls_dir)",
			 *key);
		rc = -ELOOP;
		goto fail;
	}
	if (!access(*cert, R_OK) && !access(*key, R_OK))
		return 0;
	rc = write_pair(*cert, *key);
	if (rc) {
		okvm_log(OKVM_LOG_ERROR, "serve: cannot write a self-signed pair to %s: %s", *cert,
			 strerror(-rc));
		goto fail;
	}
	okvm_log(OKVM_LOG_WARN, "serve: made a self-signed certificate %s", *cert);
	return 0;
fail:
	free(*cert);
	free(*key);
	*cert = *key = NULL;
	return rc;
}

/* ---- the check of a certificate and key before lws loads them ---- */

static FILE *
open_pem(const char *path, const char *what, int *rc)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	if (f && !fstat(fileno(f), &st) && S_ISDIR(st.st_mode)) {
		fclose(f);
		f = NULL;
		errno = EISDIR;
	}
	if (f)
		return f;
	*rc = -errno;
	if (errno == ENOENT)
		okvm_log(OKVM_LOG_ERROR, "serve: the TLS %s %s does not exist", what, path);
	else
		okvm_log(OKVM_LOG_ERROR, "serve: cannot read the TLS %s %s: %s", what, path,
			 strerror(errno));
	return NULL;
}

/* OpenSSL's reason for the newest error, or a fallback; clears the queue. */
static const char *
ssl_reason(const char *fallback)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;
	ERR_clear_error();
	return r ? r : fallback;
}

static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1; /* never prompt on the terminal: okvm takes unencrypted keys only */
}

static X509 *
load_cert(const char *path, int *rc)
{
	FILE *f = open_pem(path, "certificate", rc);
	if (!f)
		return NULL;
	X509 *x = PEM_read_X509(f, NULL, no_password, NULL);
	fclose(f);
	if (!x) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: the TLS certificate %s is not a PEM certificate (%s)", path,
			 ssl_reason("unreadable"));
		*rc = -EINVAL;
	}
	return x;
}

static EVP_PKEY *
load_key(const char *path, int *rc)
{
	FILE *f = open_pem(path, "key", rc);
	if (!f)
		return NULL;
	struct stat st;
	if (!fstat(fileno(f), &st) && S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)))
		okvm_log(OKVM_LOG_WARN,
			 "serve: the TLS key %s is readable by group or others; "
			 "run `chmod 600 %s`",
			 path, path);
	EVP_PKEY *pk = PEM_read_PrivateKey(f, NULL, no_password, NULL);
	fclose(f);
	if (!pk) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: the TLS key %s is not an unencrypted PEM private key "
			 "(%s)",
			 path, ssl_reason("unreadable"));
		*rc = -EINVAL;
	}
	return pk;
}

/* Security bits per OpenSSL security level (SSL_CTX_set_security_level(3)), with the RSA and
 * EC key sizes that reach them. */
static const struct {
	int bits, rsa, ec;
} sec_levels[] = { { 0, 0, 0 },        { 80, 1024, 160 },  { 112, 2048, 224 },
		   { 128, 3072, 256 }, { 192, 7680, 384 }, { 256, 15360, 512 } };

/* Would OpenSSL, as configured on this host, accept this pair for a server? */
static int
check_strength(const char *cert, const char *key, X509 *x, EVP_PKEY *pk)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx)
		return -ENOMEM;
	int level = SSL_CTX_get_security_level(ctx), rc = 0;
	int i = level < 0 ? 0 : level > 5 ? 5 : level;
	if (EVP_PKEY_get_security_bits(pk) < sec_levels[i].bits) {
		okvm_log(OKVM_LOG_ERROR,
			 "serve: the TLS key %s is too small (%s, %d bits): OpenSSL's "
			 "security level %d needs RSA %d or EC %d bits at least",
			 key, EVP_PKEY_get0_type_name(pk), EVP_PKEY_get_bits(pk), level,
			 sec_levels[i].rsa, sec_levels[i].ec);
		rc = -EKEYREJECTED;
	} else if (SSL_CTX_use_certificate(ctx, x) != 1) { /* e.g. "ca md too weak" (SHA-1) */
		okvm_log(OKVM_LOG_ERROR, "serve: OpenSSL refuses the TLS certificate %s: %s", cert,
			 ssl_reason("refused"));
		rc = -EKEYREJECTED;
	} else if (SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
		okvm_log(OKVM_LOG_ERROR, "serve: OpenSSL refuses the TLS key %s: %s", key,
			 ssl_reason("refused"));
		rc = -EKEYREJECTED;
	}
	SSL_CTX_free(ctx);
	return rc;
}

int
serve_tls_check_pair(const char *cert, const char *key)
{
	int rc = 0;
	X509 *x = load_cert(cert, &rc);
	EVP_PKEY *pk = x ? load_key(key, &rc) : NULL;
	if (pk && X509_check_private_key(x, pk) != 1) {
		okvm_log(OKVM_LOG_ERROR, "serve: the TLS key %s does not match the certificate %s",
			 key, cert);
		rc = -EINVAL;
	}
	if (!rc)
		rc = check_strength(cert, key, x, pk);
	ERR_clear_error();
	EVP_PKEY_free(pk);
	X509_free(x);
	return rc;
}
