// SPDX-License-Identifier: Apache-2.0
/*
 * Drives lib/kube the way twilld does, for the replay tests: polls the watch's eventfd
 * and prints every NodeList it hands over, one document per line.
 *
 *   kube-probe watch   (--kubeconfig F | --in-cluster SA_DIR) [--count N] [--timeout S]
 *                      [--linger MS] [--node NAME --key KEY] [--page-limit N]
 *                      [--watch-timeout S] [--backoff-max MS] [--output FILE]
 *   kube-probe publish (--kubeconfig F | --in-cluster SA_DIR) --node NAME --key KEY
 *   kube-probe config  (--kubeconfig F | --in-cluster SA_DIR)
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kube.h"
#include "log.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "kubeconfig", required_argument, NULL, 'k' },
		{ "in-cluster", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "linger", required_argument, NULL, 'l' },
		{ "node", required_argument, NULL, 'n' },
		{ "key", required_argument, NULL, 'K' },
		{ "page-limit", required_argument, NULL, 'p' },
		{ "watch-timeout", required_argument, NULL, 'w' },
		{ "backoff-max", required_argument, NULL, 'b' },
		{ "output", required_argument, NULL, 'o' },
		{ NULL, 0, NULL, 0 },
	};
	struct kube_watch_opts opts = { .backoff_min_ms = 100, .backoff_max_ms = 400 };
	const char *kubeconfig = NULL, *sa_dir = NULL, *cmd;
	struct kube_config *cfg = NULL;
	struct kube_watch *w = NULL;
	long count = 1, timeout_s = 10, linger_ms = 0, got = 0;
	long long deadline, linger_end = 0;
	int opt, ret;

	log_set_ident("kube-probe");
	log_set_level(TWILL_LOG_DEBUG);
	if (argc < 2) {
		fprintf(stderr, "usage: kube-probe watch|publish|config ...\n");
		return 2;
	}
	cmd = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'k': kubeconfig = optarg; break;
		case 'i': sa_dir = optarg; break;
		case 'c': count = atol(optarg); break;
		case 't': timeout_s = atol(optarg); break;
		case 'l': linger_ms = atol(optarg); break;
		case 'n': opts.node_name = optarg; break;
		case 'K': opts.public_key = optarg; break;
		case 'p': opts.page_limit = (unsigned)atol(optarg); break;
		case 'w': opts.watch_timeout_s = (unsigned)atol(optarg); break;
		case 'b': opts.backoff_max_ms = (unsigned)atol(optarg); break;
		case 'o': opts.output_path = optarg; break;
		default: return 2;
		}
	}
	ret = kubeconfig ? kube_config_from_kubeconfig(kubeconfig, &cfg)
			 : kube_config_in_cluster(sa_dir, &cfg);
	if (ret < 0) {
		fprintf(stderr, "kube-probe: config: %s\n", strerror(-ret));
		return 1;
	}
	if (strcmp(cmd, "config") == 0) {
		printf("server=%s\nca_file=%s\nca_pem=%s\ntoken=%s\ntoken_file=%s\n"
		       "client_cert=%s\nclient_key=%s\n", cfg->server,
		       cfg->ca_file ? cfg->ca_file : "", cfg->ca_pem ? "yes" : "no",
		       cfg->token ? "yes" : "no", cfg->token_file ? cfg->token_file : "",
		       cfg->client_cert_file ? cfg->client_cert_file :
		       cfg->client_cert_pem ? "data" : "",
		       cfg->client_key_file ? cfg->client_key_file :
		       cfg->client_key_pem ? "data" : "");
		ret = 0;
		goto cleanup;
	}
	if (strcmp(cmd, "publish") == 0) {
		ret = kube_publish_public_key(cfg, opts.node_name ? opts.node_name : "",
					      opts.public_key);
		goto cleanup;
	}
	ret = kube_watch_start(cfg, &opts, &w);
	if (ret < 0)
		goto cleanup;
	deadline = now_ms() + timeout_s * 1000;
	while (now_ms() < deadline && (!linger_end || now_ms() < linger_end)) {
		struct pollfd pfd = { .fd = kube_watch_fd(w), .events = POLLIN };
		char *doc;
		size_t len;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		if (kube_watch_take(w, &doc, &len) < 0)
			continue;
		printf("%s\n", doc);
		fflush(stdout);
		free(doc);
		if (++got == count)
			linger_end = now_ms() + linger_ms + 1;
	}
	ret = got >= count ? 0 : -ETIMEDOUT;
	if (ret < 0)
		fprintf(stderr, "kube-probe: %ld of %ld documents before the timeout\n", got,
			count);
cleanup:
	kube_watch_stop(w);
	kube_config_free(cfg);
	return ret < 0 ? 1 : 0;
}
