// SPDX-License-Identifier: Apache-2.0
/*
 * Nodes from the Kubernetes API: the list-then-watch protocol every controller speaks
 * (client-go's reflector), in a thread of its own so the agent only polls an eventfd.
 * The thread owns the cache and the curl handles; the agent only ever sees whole
 * NodeList documents, the same input the topology file gives it.
 */
#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "atomicfile.h"
#include "kube.h"
#include "log.h"
#include "twill-config.h"

#define KUBE_BODY_MAX (64u << 20)
#define KUBE_LINE_MAX (16u << 20)
#define KUBE_KEY_ANNOTATION "twill.dev/public-key"
#define KUBE_ANNOTATION_PREFIX "twill.dev/"
#define KUBE_PUBLISH_BACKOFF_MAX_MS (5u * 60 * 1000)
#define KUBE_PUBLISH_MIN_INTERVAL_MS 10000u

/* ---- the cache ---- */

struct kube_cache {
	json_t *nodes; /* name -> reduced Node */
	char *rv;
};

int kube_cache_new(struct kube_cache **out)
{
	struct kube_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->nodes = json_object();
	c->rv = strdup("");
	if (!c->nodes || !c->rv) {
		kube_cache_free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void kube_cache_free(struct kube_cache *c)
{
	if (!c)
		return;
	json_decref(c->nodes);
	free(c->rv);
	free(c);
}

const char *kube_cache_resource_version(const struct kube_cache *c)
{
	return c->rv;
}

static int cache_set_rv(struct kube_cache *c, json_t *obj)
{
	const char *rv = json_string_value(
		json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	char *copy;

	if (!rv || !*rv)
		return 0;
	copy = strdup(rv);
	if (!copy)
		return -ENOMEM;
	free(c->rv);
	c->rv = copy;
	return 0;
}

static int copy_field(json_t *dst, json_t *src, const char *key)
{
	json_t *v = json_object_get(src, key);

	if (!v)
		return 0;
	return json_object_set_new(dst, key, json_deep_copy(v)) ? -ENOMEM : 0;
}

/*
 * Only what the topology contract reads: name, twill.dev/ annotations, the pod CIDRs and
 * the addresses. Heartbeats, images, labels, taints (cordon) and other controllers'
 * annotations change nothing Twill does, so they must not wake the agent.
 */
static json_t *node_reduce(json_t *node)
{
	json_t *meta = json_object_get(node, "metadata");
	json_t *spec = json_object_get(node, "spec");
	json_t *status = json_object_get(node, "status");
	const char *name = json_string_value(json_object_get(meta, "name"));
	json_t *out = NULL, *ann, *v;
	const char *key;

	if (!name || !*name)
		return NULL;
	out = json_pack("{s:s, s:s, s:{s:s, s:{}}, s:{}}", "apiVersion", "v1", "kind", "Node",
			"metadata", "name", name, "annotations", "spec");
	if (!out)
		return NULL;
	ann = json_object_get(json_object_get(out, "metadata"), "annotations");
	json_object_foreach(json_object_get(meta, "annotations"), key, v) {
		if (strncmp(key, KUBE_ANNOTATION_PREFIX, strlen(KUBE_ANNOTATION_PREFIX)) == 0 &&
		    json_object_set(ann, key, v))
			goto fail;
	}
	if (copy_field(json_object_get(out, "metadata"), meta, "uid") ||
	    copy_field(json_object_get(out, "spec"), spec, "podCIDR") ||
	    copy_field(json_object_get(out, "spec"), spec, "podCIDRs"))
		goto fail;
	if (json_object_get(status, "addresses")) {
		json_t *st = json_object();

		if (!st || json_object_set_new(out, "status", st) ||
		    copy_field(st, status, "addresses"))
			goto fail;
	}
	return out;
fail:
	json_decref(out);
	return NULL;
}

int kube_cache_load_list(struct kube_cache *c, const char *json, size_t len, bool reset,
			 char **continue_token)
{
	json_error_t jerr;
	json_t *root, *items, *item;
	const char *kind, *cont;
	size_t i;
	int ret;

	root = json_loadb(json, len, 0, &jerr);
	if (!root) {
		log_err("kube: node list is not JSON: %s at line %d", jerr.text, jerr.line);
		return -EINVAL;
	}
	kind = json_string_value(json_object_get(root, "kind"));
	items = json_object_get(root, "items");
	if ((json_object_get(root, "kind") && (!kind || strcmp(kind, "NodeList") != 0)) ||
	    !json_is_array(items)) {
		log_err("kube: expected a NodeList with items, got kind '%s'", kind ? kind : "");
		ret = -EINVAL;
		goto cleanup;
	}
	if (reset)
		json_object_clear(c->nodes);
	json_array_foreach(items, i, item) {
		json_t *r = node_reduce(item);

		if (!r) {
			log_warn("kube: node list item %zu has no metadata.name, skipped", i);
			continue;
		}
		if (json_object_set_new(c->nodes, json_string_value(json_object_get(
				json_object_get(r, "metadata"), "name")), r)) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	ret = cache_set_rv(c, root);
	if (ret < 0)
		goto cleanup;
	if (continue_token) {
		cont = json_string_value(json_object_get(json_object_get(root, "metadata"),
							 "continue"));
		*continue_token = NULL;
		if (cont && *cont && !(*continue_token = strdup(cont))) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	ret = 0;
cleanup:
	json_decref(root);
	return ret;
}

int kube_cache_apply_event(struct kube_cache *c, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *root, *obj, *reduced = NULL, *old;
	const char *type, *name;
	int ret;

	while (len && isspace((unsigned char)line[len - 1]))
		len--;
	if (len == 0)
		return KUBE_EVENT_NONE;
	root = json_loadb(line, len, 0, &jerr);
	if (!root) {
		log_err("kube: watch event is not JSON: %s", jerr.text);
		return -EINVAL;
	}
	type = json_string_value(json_object_get(root, "type"));
	obj = json_object_get(root, "object");
	if (!type || !json_is_object(obj)) {
		log_err("kube: watch event without type or object");
		ret = -EINVAL;
		goto cleanup;
	}
	if (strcmp(type, "ERROR") == 0) {
		json_int_t code = json_integer_value(json_object_get(obj, "code"));
		const char *msg = json_string_value(json_object_get(obj, "message"));

		if (code == 410) {
			log_info("kube: watch expired (410 Gone: '%s'), listing again",
				 msg ? msg : "");
			ret = KUBE_EVENT_GONE;
		} else {
			log_warn("kube: watch ERROR event, code %lld: '%s'", (long long)code,
				 msg ? msg : "");
			ret = KUBE_EVENT_ERROR;
		}
		goto cleanup;
	}
	ret = cache_set_rv(c, obj);
	if (ret < 0)
		goto cleanup;
	if (strcmp(type, "BOOKMARK") == 0) {
		ret = KUBE_EVENT_BOOKMARK;
		goto cleanup;
	}
	name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
	if (!name || !*name) {
		log_err("kube: %s watch event for an object without metadata.name", type);
		ret = -EINVAL;
		goto cleanup;
	}
	old = json_object_get(c->nodes, name);
	if (strcmp(type, "DELETED") == 0) {
		ret = old ? KUBE_EVENT_CHANGED : KUBE_EVENT_NONE;
		json_object_del(c->nodes, name);
		goto cleanup;
	}
	if (strcmp(type, "ADDED") != 0 && strcmp(type, "MODIFIED") != 0) {
		log_warn("kube: unknown watch event type '%s' ignored", type);
		ret = KUBE_EVENT_NONE;
		goto cleanup;
	}
	reduced = node_reduce(obj);
	if (!reduced) {
		ret = -ENOMEM;
		goto cleanup;
	}
	if (old && json_equal(old, reduced)) {
		ret = KUBE_EVENT_NONE;
		goto cleanup;
	}
	if (json_object_set(c->nodes, name, reduced)) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = KUBE_EVENT_CHANGED;
cleanup:
	json_decref(reduced);
	json_decref(root);
	return ret;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int kube_cache_to_json(const struct kube_cache *c, char **json, size_t *len)
{
	size_t n = json_object_size(c->nodes), i = 0;
	const char **names = NULL;
	const char *key;
	json_t *doc = NULL, *items, *v;
	char *text;
	int ret;

	names = calloc(n ? n : 1, sizeof(*names));
	doc = json_pack("{s:s, s:s, s:{}, s:[]}", "apiVersion", "v1", "kind", "NodeList",
			"metadata", "items");
	if (!names || !doc) {
		ret = -ENOMEM;
		goto cleanup;
	}
	json_object_foreach(c->nodes, key, v)
		names[i++] = key;
	qsort(names, n, sizeof(*names), cmp_str);
	items = json_object_get(doc, "items");
	for (i = 0; i < n; i++) {
		if (json_array_append(items, json_object_get(c->nodes, names[i]))) {
			ret = -ENOMEM;
			goto cleanup;
		}
	}
	text = json_dumps(doc, JSON_COMPACT);
	if (!text) {
		ret = -ENOMEM;
		goto cleanup;
	}
	*json = text;
	if (len)
		*len = strlen(text);
	ret = 0;
cleanup:
	json_decref(doc);
	free(names);
	return ret;
}

const char *kube_cache_node_annotation(const struct kube_cache *c, const char *node,
				       const char *key)
{
	json_t *n = json_object_get(c->nodes, node);

	return json_string_value(json_object_get(
		json_object_get(json_object_get(n, "metadata"), "annotations"), key));
}

/* ---- HTTP ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void)
{
	curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int kube_curl_ready(void)
{
	pthread_once(&curl_once, curl_init);
	if (curl_init_result != CURLE_OK) {
		log_err("kube: libcurl initialisation failed: %s",
			curl_easy_strerror(curl_init_result));
		return -EIO;
	}
	return 0;
}

struct buf {
	char *data;
	size_t len;
	size_t max;
	bool overflow;
};

static int buf_append(struct buf *b, const void *p, size_t n)
{
	char *d;

	if (b->len + n > b->max) {
		b->overflow = true;
		return -EFBIG;
	}
	d = realloc(b->data, b->len + n + 1);
	if (!d)
		return -ENOMEM;
	memcpy(d + b->len, p, n);
	b->data = d;
	b->len += n;
	d[b->len] = '\0';
	return 0;
}

static size_t body_write(char *p, size_t size, size_t n, void *arg)
{
	return buf_append(arg, p, size * n) < 0 ? 0 : size * n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct kube_req {
	CURL *curl;
	struct curl_slist *headers;
	char errbuf[CURL_ERROR_SIZE];
};

static void kube_req_free(struct kube_req *r)
{
	curl_slist_free_all(r->headers);
	if (r->curl)
		curl_easy_cleanup(r->curl);
	r->curl = NULL;
	r->headers = NULL;
}

static int add_header(struct kube_req *r, const char *h)
{
	struct curl_slist *l = curl_slist_append(r->headers, h);

	if (!l)
		return -ENOMEM;
	r->headers = l;
	return 0;
}

/* libcurl 7.88 leaves its sockets inheritable, and the agent forks wireguard-go. */
static curl_socket_t cloexec_open_socket(void *arg, curlsocktype purpose,
					 struct curl_sockaddr *addr)
{
	int fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);

	(void)arg;
	(void)purpose;
	return fd < 0 ? CURL_SOCKET_BAD : fd;
}

/* A request to path with TLS verification, credentials and timeouts; not yet performed. */
static int kube_req_init(struct kube_req *r, const struct kube_config *cfg, const char *path,
			 unsigned connect_timeout_s)
{
	char *url = NULL, *token = NULL, *auth = NULL;
	struct curl_blob blob;
	int ret = -ENOMEM;

	memset(r, 0, sizeof(*r));
	ret = kube_curl_ready();
	if (ret < 0)
		return ret;
	r->curl = curl_easy_init();
	if (!r->curl || asprintf(&url, "%s%s", cfg->server, path) < 0) {
		url = NULL;
		ret = -ENOMEM;
		goto cleanup;
	}
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_OPENSOCKETFUNCTION, cloexec_open_socket);
	curl_easy_setopt(r->curl, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(r->curl, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, (long)connect_timeout_s);
	curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(r->curl, CURLOPT_TCP_KEEPINTVL, 10L);
	curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "twilld/" TWILL_VERSION);
	/* The cluster CA alone: a public CA must not be able to vouch for the API server. */
	if (cfg->ca_file || cfg->ca_pem)
		curl_easy_setopt(r->curl, CURLOPT_CAPATH, NULL);
	if (cfg->ca_file)
		curl_easy_setopt(r->curl, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->ca_pem) {
		blob = (struct curl_blob){ cfg->ca_pem, strlen(cfg->ca_pem), CURL_BLOB_COPY };
		curl_easy_setopt(r->curl, CURLOPT_CAINFO, NULL);
		curl_easy_setopt(r->curl, CURLOPT_CAINFO_BLOB, &blob);
	}
	curl_easy_setopt(r->curl, CURLOPT_SSLCERTTYPE, "PEM");
	curl_easy_setopt(r->curl, CURLOPT_SSLKEYTYPE, "PEM");
	if (cfg->client_cert_file)
		curl_easy_setopt(r->curl, CURLOPT_SSLCERT, cfg->client_cert_file);
	if (cfg->client_cert_pem) {
		blob = (struct curl_blob){ cfg->client_cert_pem, strlen(cfg->client_cert_pem),
					   CURL_BLOB_COPY };
		curl_easy_setopt(r->curl, CURLOPT_SSLCERT_BLOB, &blob);
	}
	if (cfg->client_key_file)
		curl_easy_setopt(r->curl, CURLOPT_SSLKEY, cfg->client_key_file);
	if (cfg->client_key_pem) {
		blob = (struct curl_blob){ cfg->client_key_pem, strlen(cfg->client_key_pem),
					   CURL_BLOB_COPY };
		curl_easy_setopt(r->curl, CURLOPT_SSLKEY_BLOB, &blob);
	}
	if (cfg->token) {
		token = strdup(cfg->token);
		if (!token) {
			ret = -ENOMEM;
			goto cleanup;
		}
	} else if (cfg->token_file) {
		ret = kube_read_token_file(cfg->token_file, &token);
		if (ret < 0)
			goto cleanup;
	}
	if (token) {
		if (asprintf(&auth, "Authorization: Bearer %s", token) < 0) {
			auth = NULL;
			ret = -ENOMEM;
			goto cleanup;
		}
		ret = add_header(r, auth);
		if (ret < 0)
			goto cleanup;
	}
	ret = add_header(r, "Accept: application/json");
	if (ret < 0)
		goto cleanup;
	ret = 0;
cleanup:
	if (ret < 0)
		kube_req_free(r);
	else
		curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->headers);
	if (token)
		explicit_bzero(token, strlen(token));
	if (auth)
		explicit_bzero(auth, strlen(auth));
	free(token);
	free(auth);
	free(url);
	return ret;
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return -EPROTO;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_WRITE_ERROR:
		return -EFBIG;
	default:
		return -EIO;
	}
}

/* The message of a Kubernetes Status body, or the body itself when it is not one. */
static void log_http_failure(const struct kube_config *cfg, const char *what, long status,
			     const struct buf *body)
{
	json_t *st = body->data ? json_loadb(body->data, body->len, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(st, "message"));
	char snippet[201];

	if (!msg) {
		snprintf(snippet, sizeof(snippet), "%s", body->data ? body->data : "");
		msg = snippet;
	}
	if (status == 401)
		log_err("kube: %s: %s: 401 Unauthorized from %s: the API server rejected the "
			"credentials (expired or revoked token, wrong client certificate): '%s'",
			cfg->source, what, cfg->server, msg);
	else if (status == 403)
		log_err("kube: %s: %s: 403 Forbidden: the account lacks RBAC on nodes (twill "
			"needs get, list, watch, patch): '%s'", cfg->source, what, msg);
	else
		log_warn("kube: %s: %s: HTTP %ld from %s: '%s'", cfg->source, what, status,
			 cfg->server, msg);
	json_decref(st);
}

struct kube_watch;
static void watch_hook(struct kube_watch *w, CURL *curl);
static bool watch_stopping(struct kube_watch *w);

/* One request, whole body in memory. 0 with *status set when the server answered. */
static int kube_do(const struct kube_config *cfg, const char *method, const char *path,
		   const char *content_type, const char *body, unsigned connect_timeout_s,
		   unsigned total_timeout_s, struct kube_watch *w, long *status,
		   struct buf *resp)
{
	struct kube_req r;
	char ct[128];
	CURLcode rc;
	int ret;

	ret = kube_req_init(&r, cfg, path, connect_timeout_s);
	if (ret < 0)
		return ret;
	if (content_type) {
		snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
		ret = add_header(&r, ct);
		if (ret < 0)
			goto cleanup;
		curl_easy_setopt(r.curl, CURLOPT_HTTPHEADER, r.headers);
	}
	curl_easy_setopt(r.curl, CURLOPT_CUSTOMREQUEST, method);
	if (body) {
		curl_easy_setopt(r.curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(r.curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(r.curl, CURLOPT_TIMEOUT, (long)total_timeout_s);
	curl_easy_setopt(r.curl, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(r.curl, CURLOPT_WRITEDATA, resp);
	if (w)
		watch_hook(w, r.curl);
	rc = curl_easy_perform(r.curl);
	if (rc != CURLE_OK) {
		ret = w && watch_stopping(w) ? -ECANCELED : curl_errno(rc);
		if (ret != -ECANCELED)
			log_warn("kube: %s: %s %s%s: %s", cfg->source, method, cfg->server, path,
				 resp->overflow ? "response too large" :
				 (r.errbuf[0] ? r.errbuf : curl_easy_strerror(rc)));
		goto cleanup;
	}
	curl_easy_getinfo(r.curl, CURLINFO_RESPONSE_CODE, status);
	ret = 0;
cleanup:
	kube_req_free(&r);
	return ret;
}

static bool node_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)name[i]) || isdigit((unsigned char)name[i]) ||
		      name[i] == '-' || name[i] == '.'))
			return false;
	return true;
}

static int patch_public_key(const struct kube_config *cfg, const char *node,
			    const char *key_b64, struct kube_watch *w)
{
	struct buf resp = { .max = KUBE_BODY_MAX };
	char *path = NULL, *body = NULL;
	json_t *patch = NULL;
	long status = 0;
	int ret;

	if (!node_name_valid(node)) {
		log_err("kube: node name '%s' is not a valid Kubernetes name", node);
		return -EINVAL;
	}
	if (!key_b64 || strlen(key_b64) != 44 || key_b64[43] != '=') {
		log_err("kube: public key '%s' is not a base64 WireGuard key",
			key_b64 ? key_b64 : "");
		return -EINVAL;
	}
	patch = json_pack("{s:{s:{s:s}}}", "metadata", "annotations", KUBE_KEY_ANNOTATION,
			  key_b64);
	body = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
	if (!body || asprintf(&path, "/api/v1/nodes/%s", node) < 0) {
		path = NULL;
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = kube_do(cfg, "PATCH", path, "application/merge-patch+json", body, 10, 30,
		      w, &status, &resp);
	if (ret < 0)
		goto cleanup;
	if (status != 200) {
		log_http_failure(cfg, "publishing the public key", status, &resp);
		ret = status == 401 || status == 403 ? -EACCES :
		      status == 404 ? -ENOENT : -EIO;
		goto cleanup;
	}
	log_info("kube: published public key %s on node '%s'", key_b64, node);
	ret = 0;
cleanup:
	json_decref(patch);
	free(body);
	free(path);
	free(resp.data);
	return ret;
}

int kube_publish_public_key(const struct kube_config *cfg, const char *node,
			    const char *key_b64)
{
	return patch_public_key(cfg, node, key_b64, NULL);
}

/* ---- the watch thread ---- */

enum { WATCH_ENDED, WATCH_GONE, WATCH_FAILED, WATCH_STOPPED };

struct kube_watch {
	struct kube_config *cfg;
	char *node_name;
	char *public_key;
	char *output_path;
	struct kube_watch_opts opts;
	pthread_t thread;
	bool thread_started;
	pthread_t publisher;
	bool publisher_started;
	int efd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stop;
	/* under lock */
	int socks[4];        /* curl's open sockets, shut down by stop */
	char *pending;       /* the newest NodeList, not yet taken */
	size_t pending_len;
	bool publish_needed;
	uint64_t publish_at;
	unsigned publish_failures;

	/* the watch thread's own */
	struct kube_cache *cache;
	char *last_doc;
	struct buf line;
	struct buf errbody;
	long status;
	int stream_result;
	unsigned events;
	unsigned gone_streak;
	unsigned seed;
	/* the publisher's own */
	unsigned pub_seed;
};

static unsigned backoff_ms(const struct kube_watch *w, unsigned *seed, unsigned failures,
			   unsigned cap)
{
	uint64_t d = w->opts.backoff_min_ms;
	unsigned jitter;

	for (unsigned i = 0; i < failures && d < cap; i++)
		d *= 2;
	if (d > cap)
		d = cap;
	/* +-20% so that a thousand agents do not retry in step after an API outage */
	jitter = (unsigned)(d / 5);
	if (jitter)
		d = d - jitter + (uint64_t)(rand_r(seed) % (2 * jitter + 1));
	return (unsigned)d;
}

/* false when asked to stop */
static bool watch_sleep(struct kube_watch *w, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->stop))
		if (pthread_cond_timedwait(&w->cond, &w->lock, &ts) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&w->lock);
	return !atomic_load(&w->stop);
}

static void watch_check_key(struct kube_watch *w)
{
	const char *have;

	if (!w->public_key || !json_object_get(w->cache->nodes, w->node_name))
		return;
	have = kube_cache_node_annotation(w->cache, w->node_name, KUBE_KEY_ANNOTATION);
	pthread_mutex_lock(&w->lock);
	if (have && strcmp(have, w->public_key) == 0) {
		/* already there (our PATCH, or by hand): a queued PATCH is moot */
		w->publish_needed = false;
	} else if (!w->publish_needed) {
		log_info("kube: node '%s' carries public key '%s', not ours: publishing it",
			 w->node_name, have ? have : "");
		w->publish_needed = true;
		pthread_cond_broadcast(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
}

static void watch_emit(struct kube_watch *w)
{
	char *doc = NULL, *copy;
	size_t len;

	watch_check_key(w);
	if (kube_cache_to_json(w->cache, &doc, &len) < 0) {
		log_err("kube: out of memory building the NodeList");
		return;
	}
	if (w->last_doc && strcmp(doc, w->last_doc) == 0) {
		free(doc);
		return;
	}
	copy = strdup(doc);
	if (!copy) {
		free(doc);
		return;
	}
	/* the file first: whoever the eventfd wakes may read it at once */
	if (w->output_path) {
		int ret = atomic_write_file(w->output_path, doc, len, 0644);

		if (ret < 0)
			log_err("kube: cannot write the NodeList to '%s': %s", w->output_path,
				strerror(-ret));
	}
	pthread_mutex_lock(&w->lock);
	free(w->pending);
	w->pending = copy;
	w->pending_len = len;
	if (eventfd_write(w->efd, 1) < 0)
		log_warn("kube: eventfd write: %s", strerror(errno));
	pthread_mutex_unlock(&w->lock);
	log_debug("kube: %zu nodes, resourceVersion %s", json_object_size(w->cache->nodes),
		  w->cache->rv);
	free(w->last_doc);
	w->last_doc = doc;
}

static int watch_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow,
			  curl_off_t ultotal, curl_off_t ulnow)
{
	struct kube_watch *w = arg;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return atomic_load(&w->stop) ? 1 : 0;
}

/*
 * curl only looks at the stop flag about once a second while a watch is idle; shutting
 * its sockets down ends the transfer at once. The lock keeps curl from closing (and the
 * kernel from reusing) a descriptor while stop shuts it down.
 */
static curl_socket_t watch_open_socket(void *arg, curlsocktype purpose,
				       struct curl_sockaddr *addr)
{
	struct kube_watch *w = arg;
	int fd;

	(void)purpose;
	fd = socket(addr->family, addr->socktype | SOCK_CLOEXEC, addr->protocol);
	if (fd < 0)
		return CURL_SOCKET_BAD;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < sizeof(w->socks) / sizeof(w->socks[0]); i++) {
		if (w->socks[i] < 0) {
			w->socks[i] = fd;
			break;
		}
	}
	if (atomic_load(&w->stop))
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&w->lock);
	return fd;
}

static int watch_close_socket(void *arg, curl_socket_t fd)
{
	struct kube_watch *w = arg;

	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < sizeof(w->socks) / sizeof(w->socks[0]); i++)
		if (w->socks[i] == fd)
			w->socks[i] = -1;
	close(fd);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static bool watch_stopping(struct kube_watch *w)
{
	return atomic_load(&w->stop);
}

static void watch_hook(struct kube_watch *w, CURL *curl)
{
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, watch_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETFUNCTION, watch_open_socket);
	curl_easy_setopt(curl, CURLOPT_OPENSOCKETDATA, w);
	curl_easy_setopt(curl, CURLOPT_CLOSESOCKETFUNCTION, watch_close_socket);
	curl_easy_setopt(curl, CURLOPT_CLOSESOCKETDATA, w);
}

/*
 * The publisher: a thread of its own so that a PATCH (and its retries) never holds up
 * or restarts the watch. The watch thread only raises publish_needed.
 */
static void *publish_main(void *arg)
{
	struct kube_watch *w = arg;
	int ret;

	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->stop)) {
		uint64_t now = now_ms();

		if (!w->publish_needed) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		if (now < w->publish_at) {
			struct timespec ts;
			uint64_t at = w->publish_at;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)((at - now) / 1000);
			ts.tv_nsec += (long)((at - now) % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&w->cond, &w->lock, &ts);
			continue;
		}
		w->publish_needed = false;
		pthread_mutex_unlock(&w->lock);
		ret = patch_public_key(w->cfg, w->node_name, w->public_key, w);
		pthread_mutex_lock(&w->lock);
		if (ret == 0) {
			w->publish_failures = 0;
			/* at most one PATCH per interval, should something strip the annotation */
			w->publish_at = now_ms() + KUBE_PUBLISH_MIN_INTERVAL_MS;
		} else if (ret == -ENOENT) {
			/* no timer: watch_check_key asks again when the node's ADDED event comes */
			log_warn("kube: node '%s' is not registered yet; will publish its key "
				 "when it appears", w->node_name);
			w->publish_failures = 0;
		} else if (ret != -ECANCELED) {
			w->publish_needed = true;
			w->publish_at = now_ms() + backoff_ms(w, &w->pub_seed, w->publish_failures++,
							      KUBE_PUBLISH_BACKOFF_MAX_MS);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* Paginated list into a fresh cache; the old cache stays until the list is whole. */
static int watch_list(struct kube_watch *w)
{
	struct kube_cache *next = NULL;
	struct buf resp = { .max = KUBE_BODY_MAX };
	char *cont = NULL, *esc = NULL, *path = NULL;
	unsigned pages = 0;
	long status = 0;
	int ret;

	ret = kube_cache_new(&next);
	if (ret < 0)
		return ret;
	do {
		free(path);
		path = NULL;
		if (cont) {
			esc = curl_easy_escape(NULL, cont, 0);
			if (!esc) {
				ret = -ENOMEM;
				goto cleanup;
			}
		}
		if (asprintf(&path, "/api/v1/nodes?limit=%u%s%s", w->opts.page_limit,
			     esc ? "&continue=" : "", esc ? esc : "") < 0) {
			path = NULL;
			ret = -ENOMEM;
			goto cleanup;
		}
		curl_free(esc);
		esc = NULL;
		free(resp.data);
		resp = (struct buf){ .max = KUBE_BODY_MAX };
		ret = kube_do(w->cfg, "GET", path, NULL, NULL, w->opts.connect_timeout_s, 120,
			      w, &status, &resp);
		if (ret < 0)
			goto cleanup;
		if (status == 410) {
			log_info("kube: list continue token expired (410 Gone), listing again "
				 "from the start");
			ret = -EAGAIN;
			goto cleanup;
		}
		if (status != 200) {
			log_http_failure(w->cfg, "listing nodes", status, &resp);
			ret = status == 401 || status == 403 ? -EACCES : -EIO;
			goto cleanup;
		}
		free(cont);
		cont = NULL;
		ret = kube_cache_load_list(next, resp.data ? resp.data : "", resp.len,
					   pages == 0, &cont);
		if (ret < 0)
			goto cleanup;
		pages++;
	} while (cont && pages < 100000);
	log_info("kube: listed %zu nodes in %u page%s at resourceVersion %s",
		 json_object_size(next->nodes), pages, pages == 1 ? "" : "s", next->rv);
	kube_cache_free(w->cache);
	w->cache = next;
	next = NULL;
	watch_emit(w);
	ret = 0;
cleanup:
	curl_free(esc);
	kube_cache_free(next);
	free(cont);
	free(path);
	free(resp.data);
	return ret;
}

static size_t stream_write(char *p, size_t size, size_t n, void *arg)
{
	struct kube_watch *w = arg;
	size_t total = size * n, start = 0;

	if (w->status != 200) {
		/* not an event stream: keep the Status body for the message */
		buf_append(&w->errbody, p, total);
		return total;
	}
	for (size_t i = 0; i < total; i++) {
		int ev;

		if (p[i] != '\n')
			continue;
		if (buf_append(&w->line, p + start, i - start) < 0) {
			log_err("kube: watch event longer than %u bytes", KUBE_LINE_MAX);
			w->stream_result = WATCH_FAILED;
			return 0;
		}
		start = i + 1;
		ev = kube_cache_apply_event(w->cache, w->line.data ? w->line.data : "",
					    w->line.len);
		w->line.len = 0;
		if (ev < 0) {
			w->stream_result = WATCH_FAILED;
			return 0;
		}
		w->events++;
		if (ev == KUBE_EVENT_CHANGED)
			watch_emit(w);
		if (ev == KUBE_EVENT_GONE || ev == KUBE_EVENT_ERROR) {
			w->stream_result = ev == KUBE_EVENT_GONE ? WATCH_GONE : WATCH_FAILED;
			return 0;
		}
	}
	if (buf_append(&w->line, p + start, total - start) < 0) {
		log_err("kube: watch event longer than %u bytes", KUBE_LINE_MAX);
		w->stream_result = WATCH_FAILED;
		return 0;
	}
	return total;
}

static size_t stream_header(char *p, size_t size, size_t n, void *arg)
{
	struct kube_watch *w = arg;
	int code;

	/* each status line (a 100 Continue too) restarts the count */
	if (size * n > 9 && strncmp(p, "HTTP/", 5) == 0 &&
	    sscanf(p, "HTTP/%*s %d", &code) == 1)
		w->status = code;
	return size * n;
}

static int watch_stream(struct kube_watch *w)
{
	struct kube_req r;
	char *path = NULL, *rv;
	uint64_t started = now_ms();
	CURLcode rc;
	int ret;

	/* opaque to clients: whatever the server sent goes back escaped */
	rv = curl_easy_escape(NULL, w->cache->rv, 0);
	if (!rv)
		return WATCH_FAILED;
	ret = asprintf(&path, "/api/v1/nodes?watch=1&resourceVersion=%s"
		       "&allowWatchBookmarks=true&timeoutSeconds=%u", rv,
		       w->opts.watch_timeout_s);
	curl_free(rv);
	if (ret < 0)
		return WATCH_FAILED;
	ret = kube_req_init(&r, w->cfg, path, w->opts.connect_timeout_s);
	free(path);
	if (ret < 0)
		return WATCH_FAILED;
	w->status = 0;
	w->line.len = 0;
	w->errbody.len = 0;
	w->stream_result = WATCH_ENDED;
	w->events = 0;
	curl_easy_setopt(r.curl, CURLOPT_HEADERFUNCTION, stream_header);
	curl_easy_setopt(r.curl, CURLOPT_HEADERDATA, w);
	curl_easy_setopt(r.curl, CURLOPT_WRITEFUNCTION, stream_write);
	curl_easy_setopt(r.curl, CURLOPT_WRITEDATA, w);
	watch_hook(w, r.curl);
	/* the server ends the watch at timeoutSeconds; this only catches a silent peer */
	curl_easy_setopt(r.curl, CURLOPT_TIMEOUT, (long)w->opts.watch_timeout_s + 60);
	log_debug("kube: watching nodes from resourceVersion %s", w->cache->rv);
	rc = curl_easy_perform(r.curl);
	if (watch_stopping(w))
		w->stream_result = WATCH_STOPPED;
	if (rc != CURLE_OK && w->stream_result == WATCH_ENDED) {
		log_warn("kube: %s: watch of nodes at %s: %s", w->cfg->source, w->cfg->server,
			 r.errbuf[0] ? r.errbuf : curl_easy_strerror(rc));
		w->stream_result = WATCH_FAILED;
	}
	kube_req_free(&r);
	if (w->stream_result != WATCH_ENDED)
		return w->stream_result;
	if (w->status == 410) {
		log_info("kube: watch from resourceVersion %s is too old (HTTP 410 Gone), "
			 "listing again", w->cache->rv);
		return WATCH_GONE;
	}
	if (w->status != 200) {
		log_http_failure(w->cfg, "watching nodes", w->status, &w->errbody);
		return WATCH_FAILED;
	}
	if (w->line.len)
		log_warn("kube: watch stream ended inside an event; resuming from %s",
			 w->cache->rv);
	/* a server that closes at once would otherwise be hammered in a tight loop */
	if (w->events == 0 && now_ms() - started < 1000)
		return WATCH_FAILED;
	return WATCH_ENDED;
}

static void *watch_main(void *arg)
{
	struct kube_watch *w = arg;
	unsigned failures = 0;
	bool need_list = true;
	int ret;

	while (!atomic_load(&w->stop)) {
		if (need_list) {
			ret = watch_list(w);
			if (ret == -ECANCELED)
				break;
			if (ret < 0) {
				unsigned ms = backoff_ms(w, &w->seed, failures++, w->opts.backoff_max_ms);

				log_info("kube: listing nodes again in %u ms", ms);
				if (!watch_sleep(w, ms))
					break;
				continue;
			}
			need_list = false;
			failures = 0;   /* the back-off is for a server that keeps failing */
		}
		ret = watch_stream(w);
		switch (ret) {
		case WATCH_STOPPED:
			goto out;
		case WATCH_ENDED:
			failures = 0;
			w->gone_streak = 0;
			break;
		case WATCH_GONE:
			need_list = true;
			/* a server that answers 410 to every fresh list must not spin us */
			if (w->events > 1)
				w->gone_streak = 0;
			if (w->gone_streak++ > 0 &&
			    !watch_sleep(w, backoff_ms(w, &w->seed, w->gone_streak - 2,
						       w->opts.backoff_max_ms)))
				goto out;
			break;
		default: {
			unsigned ms = backoff_ms(w, &w->seed, failures++, w->opts.backoff_max_ms);

			log_info("kube: watching nodes again in %u ms from resourceVersion %s",
				 ms, w->cache->rv);
			if (!watch_sleep(w, ms))
				goto out;
		}
		}
	}
out:
	return NULL;
}

int kube_watch_start(const struct kube_config *cfg, const struct kube_watch_opts *opts,
		     struct kube_watch **out)
{
	static const struct kube_watch_opts defaults = { 0 };
	struct kube_watch *w = NULL;
	pthread_condattr_t ca;
	sigset_t all, old_mask;
	bool fail = false;
	int ret;

	if (!opts)
		opts = &defaults;
	if (!!opts->node_name != !!opts->public_key) {
		log_err("kube: publishing a key needs both the node name and the public key");
		return -EINVAL;
	}
	if (opts->node_name && !node_name_valid(opts->node_name)) {
		log_err("kube: node name '%s' is not a valid Kubernetes name", opts->node_name);
		return -EINVAL;
	}
	ret = kube_curl_ready();
	if (ret < 0)
		return ret;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->efd = -1;
	for (size_t i = 0; i < sizeof(w->socks) / sizeof(w->socks[0]); i++)
		w->socks[i] = -1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	w->opts = *opts;
	w->opts.node_name = w->opts.public_key = w->opts.output_path = NULL;
	if (!w->opts.page_limit)
		w->opts.page_limit = 500;
	if (!w->opts.watch_timeout_s)
		w->opts.watch_timeout_s = 300;
	if (!w->opts.backoff_min_ms)
		w->opts.backoff_min_ms = 500;
	if (!w->opts.backoff_max_ms)
		w->opts.backoff_max_ms = 30000;
	if (w->opts.backoff_max_ms < w->opts.backoff_min_ms)
		w->opts.backoff_max_ms = w->opts.backoff_min_ms;
	if (!w->opts.connect_timeout_s)
		w->opts.connect_timeout_s = 10;
	w->line.max = KUBE_LINE_MAX;
	w->errbody.max = 64 << 10;
	w->node_name = opts->node_name ? strdup(opts->node_name) : NULL;
	w->public_key = opts->public_key ? strdup(opts->public_key) : NULL;
	w->output_path = opts->output_path ? strdup(opts->output_path) : NULL;
	fail = (opts->node_name && !w->node_name) || (opts->public_key && !w->public_key) ||
	       (opts->output_path && !w->output_path);
	w->publish_needed = w->public_key != NULL;
	w->seed = (unsigned)now_ms() ^ (unsigned)getpid();
	w->pub_seed = ~w->seed;
	ret = kube_config_dup(cfg, &w->cfg);
	if (ret < 0 || fail) {
		ret = -ENOMEM;
		goto cleanup;
	}
	ret = kube_cache_new(&w->cache);
	if (ret < 0)
		goto cleanup;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		ret = -errno;
		goto cleanup;
	}
	/* Signals stay with the caller's thread: the agent takes them through a signalfd,
	 * which only works when every thread blocks them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old_mask);
	ret = -pthread_create(&w->thread, NULL, watch_main, w);
	if (ret == 0) {
		w->thread_started = true;
		if (w->public_key) {
			ret = -pthread_create(&w->publisher, NULL, publish_main, w);
			w->publisher_started = ret == 0;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	if (ret < 0) {
		log_err("kube: cannot start the watch threads: %s", strerror(-ret));
		goto cleanup;
	}
	log_info("kube: watching nodes at %s (%s)", w->cfg->server, w->cfg->source);
	*out = w;
	w = NULL;
cleanup:
	kube_watch_stop(w);
	return ret;
}

int kube_watch_fd(const struct kube_watch *w)
{
	return w->efd;
}

int kube_watch_take(struct kube_watch *w, char **json, size_t *len)
{
	eventfd_t v;
	int ret = -EAGAIN;

	pthread_mutex_lock(&w->lock);
	eventfd_read(w->efd, &v);
	if (w->pending) {
		*json = w->pending;
		if (len)
			*len = w->pending_len;
		w->pending = NULL;
		ret = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return ret;
}

void kube_watch_stop(struct kube_watch *w)
{
	if (!w)
		return;
	if (w->thread_started || w->publisher_started) {
		pthread_mutex_lock(&w->lock);
		atomic_store(&w->stop, true);
		for (size_t i = 0; i < sizeof(w->socks) / sizeof(w->socks[0]); i++)
			if (w->socks[i] >= 0)
				shutdown(w->socks[i], SHUT_RDWR);
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		if (w->thread_started)
			pthread_join(w->thread, NULL);
		if (w->publisher_started)
			pthread_join(w->publisher, NULL);
	}
	if (w->efd >= 0)
		close(w->efd);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	kube_config_free(w->cfg);
	kube_cache_free(w->cache);
	free(w->pending);
	free(w->last_doc);
	free(w->line.data);
	free(w->errbody.data);
	free(w->node_name);
	free(w->public_key);
	free(w->output_path);
	free(w);
}
