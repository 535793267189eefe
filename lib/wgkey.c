// SPDX-License-Identifier: Apache-2.0
/*
 * WireGuard keys: X25519 through OpenSSL, the base64 form people exchange and the hex
 * form the UAPI protocol speaks, and the node's private key file on disk. Key bytes are
 * never logged; buffers that held a private key are cleansed before they are released.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "wgkey.h"

#define WG_KEY_B64_CHARS (WG_KEY_B64_LEN - 1)

static void wgkey_clamp(uint8_t key[WG_KEY_LEN])
{
	key[0] &= 248;
	key[31] = (key[31] & 127) | 64;
}

int wgkey_generate_private(uint8_t key[WG_KEY_LEN])
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	size_t len = WG_KEY_LEN;
	int ret = -EIO;

	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_X25519, NULL);
	if (!ctx || EVP_PKEY_keygen_init(ctx) <= 0 || EVP_PKEY_keygen(ctx, &pkey) <= 0) {
		log_err("wgkey: X25519 key generation failed in libcrypto");
		goto cleanup;
	}
	if (EVP_PKEY_get_raw_private_key(pkey, key, &len) <= 0 || len != WG_KEY_LEN) {
		log_err("wgkey: cannot extract the generated X25519 private key");
		OPENSSL_cleanse(key, WG_KEY_LEN);
		goto cleanup;
	}
	/* Same bytes as `wg genkey`: the clamped scalar, so every tool shows one key. */
	wgkey_clamp(key);
	ret = 0;
cleanup:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	return ret;
}

int wgkey_public_from_private(const uint8_t priv[WG_KEY_LEN], uint8_t pub[WG_KEY_LEN])
{
	EVP_PKEY *pkey;
	size_t len = WG_KEY_LEN;
	int ret = -EIO;

	pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WG_KEY_LEN);
	if (!pkey) {
		log_err("wgkey: libcrypto refused an X25519 private key");
		goto cleanup;
	}
	if (EVP_PKEY_get_raw_public_key(pkey, pub, &len) <= 0 || len != WG_KEY_LEN) {
		log_err("wgkey: cannot derive the X25519 public key");
		goto cleanup;
	}
	ret = 0;
cleanup:
	EVP_PKEY_free(pkey);
	return ret;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void wgkey_to_base64(const uint8_t key[WG_KEY_LEN], char out[WG_KEY_B64_LEN])
{
	size_t o = 0;

	for (size_t i = 0; i < WG_KEY_LEN; i += 3) {
		uint32_t v = (uint32_t)key[i] << 16;
		size_t n = WG_KEY_LEN - i < 3 ? WG_KEY_LEN - i : 3;

		if (n > 1)
			v |= (uint32_t)key[i + 1] << 8;
		if (n > 2)
			v |= key[i + 2];
		out[o++] = b64_alphabet[(v >> 18) & 63];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = n > 1 ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = n > 2 ? b64_alphabet[v & 63] : '=';
	}
	out[o] = '\0';
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Strict: exactly 44 characters, one '=' of padding, and no stray low bits, so one key
 * has exactly one spelling and a comparison of strings is a comparison of keys. */
int wgkey_from_base64(const char *b64, uint8_t key[WG_KEY_LEN])
{
	uint8_t tmp[WG_KEY_LEN];
	size_t o = 0;
	uint32_t v = 0;
	int ret = -EINVAL;

	if (!b64 || strnlen(b64, WG_KEY_B64_LEN) != WG_KEY_B64_CHARS ||
	    b64[WG_KEY_B64_CHARS - 1] != '=')
		goto cleanup;
	for (size_t i = 0; i < WG_KEY_B64_CHARS - 1; i++) {
		int d = b64_value(b64[i]);

		if (d < 0)
			goto cleanup;
		v = (v << 6) | (uint32_t)d;
		if (i % 4 == 3) {
			tmp[o++] = (uint8_t)(v >> 16);
			tmp[o++] = (uint8_t)(v >> 8);
			tmp[o++] = (uint8_t)v;
			v = 0;
		}
	}
	/* 43 characters: 10 full groups, then 3 characters carrying 2 bytes and 2 zero bits. */
	if (v & 3)
		goto cleanup;
	tmp[o++] = (uint8_t)(v >> 10);
	tmp[o++] = (uint8_t)(v >> 2);
	memcpy(key, tmp, WG_KEY_LEN);
	ret = 0;
cleanup:
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return ret;
}

void wgkey_to_hex(const uint8_t key[WG_KEY_LEN], char out[2 * WG_KEY_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		out[2 * i] = digits[key[i] >> 4];
		out[2 * i + 1] = digits[key[i] & 15];
	}
	out[2 * WG_KEY_LEN] = '\0';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int wgkey_from_hex(const char *hex, uint8_t key[WG_KEY_LEN])
{
	uint8_t tmp[WG_KEY_LEN];
	int ret = -EINVAL;

	if (!hex || strnlen(hex, 2 * WG_KEY_LEN + 1) != 2 * WG_KEY_LEN)
		goto cleanup;
	for (size_t i = 0; i < WG_KEY_LEN; i++) {
		int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			goto cleanup;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(key, tmp, WG_KEY_LEN);
	ret = 0;
cleanup:
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return ret;
}

/*
 * A folder made by someone else with the usual 0755 (kubelet's hostPath
 * DirectoryOrCreate, mkdir -p, a package) would stop the agent for good: tighten it when
 * it is ours and a real folder, never through a symlink. A key file open to others is
 * still refused: its secret may already be out.
 */
static void wgkey_tighten_dir(const char *dir)
{
	struct stat st;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0)
		return;   /* a symlink or not a folder: wgkey_check_dir says what is wrong */
	if (fstat(fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 0077)) {
		if (fchmod(fd, st.st_mode & 07700) == 0)
			log_warn("wgkey: key folder '%s' had mode %04o: tightened to %04o", dir,
				 (unsigned int)(st.st_mode & 07777), (unsigned int)(st.st_mode & 07700));
		else
			log_err("wgkey: cannot tighten key folder '%s' (mode %04o): %s", dir,
				(unsigned int)(st.st_mode & 07777), strerror(errno));
	}
	close(fd);
}

static int wgkey_check_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st) < 0) {
		int err = errno;

		log_err("wgkey: cannot stat key folder '%s': %s", dir, strerror(err));
		return -err;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_err("wgkey: key folder '%s' is not a directory", dir);
		return -ENOTDIR;
	}
	if (st.st_mode & 0077) {
		log_err("wgkey: key folder '%s' has mode %04o: it must not be open to group or "
			"others (chmod 700 '%s')", dir, (unsigned int)(st.st_mode & 07777), dir);
		return -EPERM;
	}
	if (st.st_uid != geteuid()) {
		log_err("wgkey: key folder '%s' is owned by uid %u, not by uid %u", dir,
			(unsigned int)st.st_uid, (unsigned int)geteuid());
		return -EPERM;
	}
	return 0;
}

static int wgkey_read_file(const char *path, uint8_t key[WG_KEY_LEN])
{
	char buf[WG_KEY_B64_LEN + 2];
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		log_err("wgkey: cannot stat key file '%s': %s", path, strerror(-ret));
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		log_err("wgkey: key file '%s' is not a regular file", path);
		ret = -EINVAL;
		goto cleanup;
	}
	if (st.st_mode & 0077) {
		log_err("wgkey: key file '%s' has mode %04o: it must not be readable or writable "
			"by group or others (chmod 600 '%s')", path,
			(unsigned int)(st.st_mode & 07777), path);
		ret = -EPERM;
		goto cleanup;
	}
	if (st.st_uid != geteuid()) {
		log_err("wgkey: key file '%s' is owned by uid %u, not by uid %u", path,
			(unsigned int)st.st_uid, (unsigned int)geteuid());
		ret = -EPERM;
		goto cleanup;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		ret = -errno;
		log_err("wgkey: cannot read key file '%s': %s", path, strerror(-ret));
		goto cleanup;
	}
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (wgkey_from_base64(buf, key) < 0) {
		/* The content is secret: say what is wrong with it, never what it is. */
		log_err("wgkey: key file '%s' does not hold one base64 WireGuard key "
			"(44 characters and an optional newline, %zd bytes read)", path, n);
		ret = -EINVAL;
		goto cleanup;
	}
	ret = 0;
cleanup:
	OPENSSL_cleanse(buf, sizeof(buf));
	close(fd);
	return ret;
}

static int wgkey_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/* Writes a fresh key beside the final name and renames it into place without replacing,
 * so a crash leaves either no key or a whole one, and two racing creators agree. */
static int wgkey_create_file(const char *dir, const char *path, uint8_t key[WG_KEY_LEN])
{
	char tmp[PATH_MAX];
	char b64[WG_KEY_B64_LEN + 1];
	uint8_t fresh[WG_KEY_LEN];
	bool tmp_exists = false;
	int fd = -1, ret;
	ssize_t n = 0;
	size_t len;

	if (snprintf(tmp, sizeof(tmp), "%s/.wgkey-XXXXXX", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	ret = wgkey_generate_private(fresh);
	if (ret < 0)
		goto cleanup;
	wgkey_to_base64(fresh, b64);
	len = strlen(b64);
	b64[len++] = '\n';
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		log_err("wgkey: cannot create a temporary key file in '%s': %s", dir,
			strerror(-ret));
		goto cleanup;
	}
	tmp_exists = true;
	if (fchmod(fd, 0600) < 0 || (n = write(fd, b64, len)) < 0 || fsync(fd) < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO; /* 45 bytes to a new regular file: short only when the disk is full */
	if (ret < 0) {
		log_err("wgkey: cannot write temporary key file '%s': %s", tmp, strerror(-ret));
		goto cleanup;
	}
	close(fd);
	fd = -1;
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		ret = -errno;
		if (ret != -EEXIST)
			log_err("wgkey: cannot rename '%s' to '%s': %s", tmp, path, strerror(-ret));
		goto cleanup;
	}
	tmp_exists = false;
	(void)wgkey_fsync_dir(dir);
	memcpy(key, fresh, WG_KEY_LEN);
	log_info("wgkey: created private key file '%s' (mode 0600)", path);
	ret = 0;
cleanup:
	if (fd >= 0)
		close(fd);
	if (tmp_exists)
		unlink(tmp);
	OPENSSL_cleanse(fresh, sizeof(fresh));
	OPENSSL_cleanse(b64, sizeof(b64));
	return ret;
}

int wgkey_load_or_create(const char *path, uint8_t key[WG_KEY_LEN])
{
	char dirbuf[PATH_MAX];
	const char *dir;
	int ret;

	if (!path || !*path || strlen(path) >= sizeof(dirbuf)) {
		log_err("wgkey: key file path '%s' is empty or too long", path ? path : "");
		return -EINVAL;
	}
	strcpy(dirbuf, path);
	dir = dirname(dirbuf);
	if (mkdir(dir, 0700) == 0) {
		log_info("wgkey: created key folder '%s' (mode 0700)", dir);
	} else if (errno != EEXIST) {
		ret = -errno;
		log_err("wgkey: cannot create key folder '%s': %s", dir, strerror(-ret));
		return ret;
	}
	wgkey_tighten_dir(dir);
	ret = wgkey_check_dir(dir);
	if (ret < 0)
		return ret;
	ret = wgkey_read_file(path, key);
	if (ret != -ENOENT) {
		if (ret < 0 && ret != -EPERM && ret != -EINVAL)
			log_err("wgkey: cannot open key file '%s': %s", path, strerror(-ret));
		return ret;
	}
	ret = wgkey_create_file(dir, path, key);
	if (ret == -EEXIST)
		ret = wgkey_read_file(path, key);
	return ret;
}
