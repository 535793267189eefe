// SPDX-License-Identifier: Apache-2.0
/*
 * Where the API server is and how to prove who we are: the pod's service account
 * (in-cluster) or a kubeconfig file, read with libyaml. Only what a node agent needs
 * is supported; anything that would need to run a program or weaken TLS is refused
 * with a message rather than half-supported.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "atomicfile.h"
#include "kube.h"
#include "log.h"
#include "strutil.h"

#define KUBE_FILE_MAX (4 << 20)

void kube_config_free(struct kube_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->server);
	free(cfg->ca_file);
	free(cfg->ca_pem);
	if (cfg->token)
		explicit_bzero(cfg->token, strlen(cfg->token));
	free(cfg->token);
	free(cfg->token_file);
	free(cfg->client_cert_file);
	free(cfg->client_cert_pem);
	if (cfg->client_key_pem)
		explicit_bzero(cfg->client_key_pem, strlen(cfg->client_key_pem));
	free(cfg->client_key_pem);
	free(cfg->client_key_file);
	free(cfg->source);
	free(cfg);
}

static char *dup_or_null(const char *s, bool *fail)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*fail = true;
	return d;
}

int kube_config_dup(const struct kube_config *src, struct kube_config **out)
{
	struct kube_config *dst = calloc(1, sizeof(*dst));
	bool fail = !dst;

	if (fail)
		return -ENOMEM;
	dst->server = dup_or_null(src->server, &fail);
	dst->ca_file = dup_or_null(src->ca_file, &fail);
	dst->ca_pem = dup_or_null(src->ca_pem, &fail);
	dst->token = dup_or_null(src->token, &fail);
	dst->token_file = dup_or_null(src->token_file, &fail);
	dst->client_cert_file = dup_or_null(src->client_cert_file, &fail);
	dst->client_cert_pem = dup_or_null(src->client_cert_pem, &fail);
	dst->client_key_file = dup_or_null(src->client_key_file, &fail);
	dst->client_key_pem = dup_or_null(src->client_key_pem, &fail);
	dst->source = dup_or_null(src->source ? src->source : "kube", &fail);
	if (fail) {
		kube_config_free(dst);
		return -ENOMEM;
	}
	*out = dst;
	return 0;
}

/* The token as kubelet projects it: one line, surrounding whitespace is not part of it. */
int kube_read_token_file(const char *path, char **out)
{
	char *buf = NULL, *start, *end, *tok;
	int ret;

	ret = file_read_all(path, KUBE_FILE_MAX, &buf, NULL);
	if (ret < 0) {
		log_err("kube: cannot read token file '%s': %s", path, strerror(-ret));
		goto cleanup;
	}
	for (start = buf; *start && isspace((unsigned char)*start); start++)
		;
	end = start + strlen(start);
	while (end > start && isspace((unsigned char)end[-1]))
		*--end = '\0';
	if (!*start) {
		log_err("kube: token file '%s' is empty", path);
		ret = -EINVAL;
		goto cleanup;
	}
	for (const char *p = start; *p; p++) {
		if (!isgraph((unsigned char)*p)) {
			log_err("kube: token in '%s' holds a space or control character", path);
			ret = -EINVAL;
			goto cleanup;
		}
	}
	tok = strdup(start);
	if (!tok) {
		ret = -ENOMEM;
		goto cleanup;
	}
	*out = tok;
	ret = 0;
cleanup:
	if (buf)
		explicit_bzero(buf, strlen(buf));
	free(buf);
	return ret;
}

static int check_readable(const char *what, const char *path)
{
	char *buf = NULL;
	int ret = file_read_all(path, KUBE_FILE_MAX, &buf, NULL);

	if (ret < 0)
		log_err("kube: cannot read %s '%s': %s", what, path, strerror(-ret));
	else if (!strstr(buf, "-----BEGIN")) {
		log_err("kube: %s '%s' is not PEM", what, path);
		ret = -EINVAL;
	}
	free(buf);
	return ret;
}

static int validate_server(const char *server, const char *source)
{
	const char *host = server + strlen("https://");

	if (strncmp(server, "https://", 8) != 0) {
		log_err("kube: %s: server '%s' is not an https:// URL (a bearer token never "
			"travels in clear)", source, server);
		return -EINVAL;
	}
	if (!*host || *host == '/' || strpbrk(server, " \t\r\n?#")) {
		log_err("kube: %s: server '%s' has no host or holds a query", source, server);
		return -EINVAL;
	}
	return 0;
}

int kube_config_in_cluster(const char *sa_dir, struct kube_config **out)
{
	struct kube_config *cfg = NULL;
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char *token = NULL;
	unsigned long portnum;
	int ret;

	if (!sa_dir)
		sa_dir = KUBE_SA_DIR;
	if (!host || !*host || !port || !*port) {
		log_err("kube: in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
			"are not set (not running in a pod? use --kubeconfig)");
		return -ENOENT;
	}
	if (parse_uint(port, 65535, &portnum) < 0 || portnum == 0) {
		log_err("kube: in-cluster: KUBERNETES_SERVICE_PORT '%s' is not a port", port);
		return -EINVAL;
	}
	if (strpbrk(host, "/[]@ ?#")) {
		log_err("kube: in-cluster: KUBERNETES_SERVICE_HOST '%s' is not a host", host);
		return -EINVAL;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return -ENOMEM;
	if (asprintf(&cfg->server, strchr(host, ':') ? "https://[%s]:%lu" : "https://%s:%lu",
		     host, portnum) < 0 ||
	    asprintf(&cfg->token_file, "%s/token", sa_dir) < 0 ||
	    asprintf(&cfg->ca_file, "%s/ca.crt", sa_dir) < 0 ||
	    !(cfg->source = strdup("in-cluster"))) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = kube_read_token_file(cfg->token_file, &token);
	if (ret < 0)
		goto cleanup;
	ret = check_readable("service account CA", cfg->ca_file);
	if (ret < 0)
		goto cleanup;
	*out = cfg;
	cfg = NULL;
cleanup:
	if (token)
		explicit_bzero(token, strlen(token));
	free(token);
	kube_config_free(cfg);
	return ret;
}

/* ---- kubeconfig ---- */

static yaml_node_t *ymap_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);

		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

/* A scalar's text; "" for a missing key or null; NULL when the node is not a scalar. */
static const char *ystr(yaml_node_t *n)
{
	if (!n)
		return "";
	if (n->type != YAML_SCALAR_NODE)
		return NULL;
	if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (strcmp((const char *)n->data.scalar.value, "null") == 0 ||
	     strcmp((const char *)n->data.scalar.value, "~") == 0))
		return "";
	return (const char *)n->data.scalar.value;
}

/* kubeconfig lists are [{name: X, <inner>: {...}}]: the mapping under inner for name. */
static yaml_node_t *ynamed(yaml_document_t *doc, yaml_node_t *root, const char *list,
			   const char *inner, const char *name)
{
	yaml_node_t *seq = ymap_get(doc, root, list);

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return NULL;
	for (yaml_node_item_t *i = seq->data.sequence.items.start;
	     i < seq->data.sequence.items.top; i++) {
		yaml_node_t *item = yaml_document_get_node(doc, *i);
		const char *n = ystr(ymap_get(doc, item, "name"));

		if (n && strcmp(n, name) == 0) {
			yaml_node_t *v = ymap_get(doc, item, inner);

			return v && v->type == YAML_MAPPING_NODE ? v : NULL;
		}
	}
	return NULL;
}

static int b64_decode_pem(const char *what, const char *b64, const char *source,
			  char **out)
{
	size_t n = strlen(b64), clean_len = 0, pad = 0;
	char *clean = NULL;
	unsigned char *bin = NULL;
	int got, ret;

	clean = malloc(n + 1);
	bin = malloc(n / 4 * 3 + 4);
	if (!clean || !bin) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)b64[i]))
			clean[clean_len++] = b64[i];
	clean[clean_len] = '\0';
	got = clean_len && clean_len % 4 == 0 ?
	      EVP_DecodeBlock(bin, (unsigned char *)clean, (int)clean_len) : -1;
	if (got < 0) {
		log_err("kube: %s: %s is not valid base64", source, what);
		ret = -EINVAL;
		goto cleanup;
	}
	while (pad < 2 && clean[clean_len - 1 - pad] == '=')
		pad++;
	got -= (int)pad;
	bin[got] = '\0';
	if (memchr(bin, '\0', (size_t)got) || !strstr((char *)bin, "-----BEGIN")) {
		log_err("kube: %s: %s does not decode to PEM", source, what);
		ret = -EINVAL;
		goto cleanup;
	}
	*out = (char *)bin;
	bin = NULL;
	ret = 0;
cleanup:
	free(clean);
	free(bin);
	return ret;
}

/* Relative paths in a kubeconfig are relative to the file's folder, as kubectl does. */
static int resolve_path(const char *kubeconfig, const char *p, char **out)
{
	const char *slash = strrchr(kubeconfig, '/');
	char *path;

	if (p[0] == '/' || !slash)
		path = strdup(p);
	else if (asprintf(&path, "%.*s/%s", (int)(slash - kubeconfig), kubeconfig, p) < 0)
		path = NULL;
	if (!path)
		return -ENOMEM;
	*out = path;
	return 0;
}

/* Reads "<key>" (a path) or "<key>-data" (base64 PEM), at most one of them. */
static int pem_pair(yaml_document_t *doc, yaml_node_t *map, const char *key,
		    const char *path, char **file_out, char **pem_out)
{
	char data_key[64];
	const char *file, *data;
	int ret;

	snprintf(data_key, sizeof(data_key), "%s-data", key);
	file = ystr(ymap_get(doc, map, key));
	data = ystr(ymap_get(doc, map, data_key));
	if (!file || !data) {
		log_err("kube: %s: '%s' must be a string", path, file ? data_key : key);
		return -EINVAL;
	}
	if (*data)
		return b64_decode_pem(data_key, data, path, pem_out);
	if (*file) {
		ret = resolve_path(path, file, file_out);
		if (ret < 0)
			return ret;
		return check_readable(key, *file_out);
	}
	return 0;
}

static int kubeconfig_user(yaml_document_t *doc, yaml_node_t *user, const char *path,
			   const char *user_name, struct kube_config *cfg)
{
	const char *token, *token_file;
	int ret;

	if (ymap_get(doc, user, "exec") || ymap_get(doc, user, "auth-provider")) {
		log_err("kube: %s: user '%s' gets its credentials from an exec plugin or auth "
			"provider, which twilld does not run; give it a token or a client "
			"certificate (a ServiceAccount token is the usual choice)", path, user_name);
		return -ENOTSUP;
	}
	if (ymap_get(doc, user, "password") || ymap_get(doc, user, "username")) {
		log_err("kube: %s: user '%s' uses basic authentication, which Kubernetes "
			"removed; use a token or a client certificate", path, user_name);
		return -ENOTSUP;
	}
	token = ystr(ymap_get(doc, user, "token"));
	token_file = ystr(ymap_get(doc, user, "tokenFile"));
	if (!token || !token_file) {
		log_err("kube: %s: user '%s': token and tokenFile must be strings", path, user_name);
		return -EINVAL;
	}
	if (*token && !(cfg->token = strdup(token)))
		return -ENOMEM;
	if (!*token && *token_file) {
		char *t = NULL;

		ret = resolve_path(path, token_file, &cfg->token_file);
		if (ret < 0)
			return ret;
		ret = kube_read_token_file(cfg->token_file, &t);
		free(t);
		if (ret < 0)
			return ret;
	}
	ret = pem_pair(doc, user, "client-certificate", path, &cfg->client_cert_file,
		       &cfg->client_cert_pem);
	if (ret < 0)
		return ret;
	ret = pem_pair(doc, user, "client-key", path, &cfg->client_key_file,
		       &cfg->client_key_pem);
	if (ret < 0)
		return ret;
	if (!!(cfg->client_cert_file || cfg->client_cert_pem) !=
	    !!(cfg->client_key_file || cfg->client_key_pem)) {
		log_err("kube: %s: user '%s' has a client certificate without its key, or a key "
			"without its certificate", path, user_name);
		return -EINVAL;
	}
	if (!cfg->token && !cfg->token_file && !cfg->client_cert_file && !cfg->client_cert_pem) {
		log_err("kube: %s: user '%s' has no token, tokenFile or client certificate",
			path, user_name);
		return -EINVAL;
	}
	return 0;
}

int kube_config_from_kubeconfig(const char *path, struct kube_config **out)
{
	struct kube_config *cfg = NULL;
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *ctx, *cluster, *user;
	bool parser_ok = false, doc_ok = false;
	char *text = NULL;
	size_t len = 0;
	const char *ctx_name, *cluster_name, *user_name, *server, *insecure;
	int ret;

	ret = file_read_all(path, KUBE_FILE_MAX, &text, &len);
	if (ret < 0) {
		log_err("kube: cannot read kubeconfig '%s': %s", path, strerror(-ret));
		goto cleanup;
	}
	if (!yaml_parser_initialize(&parser)) {
		ret = -ENOMEM;
		goto cleanup;
	}
	parser_ok = true;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		log_err("kube: kubeconfig '%s' is not valid YAML: %s at line %zu", path,
			parser.problem ? parser.problem : "parse error",
			parser.problem_mark.line + 1);
		ret = -EINVAL;
		goto cleanup;
	}
	doc_ok = true;
	root = yaml_document_get_root_node(&doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		log_err("kube: kubeconfig '%s' is empty or not a mapping", path);
		ret = -EINVAL;
		goto cleanup;
	}
	ctx_name = ystr(ymap_get(&doc, root, "current-context"));
	if (!ctx_name || !*ctx_name) {
		log_err("kube: kubeconfig '%s' has no current-context", path);
		ret = -EINVAL;
		goto cleanup;
	}
	ctx = ynamed(&doc, root, "contexts", "context", ctx_name);
	if (!ctx) {
		log_err("kube: kubeconfig '%s': current-context '%s' is not in contexts", path,
			ctx_name);
		ret = -EINVAL;
		goto cleanup;
	}
	cluster_name = ystr(ymap_get(&doc, ctx, "cluster"));
	user_name = ystr(ymap_get(&doc, ctx, "user"));
	if (!cluster_name || !*cluster_name || !user_name || !*user_name) {
		log_err("kube: kubeconfig '%s': context '%s' needs a cluster and a user", path,
			ctx_name);
		ret = -EINVAL;
		goto cleanup;
	}
	cluster = ynamed(&doc, root, "clusters", "cluster", cluster_name);
	if (!cluster) {
		log_err("kube: kubeconfig '%s': cluster '%s' (of context '%s') is not in clusters",
			path, cluster_name, ctx_name);
		ret = -EINVAL;
		goto cleanup;
	}
	user = ynamed(&doc, root, "users", "user", user_name);
	if (!user) {
		log_err("kube: kubeconfig '%s': user '%s' (of context '%s') is not in users",
			path, user_name, ctx_name);
		ret = -EINVAL;
		goto cleanup;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg || !(cfg->source = strdup(path))) {
		ret = -ENOMEM;
		goto cleanup;
	}
	server = ystr(ymap_get(&doc, cluster, "server"));
	if (!server || !*server) {
		log_err("kube: kubeconfig '%s': cluster '%s' has no server", path, cluster_name);
		ret = -EINVAL;
		goto cleanup;
	}
	ret = validate_server(server, path);
	if (ret < 0)
		goto cleanup;
	cfg->server = strdup(server);
	if (!cfg->server) {
		ret = -ENOMEM;
		goto cleanup;
	}
	while (cfg->server[strlen(cfg->server) - 1] == '/')
		cfg->server[strlen(cfg->server) - 1] = '\0';
	insecure = ystr(ymap_get(&doc, cluster, "insecure-skip-tls-verify"));
	if (insecure && strcmp(insecure, "true") == 0) {
		log_err("kube: kubeconfig '%s': cluster '%s' sets insecure-skip-tls-verify; "
			"twilld always verifies the API server: give certificate-authority(-data)",
			path, cluster_name);
		ret = -EPERM;
		goto cleanup;
	}
	ret = pem_pair(&doc, cluster, "certificate-authority", path, &cfg->ca_file,
		       &cfg->ca_pem);
	if (ret < 0)
		goto cleanup;
	ret = kubeconfig_user(&doc, user, path, user_name, cfg);
	if (ret < 0)
		goto cleanup;
	*out = cfg;
	cfg = NULL;
cleanup:
	if (doc_ok)
		yaml_document_delete(&doc);
	if (parser_ok)
		yaml_parser_delete(&parser);
	if (text)
		explicit_bzero(text, len);
	free(text);
	kube_config_free(cfg);
	return ret;
}
