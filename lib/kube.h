/* SPDX-License-Identifier: Apache-2.0 */
#ifndef TWILL_KUBE_H
#define TWILL_KUBE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The Kubernetes API as a topology source: list-then-watch of Node objects over HTTPS
 * (libcurl), and the PATCH that publishes this node's WireGuard public key.
 *
 * How the agent uses it (a dedicated thread, one fd to poll):
 *
 *	kube_config_in_cluster(NULL, &cfg)  or  kube_config_from_kubeconfig(path, &cfg)
 *	kube_watch_start(cfg, &opts, &w)         opts.node_name/public_key to publish
 *	poll(kube_watch_fd(w), POLLIN) in the event loop, then
 *	kube_watch_take(w, &json, &len)   -> topology_parse(json, len, ...), free(json)
 *	kube_watch_stop(w)
 *
 * The thread lists /api/v1/nodes (paginated), then watches from the list's
 * resourceVersion, resumes from the last seen resourceVersion (BOOKMARKs included)
 * after a dropped stream, re-lists on 410 Gone, and backs off exponentially on errors.
 * After each change it builds a whole NodeList document from its cache of nodes; only
 * the newest document is kept (slow readers see the latest state, never a backlog) and
 * the eventfd becomes readable. A document is produced only when the fields Twill reads
 * change: each node is reduced to metadata.name, metadata.uid, its twill.dev/
 * annotations, spec.podCIDR(s) and status.addresses, so kubelet heartbeats, labels,
 * cordons and other controllers' annotations do not wake the agent.
 *
 * With opts.public_key, a second thread PATCHes it onto opts.node_name: at start, and
 * again whenever the node shows another key or none (a 404 waits for the node to
 * register), with back-off on errors and at most one PATCH per 10 s. Both threads
 * block every signal (the agent takes them through a signalfd); kube_watch_stop shuts
 * their sockets down, so it returns at once.
 */

struct kube_config {
	char *server;           /* "https://host:port", no trailing slash */
	char *ca_file;          /* PEM file, or NULL */
	char *ca_pem;           /* PEM data (certificate-authority-data), or NULL */
	char *token;            /* bearer token, or NULL */
	char *token_file;       /* re-read on every request (projected tokens rotate) */
	char *client_cert_file; /* TLS client certificate and key, files or PEM data */
	char *client_cert_pem;
	char *client_key_file;
	char *client_key_pem;
	char *source;           /* "in-cluster" or the kubeconfig path, for messages */
};

#define KUBE_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* KUBERNETES_SERVICE_HOST/PORT and sa_dir/{token,ca.crt}; sa_dir NULL means KUBE_SA_DIR. */
int kube_config_in_cluster(const char *sa_dir, struct kube_config **out);
/* current-context -> cluster (server, certificate-authority[-data]) and user (token,
 * tokenFile, client-certificate[-data], client-key[-data]). Exec plugins, auth
 * providers, passwords and insecure-skip-tls-verify are refused with a message. */
int kube_config_from_kubeconfig(const char *path, struct kube_config **out);
int kube_config_dup(const struct kube_config *src, struct kube_config **out);
void kube_config_free(struct kube_config *cfg);
/* A projected token file, trimmed; rejects an empty one. */
int kube_read_token_file(const char *path, char **out);

/* PATCH /api/v1/nodes/NODE, merge-patch: annotations.twill.dev/public-key = key_b64. */
int kube_publish_public_key(const struct kube_config *cfg, const char *node,
			    const char *key_b64);

struct kube_watch_opts {
	const char *node_name;   /* with public_key: published, and re-published when lost */
	const char *public_key;  /* base64 public key; never the private one */
	unsigned page_limit;     /* list page size, 0 = 500 */
	unsigned watch_timeout_s; /* timeoutSeconds asked of the server, 0 = 300 */
	unsigned backoff_min_ms; /* first retry delay, 0 = 500 */
	unsigned backoff_max_ms; /* cap, 0 = 30000 */
	unsigned connect_timeout_s; /* 0 = 10 */
	const char *output_path; /* NULL, or also written there atomically (0644) before the
				  * fd fires: a copy for tools (twillctl --topology) and for
				  * starting from the last list while the API server is down */
};

struct kube_watch;

int kube_watch_start(const struct kube_config *cfg, const struct kube_watch_opts *opts,
		     struct kube_watch **out);
/* Readable (POLLIN) when a new NodeList is waiting. */
int kube_watch_fd(const struct kube_watch *w);
/* The newest NodeList (malloc'd, NUL-terminated; caller frees); -EAGAIN when none. */
int kube_watch_take(struct kube_watch *w, char **json, size_t *len);
/* Stops the thread (within about a second) and frees everything. Accepts NULL. */
void kube_watch_stop(struct kube_watch *w);

/*
 * Building blocks of the watch, exposed for unit tests: a cache of nodes by name fed
 * with watch event lines (the stream is split into lines by the watch itself).
 */
enum kube_event {
	KUBE_EVENT_NONE,     /* nothing complete yet, or the event changed nothing */
	KUBE_EVENT_CHANGED,  /* the reduced NodeList changed */
	KUBE_EVENT_BOOKMARK, /* resourceVersion advanced */
	KUBE_EVENT_GONE,     /* ERROR event with code 410: re-list */
	KUBE_EVENT_ERROR,    /* other ERROR event */
};

struct kube_cache;

int kube_cache_new(struct kube_cache **out);
void kube_cache_free(struct kube_cache *c);
/* Replaces the cache with a NodeList page sequence: call with reset on the first page. */
int kube_cache_load_list(struct kube_cache *c, const char *json, size_t len, bool reset,
			 char **continue_token);
/* Applies one watch event line; returns a kube_event or -errno for a malformed line. */
int kube_cache_apply_event(struct kube_cache *c, const char *line, size_t len);
/* The last resourceVersion seen (list or event), "" before any. */
const char *kube_cache_resource_version(const struct kube_cache *c);
/* The reduced NodeList, items sorted by name. */
int kube_cache_to_json(const struct kube_cache *c, char **json, size_t *len);
/* The twill.dev/public-key annotation of a node in the cache, NULL when absent. */
const char *kube_cache_node_annotation(const struct kube_cache *c, const char *node,
				       const char *key);

#endif
