// SPDX-License-Identifier: Apache-2.0
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "log.h"
#include "wgkey.h"

static void hex_to_bytes(const char *hex, uint8_t key[WG_KEY_LEN])
{
	cr_assert_eq(wgkey_from_hex(hex, key), 0, "bad test vector %s", hex);
}

/* RFC 7748 section 6.1 (X25519 Diffie-Hellman). */
#define ALICE_PRIV "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
#define ALICE_PUB "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
#define BOB_PRIV "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
#define BOB_PUB "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
#define SHARED "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

Test(wgkey, rfc7748_public_keys)
{
	uint8_t priv[WG_KEY_LEN], pub[WG_KEY_LEN];
	char hex[2 * WG_KEY_LEN + 1];

	hex_to_bytes(ALICE_PRIV, priv);
	cr_assert_eq(wgkey_public_from_private(priv, pub), 0);
	wgkey_to_hex(pub, hex);
	cr_assert_str_eq(hex, ALICE_PUB);
	hex_to_bytes(BOB_PRIV, priv);
	cr_assert_eq(wgkey_public_from_private(priv, pub), 0);
	wgkey_to_hex(pub, hex);
	cr_assert_str_eq(hex, BOB_PUB);
}

static void derive(const uint8_t priv[WG_KEY_LEN], const uint8_t peer[WG_KEY_LEN],
		   uint8_t shared[WG_KEY_LEN])
{
	EVP_PKEY *a = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, NULL, priv, WG_KEY_LEN);
	EVP_PKEY *b = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, peer, WG_KEY_LEN);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(a, NULL);
	size_t len = WG_KEY_LEN;

	cr_assert(ctx && EVP_PKEY_derive_init(ctx) > 0 && EVP_PKEY_derive_set_peer(ctx, b) > 0);
	cr_assert(EVP_PKEY_derive(ctx, shared, &len) > 0 && len == WG_KEY_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

Test(wgkey, rfc7748_shared_secret_from_derived_keys)
{
	uint8_t ap[WG_KEY_LEN], bp[WG_KEY_LEN], apub[WG_KEY_LEN], bpub[WG_KEY_LEN];
	uint8_t s1[WG_KEY_LEN], s2[WG_KEY_LEN], want[WG_KEY_LEN];

	hex_to_bytes(ALICE_PRIV, ap);
	hex_to_bytes(BOB_PRIV, bp);
	hex_to_bytes(SHARED, want);
	cr_assert_eq(wgkey_public_from_private(ap, apub), 0);
	cr_assert_eq(wgkey_public_from_private(bp, bpub), 0);
	derive(ap, bpub, s1);
	derive(bp, apub, s2);
	cr_assert_arr_eq(s1, want, WG_KEY_LEN);
	cr_assert_arr_eq(s2, want, WG_KEY_LEN);
}

Test(wgkey, generated_keys_are_clamped_and_distinct)
{
	uint8_t a[WG_KEY_LEN], b[WG_KEY_LEN], pub[WG_KEY_LEN];

	cr_assert_eq(wgkey_generate_private(a), 0);
	cr_assert_eq(wgkey_generate_private(b), 0);
	cr_assert_neq(memcmp(a, b, WG_KEY_LEN), 0);
	cr_assert_eq(a[0] & 7, 0);
	cr_assert_eq(a[31] & 128, 0);
	cr_assert_eq(a[31] & 64, 64);
	cr_assert_eq(wgkey_public_from_private(a, pub), 0);
}

Test(wgkey, base64_round_trip_and_known_value)
{
	uint8_t key[WG_KEY_LEN], back[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN];

	hex_to_bytes(ALICE_PUB, key);
	wgkey_to_base64(key, b64);
	/* `echo 8520...4e6a | xxd -r -p | base64` */
	cr_assert_str_eq(b64, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=");
	cr_assert_eq(strlen(b64), 44);
	cr_assert_eq(wgkey_from_base64(b64, back), 0);
	cr_assert_arr_eq(key, back, WG_KEY_LEN);
	for (int i = 0; i < 64; i++) {
		for (int j = 0; j < WG_KEY_LEN; j++)
			key[j] = (uint8_t)(i * 37 + j * 11);
		wgkey_to_base64(key, b64);
		cr_assert_eq(wgkey_from_base64(b64, back), 0);
		cr_assert_arr_eq(key, back, WG_KEY_LEN);
	}
}

Test(wgkey, base64_rejects_malformed)
{
	static const char *const bad[] = {
		"",
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo",    /* 43, no padding */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo==",  /* 45 */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTm==",   /* padding too early */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp=",   /* stray low bits */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqq Tmo=",   /* space */
		"hSDwCYkwp1R0i33ctD73Wg2-Og0mOBr066SpjqqbTmo=",   /* url-safe alphabet */
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=\n", /* trailing newline */
	};
	uint8_t key[WG_KEY_LEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(wgkey_from_base64(bad[i], key), -EINVAL, "accepted '%s'", bad[i]);
	cr_expect_eq(wgkey_from_base64(NULL, key), -EINVAL);
}

Test(wgkey, hex_round_trip_and_rejects_malformed)
{
	uint8_t key[WG_KEY_LEN];
	char hex[2 * WG_KEY_LEN + 1];

	cr_assert_eq(wgkey_from_hex("8520F0098930A754748B7DDCB43EF75A0DBF3A0D26381AF4EBA4A98EAA9B4E6A",
				    key), 0);
	wgkey_to_hex(key, hex);
	cr_assert_str_eq(hex, ALICE_PUB);
	cr_expect_eq(wgkey_from_hex(ALICE_PUB "00", key), -EINVAL);
	cr_expect_eq(wgkey_from_hex("8520f0", key), -EINVAL);
	cr_expect_eq(wgkey_from_hex("g520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
				    key), -EINVAL);
	cr_expect_eq(wgkey_from_hex(" 520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
				    key), -EINVAL);
	cr_expect_eq(wgkey_from_hex("", key), -EINVAL);
}

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/wg-test-wgkey-XXXXXX");

	cr_assert_not_null(mkdtemp(dir));
	return dir;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	cr_assert_gt(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

static void rm_rf(const char *dir)
{
	char *cmd = NULL;

	cr_assert_gt(asprintf(&cmd, "rm -rf '%s'", dir), 0);
	cr_expect_eq(system(cmd), 0);
	free(cmd);
}

/* Captures the logger's output so tests can check what was (and was not) said. */
static char log_path[] = "/tmp/wg-test-wgkey-log-XXXXXX";
static int log_fd = -1;

static void log_capture(void)
{
	log_fd = mkstemp(log_path);
	cr_assert_geq(log_fd, 0);
	log_set_stderr(0);
	cr_assert_eq(log_open_file(log_path), 0);
}

static char *log_captured(void)
{
	static char buf[16384];
	ssize_t n;

	log_close_file();
	n = pread(log_fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	close(log_fd);
	unlink(log_path);
	return buf;
}

Test(wgkey, load_or_create_makes_0600_in_0700_then_reloads)
{
	char *base = make_tmpdir(), *dir = path_in(base, "state"), *path = path_in(dir, "private.key");
	uint8_t k1[WG_KEY_LEN], k2[WG_KEY_LEN], pub[WG_KEY_LEN];
	char b64[WG_KEY_B64_LEN], content[128] = { 0 };
	struct stat st;
	char *logs;
	int fd;

	log_capture();
	cr_assert_eq(wgkey_load_or_create(path, k1), 0);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	fd = open(path, O_RDONLY);
	cr_assert_eq(read(fd, content, sizeof(content) - 1), 45);
	close(fd);
	wgkey_to_base64(k1, b64);
	cr_assert_eq(strncmp(content, b64, 44), 0);
	cr_assert_eq(content[44], '\n');
	cr_assert_eq(wgkey_load_or_create(path, k2), 0);
	cr_assert_arr_eq(k1, k2, WG_KEY_LEN);
	logs = log_captured();
	cr_assert_null(strstr(logs, b64), "private key appears in the log");
	cr_assert_eq(wgkey_public_from_private(k1, pub), 0);
	rm_rf(base);
	free(path);
	free(dir);
	free(base);
}

Test(wgkey, reads_wg_genkey_format_without_newline)
{
	char *dir = make_tmpdir(), *path = path_in(dir, "k");
	uint8_t key[WG_KEY_LEN], want[WG_KEY_LEN];
	int fd;

	cr_assert_eq(chmod(dir, 0700), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_eq(write(fd, "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=", 44), 44);
	close(fd);
	cr_assert_eq(wgkey_load_or_create(path, key), 0);
	hex_to_bytes(ALICE_PUB, want);
	cr_assert_arr_eq(key, want, WG_KEY_LEN);
	rm_rf(dir);
	free(path);
	free(dir);
}

Test(wgkey, refuses_open_file_and_names_path_and_mode)
{
	char *dir = make_tmpdir(), *path = path_in(dir, "private.key");
	uint8_t key[WG_KEY_LEN];
	char msg[512];
	char *logs;

	cr_assert_eq(chmod(dir, 0700), 0);
	log_capture();
	cr_assert_eq(wgkey_load_or_create(path, key), 0);
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(wgkey_load_or_create(path, key), -EPERM);
	cr_assert_eq(chmod(path, 0620), 0);
	cr_assert_eq(wgkey_load_or_create(path, key), -EPERM);
	logs = log_captured();
	snprintf(msg, sizeof(msg), "key file '%s' has mode 0644", path);
	cr_assert_not_null(strstr(logs, msg), "log was: %s", logs);
	snprintf(msg, sizeof(msg), "key file '%s' has mode 0620", path);
	cr_assert_not_null(strstr(logs, msg), "log was: %s", logs);
	rm_rf(dir);
	free(path);
	free(dir);
}

/* kubelet's hostPath DirectoryOrCreate and mkdir -p make the state folder 0755 */
Test(wgkey, tightens_an_open_folder_of_ours)
{
	char *dir = make_tmpdir(), *path = path_in(dir, "private.key");
	uint8_t key[WG_KEY_LEN];
	struct stat st;
	char msg[512];
	char *logs;

	cr_assert_eq(chmod(dir, 0755), 0);
	log_capture();
	cr_assert_eq(wgkey_load_or_create(path, key), 0);
	logs = log_captured();
	snprintf(msg, sizeof(msg), "key folder '%s' had mode 0755: tightened to 0700", dir);
	cr_assert_not_null(strstr(logs, msg), "log was: %s", logs);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0700);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);
	rm_rf(dir);
	free(path);
	free(dir);
}

/* Not ours, or reached through a symlink: refused as it is, never chmod'ed. */
Test(wgkey, refuses_open_folder_it_may_not_tighten)
{
	char *base = make_tmpdir(), *dir = path_in(base, "real"), *link = path_in(base, "link");
	char *via_link = path_in(link, "private.key"), *path = path_in(dir, "private.key");
	uint8_t key[WG_KEY_LEN];
	struct stat st;
	char msg[512];
	char *logs;

	cr_assert_eq(chmod(base, 0700), 0);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(chmod(dir, 0755), 0);
	cr_assert_eq(symlink("real", link), 0);
	log_capture();
	cr_assert_eq(wgkey_load_or_create(via_link, key), -EPERM);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0755, "tightened through a symlink");
	cr_assert_eq(chown(dir, 65534, 65534), 0);
	cr_assert_eq(wgkey_load_or_create(path, key), -EPERM);
	cr_assert_eq(stat(dir, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0755, "tightened a folder of another user");
	logs = log_captured();
	snprintf(msg, sizeof(msg), "key folder '%s' has mode 0755", dir);
	cr_assert_not_null(strstr(logs, msg), "log was: %s", logs);
	cr_assert_eq(access(path, F_OK), -1, "a key was written into an open folder");
	rm_rf(base);
	free(path);
	free(via_link);
	free(link);
	free(dir);
	free(base);
}

Test(wgkey, refuses_garbage_and_symlink)
{
	char *dir = make_tmpdir(), *path = path_in(dir, "k"), *link = path_in(dir, "l");
	uint8_t key[WG_KEY_LEN];
	int fd;

	cr_assert_eq(chmod(dir, 0700), 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	cr_assert_eq(write(fd, "not a key\n", 10), 10);
	close(fd);
	cr_assert_eq(wgkey_load_or_create(path, key), -EINVAL);
	cr_assert_eq(symlink(path, link), 0);
	cr_assert_eq(wgkey_load_or_create(link, key), -ELOOP);
	rm_rf(dir);
	free(link);
	free(path);
	free(dir);
}
