/*
 * DESIGN: --tls-self-signed: a certificate for people who have no other, made once with the
 * OpenSSL API that libwebsockets already links (P-256 key, SHA-256 signature, ten years,
 * subjectAltName localhost, 127.0.0.1 and this host's name). The pair is kept in tls_dir (or
 * next to the config file, or ~/.config/okvm) as okvm-selfsigned.{crt,key}, the key 0600, and
 * reused on the next start so browsers' exceptions keep working. Browsers will still warn: that
 * is what self-signed means; docs/serve.md says how to use a real certificate.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "okvm/log.h"
#include "serve/internal.h"

int serve_tls_self_signed(struct serve *s, char **cert, char **key);

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
	if (add_ext(x, NID_subject_alt_name, san) || add_ext(x, NID_basic_constraints, "CA:FALSE") ||
	    !X509_sign(x, pk, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int
write_pair(const char *cert, const char *key)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	X509 *x = pk ? make_cert(pk) : NULL;
	int rc = -EIO;
	int kfd = x ? open(key, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
	FILE *kf = kfd >= 0 ? fdopen(kfd, "w") : NULL;
	FILE *cf = kf ? fopen(cert, "w") : NULL;
	if (cf && PEM_write_PrivateKey(kf, pk, NULL, NULL, 0, NULL, NULL) &&
	    PEM_write_X509(cf, x))
		rc = 0;
	if (kf)
		fclose(kf);
	else if (kfd >= 0)
		close(kfd);
	if (cf)
		fclose(cf);
	X509_free(x);
	EVP_PKEY_free(pk);
	return rc;
}

int
serve_tls_self_signed(struct serve *s, char **cert, char **key)
{
	char *dir = tls_dir(s);
	if (asprintf(cert, "%s/okvm-selfsigned.crt", dir) < 0 ||
	    asprintf(key, "%s/okvm-selfsigned.key", dir) < 0)
		abort();
	free(dir);
	if (!access(*cert, R_OK) && !access(*key, R_OK))
		return 0;
	int rc = write_pair(*cert, *key);
	if (rc) {
		okvm_log(OKVM_LOG_ERROR, "serve: cannot write a self-signed pair to %s", *cert);
		free(*cert);
		free(*key);
		*cert = *key = NULL;
		return rc;
	}
	okvm_log(OKVM_LOG_WARN, "serve: made a self-signed certificate %s", *cert);
	return 0;
}
